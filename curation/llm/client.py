"""One OpenAI-compatible client for every caller (the AlpaGasus rater, answer generation, pairwise judges).

Built for a team that pays per call:
- every call is written to the ``llm_calls`` table as it completes, keyed by a hash of what was asked
  (model, messages or prompt, parameters), with its tokens and cost; an identical request is answered
  from there, so a finished run re-run makes no call and a killed run resumes with only the missing ones;
- calls run concurrently (bounded) and are retried with exponential backoff and jitter on 429, 5xx,
  timeouts, dropped connections and malformed bodies, honouring Retry-After; a call that still fails
  comes back as an ``error`` result for that one request (retried by the next run), never a failed job.
  Only answers that say the whole configuration is wrong (401, 403, 404) stop the run.

Entry point: :class:`LLMClient` with :meth:`LLMClient.complete` (a request is a dict with ``model`` and
either ``messages`` for chat completions or ``prompt`` for the completions endpoint, plus parameters).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from email.utils import parsedate_to_datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from curation.raters.writer import BatchWriter
from curation.store import Store, utcnow
from curation.store.schema import LLMCall

LogFn = Callable[[str, str], None]  # (message, level)
PLACEHOLDER_KEY = "no-key-configured"  # local servers ignore the key, the client insists on one
RETRYABLE_STATUS = (408, 409, 429)
FATAL_STATUS = (401, 403, 404)  # the key, the permission or the model is wrong: every call would fail
SHOWN_ERRORS = 20
_CLIENT_PREFIX = re.compile(r"^Error code: \d+ - ")
REQUEST_FIELDS = ("model", "messages", "prompt")


@dataclass(frozen=True)
class EndpointOptions:
    """How an endpoint is called: address, model, limits, retries, decoding, prices."""

    model: str
    base_url: str
    api_version: str = ""  # set: Azure-style endpoint (deployment in the path, api-key header)
    concurrency: int = 16
    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_tokens: int = 256
    temperature: float = 0.0
    prices: dict[str, list[float]] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> EndpointOptions:
        """From any config section with these field names (``settings.llm``), plus non-None overrides."""
        names = {f.name for f in fields(cls)}
        values = {name: getattr(config, name) for name in names if hasattr(config, name)}
        values.update({k: v for k, v in overrides.items() if v is not None and k in names})
        options = cls(**values)
        if options.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {options.concurrency}")
        return options

    def params(self) -> dict[str, Any]:
        """The request parameters besides model and messages (part of the call key)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}


def make_client(options: EndpointOptions, api_key: str) -> Any:
    """The async client for the endpoint; retries are ours (they honour Retry-After and are logged)."""
    if options.api_version:
        from openai import AsyncAzureOpenAI

        return AsyncAzureOpenAI(
            azure_endpoint=options.base_url,
            api_version=options.api_version,
            api_key=api_key,
            max_retries=0,
            timeout=options.timeout_s,
        )
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=options.base_url, api_key=api_key, max_retries=0, timeout=options.timeout_s)


