"""When to call an endpoint again, and how long to wait first (the policy runs on tenacity).

Retried: 408, 409, 429, 5xx, timeouts, dropped connections and malformed bodies (most often a connection
cut mid-answer). Waited: the server's Retry-After when it sends one (``retry-after-ms``, seconds or an
HTTP date; capped at ``backoff_max_s``), otherwise exponential backoff with jitter. Fatal: 401, 403,
404 (the key, the permission or the model is wrong, so every call would fail). Anything else (400: this
one request is not accepted) is not retried.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from curation.store import utcnow

RETRYABLE_STATUS = (408, 409, 429)
FATAL_STATUS = (401, 403, 404)
UNREACHABLE_CAUSES = ("ConnectError", "ConnectTimeout")  # nothing listens (or the name does not resolve)
_CLIENT_PREFIX = re.compile(r"^Error code: \d+ - ")


class MalformedResponse(ValueError):
    """A 200 answer without the text it should carry."""


@dataclass(frozen=True)
class Verdict:
    """What to do about a failed attempt."""

    description: str
    retryable: bool
    retry_after_s: float | None = None
    fatal: bool = False


def classify(error: BaseException, timeout_s: float) -> Verdict:
    import openai

    if isinstance(error, (asyncio.TimeoutError, openai.APITimeoutError)):
        return Verdict(f"no answer within {timeout_s:g} s", True)
    if isinstance(error, openai.APIConnectionError):
        return Verdict(f"connection failed ({_cause(error)})", True)
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        # The client prefixes its message with "Error code: N - "; the status is said once, first.
        detail = f"HTTP {status}: {short(_CLIENT_PREFIX.sub('', error.message))}"
        if status in RETRYABLE_STATUS or status >= 500:
            return Verdict(detail, True, retry_after_seconds(error.response.headers))
        return Verdict(detail, False, fatal=status in FATAL_STATUS)
    if isinstance(error, (json.JSONDecodeError, MalformedResponse, openai.APIResponseValidationError)):
        return Verdict(f"malformed response ({short(str(error))})", True)
    return Verdict(f"{type(error).__name__}: {short(str(error))}", False)


def unreachable(error: BaseException) -> bool:
    """True when the connection itself could not be made: nothing answers at that address."""
    cause = error.__cause__ or error.__context__
    return cause is not None and type(cause).__name__ in UNREACHABLE_CAUSES


def _cause(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__
    return short(f"{type(cause).__name__}: {cause}" if cause else str(error))


def short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds: ``retry-after-ms``, ``retry-after`` in seconds, or as an HTTP date."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            try:
                seconds = (parsedate_to_datetime(value) - utcnow()).total_seconds()
            except (TypeError, ValueError):
                continue
        if math.isfinite(seconds):
            return max(seconds, 0.0)
    return None


def backoff_delay(attempt: int, base_s: float, max_s: float, retry_after_s: float | None, rng: random.Random) -> float:
    """Retry-After when the server gave one (capped at ``max_s``); otherwise exponential with jitter.

    Jitter spreads the workers that failed together, so they do not all come back in the same instant.
    """
    if retry_after_s is not None:
        return min(retry_after_s, max_s) + rng.uniform(0, base_s / 4)
    ceiling = min(max_s, base_s * 2 ** (attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def retrying(
    max_retries: int, timeout_s: float, backoff_base_s: float, backoff_max_s: float, rng: random.Random
) -> AsyncRetrying:
    """A fresh tenacity controller for one call: 1 + ``max_retries`` attempts, then the last error is raised."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        retry_after = classify(error, timeout_s).retry_after_s if error is not None else None
        return backoff_delay(state.attempt_number, backoff_base_s, backoff_max_s, retry_after, rng)

    return AsyncRetrying(
        stop=stop_after_attempt(max_retries + 1),
        wait=wait,
        retry=retry_if_exception(lambda error: classify(error, timeout_s).retryable),
        reraise=True,
        sleep=asyncio.sleep,
    )
