"""The AlpaGasus rater over any OpenAI-compatible endpoint (OpenAI, Azure-style, vLLM, Ollama, transformers serve).

The calls themselves (concurrency, retries with Retry-After, the call log and its cache, cost) are the
shared client's (:mod:`curation.llm.client`); this module builds the paper's prompt for each record and
turns each answer into a rating.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from curation.llm.client import (
    CallLog,
    CallResult,
    CallStats,
    EndpointOptions,
    EndpointRefused,
    EndpointUnreachable,
    LLMClient,
    LogFn,
    _canonical,
    call_key,
    cost_usd,
    estimate_prompt_tokens,
    is_paid,
    price_per_million,
    read_completion,
)
from curation.llm.retry import backoff_delay, classify, retry_after_seconds
from curation.progress import ProgressFn
from curation.raters.base import RatingResult, ResultsFn
from curation.raters.parse import PARSE_RULES_VERSION, parse_answer
from curation.raters.prompt import TEMPLATE_HASH, build_messages, check_dimension
from curation.records import Record
from curation.store import Store

__all__ = [
    "CallLog",
    "CallResult",
    "CallStats",
    "EndpointRefused",
    "EndpointUnreachable",
    "LLMOptions",
    "LLMRater",
    "backoff_delay",
    "call_key",
    "classify",
    "cost_usd",
    "estimate_prompt_tokens",
    "is_paid",
    "price_per_million",
    "read_completion",
    "retry_after_seconds",
]


@dataclass(frozen=True)
class LLMOptions(EndpointOptions):
    """The endpoint's options plus the rated dimension; built from ``settings.llm`` plus overrides."""

    dimension: str = "accuracy"  # temperature stays 0.0, the paper's setting: the same example, the same rating

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> LLMOptions:
        options = super().from_config(config, **overrides)
        assert isinstance(options, LLMOptions)
        return replace(options, dimension=check_dimension(options.dimension))

    def endpoint(self) -> EndpointOptions:
        return EndpointOptions(**{f.name: getattr(self, f.name) for f in fields(EndpointOptions)})

    @property
    def rater_name(self) -> str:
        return f"llm:{self.model}:{self.dimension}"

    @property
    def rater_version(self) -> str:
        """Changes with anything that can change a rating: prompt wording, parse rules, model, parameters."""
        parts = [TEMPLATE_HASH, PARSE_RULES_VERSION, self.model, self.dimension, self.params()]
        return hashlib.sha256(_canonical(parts).encode()).hexdigest()[:16]


class LLMRater:
    """Rates records with the paper's prompt through the shared client."""

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
        self.client = LLMClient(options.endpoint(), store, api_key=api_key, job_id=job_id, log=log, seed=seed)
        self.calls = self.client.calls

    @property
    def stats(self) -> CallStats:
        return self.client.stats

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
        results: list[RatingResult | None] = [None] * len(records)
        done = 0

        def finish(index: int, call: CallResult) -> None:
            nonlocal done
            results[index] = self._rating(records[index], call)
            if on_results is not None:
                on_results([results[index]])  # type: ignore[list-item]
            done += 1
            if progress is not None:
                progress(done, len(records), f"rated {done}/{len(records)}")

        await self.client.complete_async([self.request_for(record) for record in records], finish)
        return results  # type: ignore[return-value]

    def _rating(self, record: Record, call: CallResult) -> RatingResult:
        if call.status != "ok":
            return RatingResult(record.id, "error", None, None, None, call.error)
        parsed = parse_answer(call.text)
        if parsed.status != "ok":
            # No number and no explanation: the raw answer is what an annotator reads.
            return RatingResult(record.id, "unparsed", None, None, None, call.text)
        return RatingResult(record.id, "ok", parsed.score, parsed.score, parsed.explanation, call.text)
