"""Where the API key may go, and keeping it out of everything that comes back.

The key is sent only to a base URL a lead configured for it (``llm.key_base_urls``, by default the
configured ``llm.base_url``); a model or URL typed by a user is called with a placeholder instead. Every
text that comes back from an endpoint (answers, error bodies) is redacted before it is stored, logged or
printed, because an endpoint may echo the request's headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from curation.redact import MASK, MIN_SECRET_LENGTH, redact

PLACEHOLDER_KEY = "no-key-configured"  # local servers ignore the key; the openai client insists on one


def normal_url(url: str) -> str:
    """Scheme and host lower-cased, no trailing slash: the form base URLs are compared in."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}" + (
        f"?{parts.query}" if parts.query else ""
    )


def key_allowed(base_url: str, allowed: Iterable[str]) -> bool:
    """True when ``base_url`` is one of the endpoints the key was configured for."""
    return normal_url(base_url) in {normal_url(url) for url in allowed if url}


def allowed_base_urls(config: object) -> tuple[str, ...]:
    """The allow-list of a config section: its ``key_base_urls``, else its own ``base_url``."""
    listed = getattr(config, "key_base_urls", None)
    if listed:
        return tuple(listed)
    base_url = getattr(config, "base_url", "")
    return (base_url,) if base_url else ()


class Redactor:
    """Masks one key value, the configured key variable and anything key-shaped (:func:`curation.redact.redact`)."""

    def __init__(self, api_key: str | None, api_key_name: str = "") -> None:
        # A very short value ("x" in a test) would blank out ordinary letters; redact() has the same floor.
        usable = api_key and api_key != PLACEHOLDER_KEY and len(api_key) >= MIN_SECRET_LENGTH
        self._key = api_key if usable else None
        self._names = [api_key_name] if api_key_name else []

    def __call__(self, text: str | None) -> str | None:
        if not text:
            return text
        if self._key:
            text = text.replace(self._key, MASK)
        return redact(text, self._names)
