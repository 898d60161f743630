"""One OpenAI-compatible client for every caller (the AlpaGasus rater, answer generation, pairwise judges).

Built for a team that pays per call:
- every call is written to the ``llm_calls`` table (``store.calls``) as it completes, keyed by a hash of
  what was asked (model, messages or prompt, parameters), with its tokens and cost; an identical request
  is answered from there, so a finished run re-run makes no call and a killed run resumes with only the
  missing ones;
- calls run concurrently (bounded) and are retried (:mod:`curation.llm.retry`, on tenacity) with
  exponential backoff and jitter on 429, 5xx, timeouts, dropped connections and malformed bodies,
  honouring Retry-After; a call that still fails comes back as an ``error`` result for that one request
  (retried by the next run), never a failed job. Only answers that say the whole configuration is wrong
  (401, 403, 404) stop the run, and so does an endpoint that cannot be connected to at all (one probe
  before the first call: fail in a second, not after minutes of retries);
- the key goes only to a base URL it was configured for, and every text that comes back is redacted
  (:mod:`curation.llm.keys`).

Entry point: :class:`LLMClient` with :meth:`LLMClient.complete` (a request is a dict with ``model`` and
either ``messages`` for chat completions or ``prompt`` for the completions endpoint, plus parameters).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from curation.llm.keys import PLACEHOLDER_KEY, Redactor, allowed_base_urls, key_allowed
from curation.llm.retry import (
    FATAL_STATUS,
    RETRYABLE_STATUS,
    MalformedResponse,
    Verdict,
    backoff_delay,
    classify,
    retry_after_seconds,
    retrying,
    short,
    unreachable,
)
from curation.store import CallRow, Store
from curation.store.writer import BatchWriter

__all__ = [
    "FATAL_STATUS",
    "PLACEHOLDER_KEY",
    "RETRYABLE_STATUS",
    "MalformedResponse",
    "Verdict",
    "backoff_delay",
    "classify",
    "retry_after_seconds",
]

LogFn = Callable[[str, str], None]  # (message, level)
SHOWN_ERRORS = 20
PROBE_TIMEOUT_S = 10.0
REQUEST_FIELDS = ("model", "messages", "prompt")
_short = short


@dataclass(frozen=True)
class EndpointOptions:
    """How an endpoint is called: address, model, limits, retries, decoding, prices, where the key may go."""

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
    # The environment variable (or secrets.toml key) holding the key: its value is redacted everywhere.
    api_key_name: str = "OPENAI_API_KEY"
    # Base URLs the key may be sent to; any other gets a placeholder. Empty: the key goes nowhere.
    key_base_urls: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> EndpointOptions:
        """From any config section with these field names (``settings.llm``), plus non-None overrides.

        The key's allow-list comes from the section (``key_base_urls``, else its configured ``base_url``)
        before any override: a ``base_url`` override never widens where the key goes.
        """
        names = {f.name for f in fields(cls)}
        values = {name: getattr(config, name) for name in names if hasattr(config, name)}
        values["key_base_urls"] = (
            tuple(config.key_base_urls) if isinstance(config, EndpointOptions) else allowed_base_urls(config)
        )
        names.discard("key_base_urls")
        values.update({k: v for k, v in overrides.items() if v is not None and k in names})
        options = cls(**values)
        if options.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {options.concurrency}")
        return options

    def params(self) -> dict[str, Any]:
        """The request parameters besides model and messages (part of the call key)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}

    @property
    def sends_key(self) -> bool:
        """True when the configured key goes to this base URL (it is on the allow-list)."""
        return key_allowed(self.base_url, self.key_base_urls)

    @property
    def paid(self) -> bool:
        """Costs money, or might: a model without a known price counts as paid."""
        return is_paid(self.model, self.prices)


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


