"""The AlpaGasus rater over any OpenAI-compatible endpoint (OpenAI, Azure-style, vLLM, Ollama, transformers serve).

Built for a team that pays per call:
- every call is written to the ``llm_calls`` table as it completes, keyed by a hash of what was asked
  (model, messages, parameters), with its tokens and cost; an identical request is answered from
  there, so a finished run re-run makes no call and a killed run resumes with only the missing ones;
- calls run concurrently (bounded) and are retried with exponential backoff and jitter on 429, 5xx,
  timeouts, dropped connections and malformed bodies, honouring Retry-After; a call that still fails
  becomes an ``error`` rating for that one example (retried by the next run), never a failed job.
  Only answers that say the whole configuration is wrong (401, 403, 404) stop the run.
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
from dataclasses import dataclass, field, fields, replace
from email.utils import parsedate_to_datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from curation.config import LLMConfig
from curation.raters.base import ProgressFn, RatingResult, ResultsFn
from curation.raters.parse import PARSE_RULES_VERSION, parse_answer
from curation.raters.prompt import TEMPLATE_HASH, build_messages, check_dimension
from curation.raters.writer import BatchWriter
from curation.records import Record
from curation.store import Store, utcnow
from curation.store.schema import LLMCall

LogFn = Callable[[str, str], None]  # (message, level)
PLACEHOLDER_KEY = "no-key-configured"  # local servers ignore the key, the client insists on one
RETRYABLE_STATUS = (408, 409, 429)
FATAL_STATUS = (401, 403, 404)  # the key, the permission or the model is wrong: every call would fail
SHOWN_ERRORS = 20
_CLIENT_PREFIX = re.compile(r"^Error code: \d+ - ")


@dataclass(frozen=True)
class LLMOptions:
    """Everything that decides how the endpoint is called; built from ``settings.llm`` plus overrides."""

    model: str
    base_url: str
    api_version: str = ""  # set: Azure-style endpoint (deployment in the path, api-key header)
    dimension: str = "accuracy"
    concurrency: int = 16
    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_tokens: int = 256
    temperature: float = 0.0  # the paper's setting: the same example always gets the same rating
    prices: dict[str, list[float]] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def from_config(cls, config: LLMConfig, **overrides: Any) -> LLMOptions:
        names = {f.name for f in fields(cls)}
        values = {name: getattr(config, name) for name in names if hasattr(config, name)}
        values.update({k: v for k, v in overrides.items() if v is not None and k in names})
        options = cls(**values)
        if options.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {options.concurrency}")
        return replace(options, dimension=check_dimension(options.dimension))

    def params(self) -> dict[str, Any]:
        """The request parameters besides model and messages (part of the call key)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}

    @property
    def rater_name(self) -> str:
        return f"llm:{self.model}:{self.dimension}"

    @property
    def rater_version(self) -> str:
        """Changes with anything that can change a rating: prompt wording, parse rules, model, parameters."""
        parts = [TEMPLATE_HASH, PARSE_RULES_VERSION, self.model, self.dimension, self.params()]
        return hashlib.sha256(_canonical(parts).encode()).hexdigest()[:16]


def make_client(options: LLMOptions, api_key: str) -> Any:
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


class LLMRater:
    """Rates records with the paper's prompt; see the module docstring for the guarantees."""

    def __init__(
        self,
        options: LLMOptions,
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

    @property
    def name(self) -> str:
        return self.options.rater_name

    @property
    def version(self) -> str:
        return self.options.rater_version

    @property
    def dimension(self) -> str:
        return self.options.dimension

    def request_for(self, record: Record) -> dict[str, Any]:
        messages = build_messages(record.instruction, record.input, record.output, self.options.dimension)
        return {"model": self.options.model, "messages": messages, **self.options.params()}

    def key_for(self, request: Mapping[str, Any]) -> str:
        return call_key(request["model"], request["messages"], self.options.params())

    def rate(
        self, records: Sequence[Record], progress: ProgressFn | None = None, on_results: ResultsFn | None = None
    ) -> list[RatingResult]:
        return asyncio.run(self.rate_async(records, progress, on_results))

    async def rate_async(
        self, records: Sequence[Record], progress: ProgressFn | None = None, on_results: ResultsFn | None = None
    ) -> list[RatingResult]:
        requests = [self.request_for(record) for record in records]
        keys = [self.key_for(request) for request in requests]
        results: list[RatingResult | None] = [None] * len(records)
        done = 0

        def finish(index: int, call: CallResult) -> None:
            nonlocal done
            self.stats.add(call)
            results[index] = self._rating(records[index], call)
            if on_results is not None:
                on_results([results[index]])  # type: ignore[list-item]
            done += 1
            if progress is not None:
                progress(done, len(records))

        answered = self.calls.answered(keys)
        pending = []
        for index, key in enumerate(keys):
            if key in answered:
                finish(index, answered[key])
            else:
                pending.append(index)
        if pending:
            await self._call_all(pending, requests, keys, finish)
        return results  # type: ignore[return-value]

    async def _call_all(
        self,
        pending: list[int],
        requests: list[dict[str, Any]],
        keys: list[str],
        finish: Callable[[int, CallResult], None],
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

    async def _call(self, client: Any, key: str, request: dict[str, Any]) -> CallResult:
        """One request with retries; returns an ``error`` result rather than raising, except when fatal."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await asyncio.wait_for(client.chat.completions.create(**request), self.options.timeout_s)
                text, prompt_tokens, completion_tokens = read_completion(response)
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

    def _rating(self, record: Record, call: CallResult) -> RatingResult:
        if call.status != "ok":
            return RatingResult(record.id, "error", None, None, None, call.error)
        parsed = parse_answer(call.text)
        if parsed.status != "ok":
            # No number and no explanation: the raw answer is what an annotator reads.
            return RatingResult(record.id, "unparsed", None, None, None, call.text)
        return RatingResult(record.id, "ok", parsed.score, parsed.score, parsed.explanation, call.text)

    def _log_error(self, description: str, attempts: int) -> None:
        self._errors_logged += 1
        if self._errors_logged <= SHOWN_ERRORS:
            self.log(f"call failed after {attempts} attempt(s): {description}", "warning")
        elif self._errors_logged == SHOWN_ERRORS + 1:
            self.log("more calls failed; the count is in the summary", "warning")
