"""Reading a score out of the rater's answer.

The prompt asks for the score alone on the first line and the explanation after it. We accept the
forms models commonly wrap that line in ("Score: 4.5", "4.5/5", "4.5 out of 5", "**4.5**") and nothing
looser: an answer we cannot read with confidence is ``unparsed`` and keeps its raw text for a person to
look at, because a guessed number would silently become training-data selection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Part of every LLM rating's version: changing these rules re-parses stored answers (free: calls are cached).
PARSE_RULES_VERSION = "1"
SCORE_MIN, SCORE_MAX = 0.0, 5.0

_MARKUP = re.compile(r"[*_`#>]+")
_SCORE_LINE = re.compile(
    r"""^
    (?:(?:(?:the|my|overall|final)\s+)*(?:score|rating)s?\s*(?:is\s*)?[:=]?\s*)?  # optional label
    (?P<value>[-+]?\d+(?:\.\d+)?)                                               # the number
    \s*(?:(?:/|out\s+of)\s*5(?:\.0+)?)?                                         # optional "/5" or "out of 5"
    \s*[.!]?$""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True)
class ParsedAnswer:
    status: str  # ok | unparsed
    score: float | None
    explanation: str | None
    reason: str | None = None  # why an answer is unparsed, for the annotator


def parse_answer(text: str | None) -> ParsedAnswer:
    """Score from the first non-blank line; the explanation is everything after it."""
    if text is None or not text.strip():
        return ParsedAnswer("unparsed", None, None, "the answer is empty")
    first, _, rest = text.strip().partition("\n")
    line = " ".join(_MARKUP.sub(" ", first).split())
    match = _SCORE_LINE.match(line)
    if match is None:
        return ParsedAnswer("unparsed", None, None, f"the first line is not a score: {first.strip()[:80]!r}")
    value = float(match.group("value"))
    if not SCORE_MIN <= value <= SCORE_MAX:
        return ParsedAnswer("unparsed", None, None, f"score {match.group('value')} is outside 0-5")
    return ParsedAnswer("ok", value, rest.strip() or None)