def call_key(model: str, messages: Sequence[Mapping[str, str]], params: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the request: same request, same key, answered once."""
    return hashlib.sha256(
        _canonical({"model": model, "messages": list(messages), "params": dict(params)}).encode()
    ).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def price_per_million(model: str, prices: Mapping[str, Sequence[float]]) -> tuple[float, float] | None:
    """(prompt, completion) USD per million tokens; a dated name ("gpt-4o-2024-08-06") takes its family's price."""
    if model in prices:
        prompt, completion = prices[model]
        return float(prompt), float(completion)
    family = max((name for name in prices if model.startswith(name + "-")), key=len, default=None)
    return None if family is None else (float(prices[family][0]), float(prices[family][1]))


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int, prices: Mapping[str, Sequence[float]]) -> float:
    price = price_per_million(model, prices)
    return 0.0 if price is None else (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6


def estimate_prompt_tokens(messages: Sequence[Mapping[str, str]]) -> int:
    """About 4 characters a token for English, plus the chat format's few tokens per message."""
    return sum(math.ceil(len(m["content"]) / 4) + 4 for m in messages) + 3


@dataclass(frozen=True)
class CallResult:
    key: str
    status: str  # ok | error
    text: str | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 0
    latency_s: float = 0.0
    cached: bool = False


class EndpointRefused(RuntimeError):
    """The endpoint refused the key, the permission or the model: no call can succeed until it is fixed."""


class MalformedResponse(ValueError):
    pass


class CallLog:
    """The ``llm_calls`` table: what was asked, what came back, what it cost."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def answered(self, keys: Iterable[str]) -> dict[str, CallResult]:
        """The calls among ``keys`` that already have an answer."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, CallResult] = {}
        with self.store.db.session() as session:
            for start in range(0, len(keys), 500):
                query = select(LLMCall).where(LLMCall.key.in_(keys[start : start + 500]), LLMCall.status == "ok")
                for row in session.scalars(query):
                    found[row.key] = CallResult(
                        row.key,
                        "ok",
                        row.response_text,
                        None,
                        row.prompt_tokens,
                        row.completion_tokens,
                        row.cost_usd,
                        row.attempts,
                        row.latency_s,
                        cached=True,
                    )
        return found

    def save(self, entries: Sequence[tuple[CallResult, dict[str, Any], int | None]]) -> None:
        """Insert (result, request, job id) rows; an answered call is never overwritten by a failure."""
        if not entries:
            return
        insert = pg_insert if self.store.db.dialect == "postgresql" else sqlite_insert
        values = [_call_row(result, request, job_id) for result, request, job_id in entries]
        with self.store.db.session() as session:
            statement = insert(LLMCall).values(values)
            updated = {name: statement.excluded[name] for name in values[0] if name != "key"}
            # Attempts add up across runs: the log says how many requests a key really cost.
            updated["attempts"] = LLMCall.attempts + statement.excluded.attempts
            session.execute(
                statement.on_conflict_do_update(index_elements=["key"], set_=updated, where=LLMCall.status != "ok")
            )

    def completion_tokens_mean(self, model: str) -> tuple[float, int]:
        """Mean completion tokens of this model's answered calls, and how many there are."""
        query = select(func.avg(LLMCall.completion_tokens), func.count()).where(
            LLMCall.model == model, LLMCall.status == "ok"
        )
        with self.store.db.session() as session:
            mean, count = session.execute(query).one()
        return float(mean or 0.0), int(count)


def _call_row(result: CallResult, request: dict[str, Any], job_id: int | None) -> dict[str, Any]:
    return {
        "key": result.key,
        "model": request["model"],
        "request": request,
        "response_text": result.text,
        "status": result.status,
        "error": result.error,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cost_usd": result.cost_usd,
        "attempts": result.attempts,
        "latency_s": result.latency_s,
        "job_id": job_id,
        "created_at": utcnow(),
    }


@dataclass
class CallStats:
    calls: int = 0  # requests answered by the endpoint in this run
    cached: int = 0  # answered from the call log, free
    retries: int = 0
    failed: int = 0  # calls that ended in an error after their retries
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, result: CallResult) -> None:
        if result.cached:
            self.cached += 1
            return
        self.retries += max(result.attempts - 1, 0)
        if result.status == "ok":
            self.calls += 1
            self.prompt_tokens += result.prompt_tokens
            self.completion_tokens += result.completion_tokens
            self.cost_usd += result.cost_usd
        else:
            self.failed += 1


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
        detail = f"HTTP {status}: {_short(_CLIENT_PREFIX.sub('', error.message))}"
        if status in RETRYABLE_STATUS or status >= 500:
            return Verdict(detail, True, retry_after_seconds(error.response.headers))
        return Verdict(detail, False, fatal=status in FATAL_STATUS)
    if isinstance(error, (json.JSONDecodeError, MalformedResponse, openai.APIResponseValidationError)):
        # A broken body is most often a connection cut mid-answer or a proxy hiccup: worth another try.
        return Verdict(f"malformed response ({_short(str(error))})", True)
    return Verdict(f"{type(error).__name__}: {_short(str(error))}", False)


def _cause(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__
    return _short(f"{type(cause).__name__}: {cause}" if cause else str(error))


def _short(text: str, limit: int = 200) -> str:
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


def read_completion(response: Any) -> tuple[str, int, int]:
    """(text, prompt tokens, completion tokens); a body without an answer raises MalformedResponse."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise MalformedResponse(f"no choices in the response ({_short(repr(response), 120)})")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if content is None:
        content = getattr(message, "refusal", None)
    if not isinstance(content, str):
        raise MalformedResponse("the first choice has no message content")
    usage = getattr(response, "usage", None)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    return content, prompt_tokens, completion_tokens


def request_key(request: Mapping[str, Any]) -> str:
    """The call key of a request dict: chat requests keep the key they always had."""
    params = {k: v for k, v in request.items() if k not in REQUEST_FIELDS}
    if "messages" in request:
        return call_key(request["model"], request["messages"], params)
    return hashlib.sha256(
        _canonical({"model": request["model"], "prompt": request["prompt"], "params": params}).encode()
    ).hexdigest()


def read_text_completion(response: Any) -> tuple[str, int, int]:
    """Like :func:`read_completion` for the (legacy) completions endpoint: ``choices[0].text``."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise MalformedResponse(f"no choices in the response ({_short(repr(response), 120)})")
    content = getattr(choices[0], "text", None)
    if not isinstance(content, str):
        raise MalformedResponse("the first choice has no text")
    usage = getattr(response, "usage", None)
    return content, int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)


