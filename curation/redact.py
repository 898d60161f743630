"""Secrets never reach the store, a log, a file or the screen: redact them from any text first.

An endpoint that echoes the request (an error body quoting the Authorization header, a proxy page) would
otherwise carry the API key into ``ratings.raw``, ``llm_calls.error``, job errors and logs. :func:`redact`
replaces the values of the configured secret variables and anything shaped like a key or bearer token.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

MASK = "[REDACTED]"
# Names whose values are secrets wherever they appear (the configured api_key_name is added by callers).
SECRET_NAMES = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HF_TOKEN", "OIDC_CLIENT_SECRET")
_SHAPES = re.compile(
    r"(?i)(?:"
    r"\bsk-[A-Za-z0-9_\-]{8,}"  # OpenAI-style keys
    r"|\bhf_[A-Za-z0-9]{16,}"  # Hugging Face tokens
    r"|(?<=bearer )[A-Za-z0-9._~+/\-]{8,}=*"  # Authorization: Bearer <token>
    r"|(?<=api-key: )\S{8,}|(?<=api_key=)[^\s&\"']{8,}|(?<=\"api_key\": \")[^\"]{8,}"
    r")"
)
MIN_SECRET_LENGTH = 6  # shorter values ("1", "test") would blank out ordinary words


def redact(text: str | None, extra_names: Iterable[str] = ()) -> str | None:
    """``text`` with every known secret value and key-shaped token replaced by ``[REDACTED]``."""
    if not text:
        return text
    for value in _secret_values(extra_names):
        text = text.replace(value, MASK)
    return _SHAPES.sub(MASK, text)


def _secret_values(extra_names: Iterable[str]) -> list[str]:
    names = dict.fromkeys([*SECRET_NAMES, *extra_names])
    values = [os.environ.get(name, "") for name in names]
    # Longest first, so a key that contains another is masked whole.
    return sorted({v for v in values if len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
