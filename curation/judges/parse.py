"""Reading a verdict out of a judge's review, tolerantly but never by guessing.

Each parser says which *position* won (``1`` = the answer shown first, ``2`` = shown second, ``tie``);
turning positions into models is the caller's job (it knows the order). A review that cannot be read
with confidence is ``unparsed`` and keeps its reason; it is never turned into a draw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Part of every judge's version: changing a rule re-parses stored reviews (the calls are cached, free).
PARSE_RULES_VERSION = "1"
SCORE_MIN, SCORE_MAX = 0.0, 10.0

_MARKUP = re.compile(r"[*_`#>]+")
_NUMBER = r"(\d+(?:\.\d+)?)"
_OF_TEN = r"(?:\s*(?:/|out\s+of)\s*10(?:\.0+)?)?"
# "8 7", "8.5 9", "8, 7", "8/10 7/10", "Scores: 8 7"
_PAIR_LINE = re.compile(
    rf"^(?:(?:the\s+)?scores?\s*(?:are|:)?\s*)?{_NUMBER}{_OF_TEN}\s*(?:,|;|\s|\band\b)\s*{_NUMBER}{_OF_TEN}\s*\.?$",
    re.IGNORECASE,
)
# "Assistant 1: 8", "Assistant 1 receives a score of 8/10", "Score for Assistant 2 - 6"
_LABELLED = {
    position: re.compile(
        rf"(?:assistant|answer|response)\s*{position}\b[^\d\n]{{0,40}}?{_NUMBER}{_OF_TEN}", re.IGNORECASE
    )
    for position in (1, 2)
}
_DOUBLE = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE)
_SINGLE = re.compile(r"\[\s*(A|B|C)\s*\]")
_VERDICT_WORD = re.compile(r"^(?:(?:final\s+)?verdict\s*[:\-]?\s*)?(?:assistant\s+)?(A|B|C|tie)\.?$", re.IGNORECASE)
_PANDALM_FIRST = re.compile(r"^(?:response\s*)?(1|2|tie)\b\.?", re.IGNORECASE)
_SECTION = re.compile(r"###\s*(reason|reference)\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedReview:
    status: str  # ok | unparsed
    winner: str | None = None  # "1" | "2" | "tie": the position that won
    score_1: float | None = None
    score_2: float | None = None
    reason: str | None = None  # the judge's explanation (PandaLM's "### Reason")
    reference: str | None = None  # PandaLM's reference answer
    problem: str | None = None  # why the review is unparsed


def unparsed(problem: str) -> ParsedReview:
    return ParsedReview("unparsed", problem=problem)


def _winner_from_scores(score_1: float, score_2: float) -> str:
    if score_1 > score_2:
        return "1"
    return "2" if score_2 > score_1 else "tie"


def _clean(line: str) -> str:
    return " ".join(_MARKUP.sub(" ", line).split())


def parse_scores(text: str | None) -> ParsedReview:
    """Vicuna reviews: two scores on the first line ("8 7"); else labelled lines ("Assistant 1: 8")."""
    if text is None or not text.strip():
        return unparsed("the review is empty")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    first = _clean(lines[0])
    match = _PAIR_LINE.match(first)
    if match is not None:
        scores = (float(match.group(1)), float(match.group(2)))
        explanation = "\n".join(lines[1:]).strip() or None
    else:
        scores = _labelled_scores("\n".join(_clean(line) for line in lines[:6]))
        explanation = text.strip()
        if scores is None:
            return unparsed(f"no two scores on the first line nor 'Assistant 1: N' lines: {lines[0].strip()[:80]!r}")
    if not all(SCORE_MIN <= s <= SCORE_MAX for s in scores):
        return unparsed(f"scores {scores[0]:g} and {scores[1]:g} are not both within 0-10")
    return ParsedReview("ok", _winner_from_scores(*scores), scores[0], scores[1], explanation)


def _labelled_scores(head: str) -> tuple[float, float] | None:
    found = [_LABELLED[position].search(head) for position in (1, 2)]
    if found[0] is None or found[1] is None:
        return None
    return float(found[0].group(1)), float(found[1].group(1))


def parse_verdict(text: str | None) -> ParsedReview:
    """Zheng reviews: the last "[[A]]" / "[[B]]" / "[[C]]" (single brackets and a bare final "Tie" accepted)."""
    if text is None or not text.strip():
        return unparsed("the review is empty")
    tokens = _DOUBLE.findall(text) or _SINGLE.findall(text)
    if tokens:
        token = tokens[-1].upper()  # the final verdict comes last; the format may be quoted before it
    else:
        last = _clean(text.strip().splitlines()[-1])
        word = _VERDICT_WORD.match(last)
        if word is None:
            return unparsed("no [[A]], [[B]] or [[C]] verdict in the review")
        token = word.group(1).upper()
    winner = {"A": "1", "B": "2", "C": "tie", "TIE": "tie"}[token]
    return ParsedReview("ok", winner, reason=text.strip())


def parse_pandalm(text: str | None) -> ParsedReview:
    """PandaLM: ``1``, ``2`` or ``Tie`` on the first line, then ``### Reason:`` and ``### Reference:``."""
    if text is None or not text.strip():
        return unparsed("the review is empty")
    body = text.replace("</s>", "").strip()
    first = _clean(body.splitlines()[0])
    match = _PANDALM_FIRST.match(first)
    if match is None:
        return unparsed(f"the first line is not 1, 2 or Tie: {body.splitlines()[0].strip()[:80]!r}")
    sections = _sections(body)
    winner = match.group(1).lower()
    return ParsedReview("ok", winner, reason=sections.get("reason"), reference=sections.get("reference"))


def _sections(body: str) -> dict[str, str]:
    parts = _SECTION.split(body)
    # split keeps the captured names: [before, name, text, name, text, ...]
    return {parts[i].lower(): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
