"""Calls to OpenAI-compatible endpoints, shared by the rater, answer generation and the judges."""

from curation.llm.client import (
    CallResult,
    CallStats,
    EndpointOptions,
    EndpointRefused,
    EndpointUnreachable,
    LLMClient,
    cost_usd,
    estimate_prompt_tokens,
    is_paid,
    price_per_million,
    request_key,
)
from curation.llm.keys import key_allowed

__all__ = [
    "CallResult",
    "CallStats",
    "EndpointOptions",
    "EndpointRefused",
    "EndpointUnreachable",
    "LLMClient",
    "cost_usd",
    "estimate_prompt_tokens",
    "is_paid",
    "key_allowed",
    "price_per_million",
    "request_key",
]