def request_key(request: Mapping[str, Any]) -> str:
    """The call key of a request dict: chat requests keep the key they always had."""
    params = {k: v for k, v in request.items() if k not in REQUEST_FIELDS}
    if "messages" in request:
        return call_key(request["model"], request["messages"], params)
    return hashlib.sha256(
        _canonical({"model": request["model"], "prompt": request["prompt"], "params": params}).encode()
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


def is_paid(model: str, prices: Mapping[str, Sequence[float]]) -> bool:
    """An unknown price counts as paid (the cost is unknown, not zero); a listed [0, 0] is free."""
    price = price_per_million(model, prices)
    return price is None or price[0] > 0 or price[1] > 0


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int, prices: Mapping[str, Sequence[float]]) -> float:
    """What a call cost; 0.0 for a model without a known price (shown as unknown by callers that check)."""
    price = price_per_million(model, prices)
    return 0.0 if price is None else (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6


def estimate_prompt_tokens(messages: Sequence[Mapping[str, str]]) -> int:
    """About 4 characters a token for English, plus the chat format's few tokens per message."""
    return sum(math.ceil(len(m["content"]) / 4) + 4 for m in messages) + 3


@dataclass(frozen=True)
class CallResult:
    key: str
    status: str  # ok | error
    text: str | None = None  # redacted
    error: str | None = None  # redacted
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 0
    latency_s: float = 0.0
    cached: bool = False


class EndpointRefused(RuntimeError):
    """The endpoint refused the key, the permission or the model: no call can succeed until it is fixed."""


class EndpointUnreachable(EndpointRefused):
    """Nothing answers at the base URL (connection refused, unknown host): no call was made."""


class CallLog:
    """The client's view of ``store.calls``: stored calls as :class:`CallResult`, results saved as rows."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def answered(self, keys: Iterable[str]) -> dict[str, CallResult]:
        """The calls among ``keys`` that already have an answer."""
        return {key: _result(row) for key, row in self.store.calls.answered(keys).items()}

    def save(self, entries: Sequence[tuple[CallResult, dict[str, Any], int | None]]) -> None:
        """Store (result, request, job id) entries; an answered call is never overwritten by a failure."""
        self.store.calls.save([_row(result, request, job_id) for result, request, job_id in entries])

    def completion_tokens_mean(self, model: str) -> tuple[float, int]:
        return self.store.calls.completion_tokens_mean(model)


def _result(row: CallRow) -> CallResult:
    return CallResult(
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


def _row(result: CallResult, request: dict[str, Any], job_id: int | None) -> CallRow:
    return CallRow(
        key=result.key,
        model=request["model"],
        request=request,
        status=result.status,
        response_text=result.text,
        error=result.error,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cost_usd=result.cost_usd,
        attempts=result.attempts,
        latency_s=result.latency_s,
        job_id=job_id,
    )


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
    return content, *_usage(response)


def read_text_completion(response: Any) -> tuple[str, int, int]:
    """Like :func:`read_completion` for the (legacy) completions endpoint: ``choices[0].text``."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise MalformedResponse(f"no choices in the response ({_short(repr(response), 120)})")
    content = getattr(choices[0], "text", None)
    if not isinstance(content, str):
        raise MalformedResponse("the first choice has no text")
    return content, *_usage(response)


def _usage(response: Any) -> tuple[int, int]:
    usage = getattr(response, "usage", None)
    return int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)


ResultFn = Callable[[int, CallResult], None]  # (index of the request, its result)


