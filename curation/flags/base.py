"""What every rule shares: the finding it returns, the vectors some rules read, and text helpers."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from curation.textnorm import normalize_text

if TYPE_CHECKING:
    import numpy as np

QUOTE_CHARS = 80
_NOT_WORD = re.compile(r"[^\w\s]|_")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


@dataclass(frozen=True)
class FlagHit:
    """One rule that fired on one record, with the reason a person reads (evidence quoted)."""

    name: str
    reason: str


@dataclass(frozen=True)
class FlagEmbeddings:
    """L2-normalised sentence vectors, one row per record in order: instruction only and output only.

    ``inputs`` (optional, zero rows where a record has no input) lets the off-topic rule judge tasks
    that carry an input ("Summarize the following text"): their output answers the input, which a
    generic instruction alone does not describe. Without it those records are not judged off-topic.
    """

    instructions: np.ndarray
    outputs: np.ndarray
    inputs: np.ndarray | None = None

    def check(self, n_records: int) -> None:
        named = [("instruction", self.instructions), ("output", self.outputs), ("input", self.inputs)]
        for label, vectors in named:
            if vectors is not None and (vectors.ndim != 2 or vectors.shape[0] != n_records):
                raise ValueError(
                    f"{label} embeddings have shape {vectors.shape}, expected one row per record ({n_records})"
                )


def fold(text: str) -> str:
    """Case-, whitespace- and escape-insensitive form of a text; punctuation is kept."""
    return normalize_text(text).casefold()


def bare(text: str) -> str:
    """``fold`` with only letters, digits and single spaces left: what "the same words" compares."""
    return " ".join(_NOT_WORD.sub("", fold(text)).split())


def _is_punctuation(ch: str) -> bool:
    category = unicodedata.category(ch)
    # "<" and ">" (Sm) wrap placeholders such as "<nooutput>"; "^" and "`" are Sk.
    return category[0] == "P" or category in ("Sm", "Sk")


def only_punctuation(text: str) -> bool:
    stripped = "".join(text.split())
    return bool(stripped) and all(_is_punctuation(ch) for ch in stripped)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """The text in double quotes on one line, cut at a word boundary with "…" if long."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        cut = flat[:limit].rsplit(" ", 1)[0] if " " in flat[:limit] else flat[:limit]
        flat = cut.rstrip(" ,;:") + "…"
    return f'"{flat}"'


def quote_tail(text: str, limit: int = 40) -> str:
    """The last words of a text in double quotes, led by "…" when cut."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        cut = flat[-limit:]
        flat = "…" + (cut.split(" ", 1)[1] if " " in cut else cut)
    return f'"{flat}"'


_CODE_LINE = re.compile(r"[;{}]\s*$|^\s*(?:def|class|import|from|return|for|while|if|else|elif|print|function|var|let|const|public|private|#include)\b|</?[a-zA-Z][^>]*>")


def looks_like_code(text: str) -> bool:
    """A fenced block, or a third of the lines shaped like code or markup."""
    if "```" in text:
        return True
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) >= 2 and sum(bool(_CODE_LINE.search(line)) for line in lines) * 3 >= len(lines)