ResultFn = Callable[[int, CallResult], None]  # (index of the request, its result)


class LLMClient:
    """Concurrent, retried, logged and cached calls to one endpoint; see the module docstring."""

    def __init__(
        self,
        options: EndpointOptions,
        store: Store,
        api_key: str | None = None,
        job_id: int | None = None,
        log: LogFn | None = None,
        seed: int | None = None,
    ) -> None:
        self.options = options
        self.calls = CallLog(store)
        self.api_key = api_key or PLACEHOLDER_KEY
        self.job_id = job_id
        self.log = log or (lambda message, level="info": None)
        self.stats = CallStats()
        self._rng = random.Random(seed)
        self._errors_logged = 0

    def complete(self, requests: Sequence[Mapping[str, Any]], on_result: ResultFn | None = None) -> list[CallResult]:
        """One result per request, in order; answered requests come from the call log without a call."""
        return asyncio.run(self.complete_async(requests, on_result))

    async def complete_async(
        self, requests: Sequence[Mapping[str, Any]], on_result: ResultFn | None = None
    ) -> list[CallResult]:
        keys = [request_key(request) for request in requests]
        results: list[CallResult | None] = [None] * len(requests)

        def finish(index: int, call: CallResult) -> None:
            self.stats.add(call)
            results[index] = call
            if on_result is not None:
                on_result(index, call)

        answered = self.calls.answered(keys)
        pending = []
        for index, key in enumerate(keys):
            if key in answered:
                finish(index, answered[key])
            else:
                pending.append(index)
        if pending:
            await self._call_all(pending, [dict(r) for r in requests], keys, finish)
        return results  # type: ignore[return-value]

    async def _call_all(
        self, pending: list[int], requests: list[dict[str, Any]], keys: list[str], finish: ResultFn
    ) -> None:
        client = make_client(self.options, self.api_key)
        writer: BatchWriter[tuple[CallResult, dict[str, Any], int | None]] = BatchWriter(
            self.calls.save, "llm-call-log"
        )
        queue = iter(pending)

        async def worker() -> None:
            for index in queue:  # one shared iterator: each index goes to exactly one worker
                call = await self._call(client, keys[index], requests[index])
                writer.put((call, requests[index], self.job_id))
                finish(index, call)

        workers = [asyncio.create_task(worker()) for _ in range(min(self.options.concurrency, len(pending)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        finally:
            await client.close()
            writer.close()

    async def _send(self, client: Any, request: dict[str, Any]) -> tuple[str, int, int]:
        if "messages" in request:
            response = await asyncio.wait_for(client.chat.completions.create(**request), self.options.timeout_s)
            return read_completion(response)
        response = await asyncio.wait_for(client.completions.create(**request), self.options.timeout_s)
        return read_text_completion(response)

    async def _call(self, client: Any, key: str, request: dict[str, Any]) -> CallResult:
        """One request with retries; returns an ``error`` result rather than raising, except when fatal."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                text, prompt_tokens, completion_tokens = await self._send(client, request)
            except Exception as error:
                verdict = classify(error, self.options.timeout_s)
                if verdict.fatal:
                    raise EndpointRefused(
                        f"{self.options.base_url} refused the request ({verdict.description}); check the model name "
                        "and the API key (settings llm.model, llm.api_key_name)"
                    ) from error
                if not verdict.retryable or attempt > self.options.max_retries:
                    self._log_error(verdict.description, attempt)
                    return CallResult(
                        key, "error", error=verdict.description, attempts=attempt, latency_s=time.monotonic() - started
                    )
                delay = backoff_delay(
                    attempt, self.options.backoff_base_s, self.options.backoff_max_s, verdict.retry_after_s, self._rng
                )
                await asyncio.sleep(delay)
                continue
            cost = cost_usd(self.options.model, prompt_tokens, completion_tokens, self.options.prices)
            return CallResult(
                key, "ok", text, None, prompt_tokens, completion_tokens, cost, attempt, time.monotonic() - started
            )

    def _log_error(self, description: str, attempts: int) -> None:
        self._errors_logged += 1
        if self._errors_logged <= SHOWN_ERRORS:
            self.log(f"call failed after {attempts} attempt(s): {description}", "warning")
        elif self._errors_logged == SHOWN_ERRORS + 1:
            self.log("more calls failed; the count is in the summary", "warning")
