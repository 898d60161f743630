"""One judge interface, three judges: ``vicuna`` (two scores), ``zheng`` ([[A]]/[[B]]/[[C]]), ``pandalm``.

A judge turns (instruction, input, the answer shown first, the answer shown second) into one request
for :class:`curation.llm.LLMClient` and reads the review that comes back. It knows positions only;
:mod:`curation.judges.compare` decides which model sits in which position (both orders, always).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from curation.config import JudgeConfig
from curation.judges import prompts
from curation.judges.parse import PARSE_RULES_VERSION, ParsedReview, parse_pandalm, parse_scores, parse_verdict
from curation.llm import EndpointOptions

JUDGE_KINDS = ("vicuna", "zheng", "pandalm")
PANDALM_ENDPOINTS = ("completions", "chat")


class JudgeError(ValueError):
    """A judge that cannot be built as asked; the message says what to change."""


class Judge(Protocol):
    kind: str
    endpoint: EndpointOptions
    has_scores: bool  # the review carries a score per answer (capacity can be computed)

    def request(self, instruction: str, input: str, first: str, second: str) -> dict[str, Any]: ...

    def parse(self, text: str | None) -> ParsedReview: ...

    @property
    def version(self) -> str: ...


@dataclass(frozen=True)
class _EndpointJudge:
    endpoint: EndpointOptions

    kind = ""
    has_scores = False

    def params(self) -> dict[str, Any]:
        return self.endpoint.params()

    @property
    def version(self) -> str:
        """Changes with anything that can change a verdict: prompt texts, parse rules, model, parameters."""
        parts = [self.kind, prompts.templates_hash(), PARSE_RULES_VERSION, self.endpoint.model, self.params()]
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class VicunaJudge(_EndpointJudge):
    kind = "vicuna"
    has_scores = True

    def request(self, instruction: str, input: str, first: str, second: str) -> dict[str, Any]:
        messages = prompts.vicuna_messages(instruction, input, first, second)
        return {"model": self.endpoint.model, "messages": messages, **self.params()}

    def parse(self, text: str | None) -> ParsedReview:
        return parse_scores(text)


@dataclass(frozen=True)
class ZhengJudge(_EndpointJudge):
    kind = "zheng"

    def request(self, instruction: str, input: str, first: str, second: str) -> dict[str, Any]:
        messages = prompts.zheng_messages(instruction, input, first, second)
        return {"model": self.endpoint.model, "messages": messages, **self.params()}

    def parse(self, text: str | None) -> ParsedReview:
        return parse_verdict(text)


@dataclass(frozen=True)
class PandaLMJudge(_EndpointJudge):
    kind = "pandalm"
    use_chat: bool = False
    extra_body: tuple[tuple[str, Any], ...] = ()

    def params(self) -> dict[str, Any]:
        params = self.endpoint.params()
        if self.extra_body:
            params["extra_body"] = dict(self.extra_body)
        return params

    def request(self, instruction: str, input: str, first: str, second: str) -> dict[str, Any]:
        prompt = prompts.pandalm_prompt(instruction, input, first, second)
        if self.use_chat:
            return {"model": self.endpoint.model, "messages": [{"role": "user", "content": prompt}], **self.params()}
        return {"model": self.endpoint.model, "prompt": prompt, **self.params()}

    def parse(self, text: str | None) -> ParsedReview:
        return parse_pandalm(text)


def make_judge(
    kind: str,
    config: JudgeConfig,
    prices: dict[str, list[float]] | None = None,
    model: str | None = None,
    base_url: str | None = None,
    concurrency: int | None = None,
    pandalm_endpoint: str | None = None,
) -> Judge:
    """The judge ``kind`` on the endpoint of ``config`` (settings.judge) with these overrides."""
    if kind not in JUDGE_KINDS:
        raise JudgeError(f"unknown judge '{kind}'; choose one of {', '.join(JUDGE_KINDS)}")
    max_tokens = config.pandalm_max_tokens if kind == "pandalm" else config.max_tokens
    try:
        endpoint = EndpointOptions.from_config(
            config, model=model, base_url=base_url, concurrency=concurrency, max_tokens=max_tokens
        )
    except ValueError as err:
        raise JudgeError(str(err)) from err
    endpoint = EndpointOptions(**{**endpoint.__dict__, "prices": dict(prices or {})})
    if kind == "vicuna":
        return VicunaJudge(endpoint)
    if kind == "zheng":
        return ZhengJudge(endpoint)
    mode = pandalm_endpoint or config.pandalm_endpoint
    if mode not in PANDALM_ENDPOINTS:
        raise JudgeError(f"pandalm endpoint '{mode}' is unknown; choose completions or chat")
    return PandaLMJudge(endpoint, use_chat=mode == "chat", extra_body=tuple(sorted(config.pandalm_extra_body.items())))