class LLMClient:
    """Concurrent, retried, logged and cached calls to one endpoint; see the module docstring.

    ``api_key`` is sent only when ``options.base_url`` is on ``options.key_base_urls``; otherwise the
    endpoint gets a placeholder. Every text that comes back is redacted before anyone sees it.
    """

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
        self.key_withheld = bool(api_key) and not options.sends_key
        self.api_key = api_key if api_key and options.sends_key else PLACEHOLDER_KEY
        self.redact = Redactor(api_key, options.api_key_name)
        self.job_id = job_id
        self.log = log or (lambda message, level="info": None)
        self.stats = CallStats()
        self._rng = random.Random(seed)
        self._errors_logged = 0
        if self.key_withheld:
            self.log(
                f"the API key is not sent to {options.base_url}: it is configured for "
                f"{', '.join(options.key_base_urls) or 'no endpoint'} (setting llm.key_base_urls)",
                "info",
            )

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
        loop = asyncio.get_running_loop()
        writer: BatchWriter[tuple[CallResult, dict[str, Any], int | None, asyncio.Future[None]]] = BatchWriter(
            lambda batch: self.calls.save([entry[:3] for entry in batch]),
            "llm-call-log",
            after=lambda batch, error: [loop.call_soon_threadsafe(_settle, entry[3], error) for entry in batch],
        )
        queue = iter(pending)

        async def worker() -> None:
            for index in queue:  # one shared iterator: each index goes to exactly one worker
                call = await self._call(client, keys[index], requests[index])
                logged: asyncio.Future[None] = loop.create_future()
                writer.put((call, requests[index], self.job_id, logged))
                # The caller stores what it makes of the answer (a rating, a verdict) only once the call
                # itself is in the log: a kill between the two never leaves a result without its call.
                await logged
                finish(index, call)

        workers: list[asyncio.Task[None]] = []
        try:
            await self._probe(client)
            workers = [asyncio.create_task(worker()) for _ in range(min(self.options.concurrency, len(pending)))]
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        finally:
            await client.close()
            writer.close()

    async def _probe(self, client: Any) -> None:
        """One cheap request (list models) first: if nothing can be connected to, say so at once.

        Any answer at all, even an error status, means the endpoint is there; only a failed connection
        stops the run, before any call was made.
        """
        try:
            await asyncio.wait_for(client.models.list(), min(self.options.timeout_s, PROBE_TIMEOUT_S))
        except Exception as error:  # noqa: BLE001 -- only an impossible connection matters here
            if unreachable(error):
                cause = error.__cause__ or error.__context__
                raise EndpointUnreachable(
                    f"nothing answers at {self.options.base_url} ({self.redact(_short(str(cause)))}); start the "
                    "server or check the base URL (setting llm.base_url or --base-url); no call was made"
                ) from None

    async def _send(self, client: Any, request: dict[str, Any]) -> tuple[str, int, int]:
        if "messages" in request:
            response = await asyncio.wait_for(client.chat.completions.create(**request), self.options.timeout_s)
            return read_completion(response)
        response = await asyncio.wait_for(client.completions.create(**request), self.options.timeout_s)
        return read_text_completion(response)

    async def _call(self, client: Any, key: str, request: dict[str, Any]) -> CallResult:
        """One request with retries; returns an ``error`` result rather than raising, except when fatal."""
        started = time.monotonic()
        attempts = 0

        async def attempt() -> tuple[str, int, int]:
            nonlocal attempts
            attempts += 1
            return await self._send(client, request)

        options = self.options
        policy = retrying(
            options.max_retries, options.timeout_s, options.backoff_base_s, options.backoff_max_s, self._rng
        )
        try:
            text, prompt_tokens, completion_tokens = await policy(attempt)
        except Exception as error:  # noqa: BLE001 -- every failure becomes this request's error result
            verdict = classify(error, options.timeout_s)
            description = self.redact(verdict.description) or ""
            if verdict.fatal:
                raise EndpointRefused(self._refusal(description)) from None
            self._log_error(description, attempts)
            return CallResult(key, "error", error=description, attempts=attempts, latency_s=time.monotonic() - started)
        cost = cost_usd(options.model, prompt_tokens, completion_tokens, options.prices)
        return CallResult(
            key,
            "ok",
            self.redact(text),
            None,
            prompt_tokens,
            completion_tokens,
            cost,
            attempts,
            time.monotonic() - started,
        )

    def _refusal(self, description: str) -> str:
        where = (
            f"the API key was not sent: {self.options.base_url} is not in llm.key_base_urls"
            if self.key_withheld
            else "check the model name and the API key (settings llm.model, llm.api_key_name)"
        )
        return f"{self.options.base_url} refused the request ({description}); {where}"

    def _log_error(self, description: str, attempts: int) -> None:
        self._errors_logged += 1
        if self._errors_logged <= SHOWN_ERRORS:
            self.log(f"call failed after {attempts} attempt(s): {description}", "warning")
        elif self._errors_logged == SHOWN_ERRORS + 1:
            self.log("more calls failed; the count is in the summary", "warning")


def _settle(logged: asyncio.Future[None], error: BaseException | None) -> None:
    if logged.done():  # its worker was cancelled meanwhile
        return
    if error is None:
        logged.set_result(None)
    else:
        logged.set_exception(RuntimeError(f"storing the call log failed: {error}"))
