"""Calls to OpenAI-compatible endpoints, shared by the rater, answer generation and the judges."""

from curation.llm.client import (
    CallResult,
    CallStats,
    EndpointOptions,
    EndpointRefused,
    LLMClient,
    cost_usd,
    estimate_prompt_tokens,
    price_per_million,
    request_key,
)

__all__ = [
    "CallResult",
    "CallStats",
    "EndpointOptions",
    "EndpointRefused",
    "LLMClient",
    "cost_usd",
    "estimate_prompt_tokens",
    "price_per_million",
    "request_key",
]
