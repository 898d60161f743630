"""Outputs that stop mid-way, judged by how they end, never by length alone.

Lists, tables, code, numbers, titles, sign-offs and short answers legitimately end without a full
stop, so every test below looks at the last line first and only judges prose. Measured on the
bundled pools (see benchmarks/flag_counts.py): Dolly's human answers often skip the final full stop
on a complete sentence, which is why "no terminal punctuation" alone needs a long output that
otherwise punctuates its sentences.
"""

from __future__ import annotations

import re

from curation.config import FlagConfig
from curation.flags.base import bare, looks_like_code, quote_tail, words
from curation.records import Record

# Words a finished sentence does not end on: articles, conjunctions, possessives. Prepositions are
# left out on purpose: English strands them ("where the word originates from", "a goal we are
# conditioned towards"), and particles double as adverbs ("log in", "carry on").
TRAILING_WORDS = frozenset(
    ["a", "an", "the", "and", "or", "but", "nor", "because", "although", "whereas", "whether", "than", "including", "e.g", "i.e", "its", "their", "our", "your", "my", "whose", "very", "via", "despite", "unlike"]
)
_LIST_LINE = re.compile(r"^\s*(?:[-*•+–>]|\d+[.):]|[a-zA-Z][.)]\s|[ivxIVX]+[.)]\s|#)")
_SIGN_OFF = re.compile(
    r"^(?:sincerely|best|regards|thanks|thank you|cheers|yours|love|with\b.*|warm(?:est)? regards|kind regards|"
    r"best wishes|respectfully|all the best|dear\b.*|hi\b.*|hello\b.*|greetings|to whom it may concern)\W*$",
    re.IGNORECASE,
)
# ";" and "/" are left out: SQL and code lines end on ";", and "// end of output //" is a marker.
_DANGLING = ",:-–—&+=("
_STOPS = ".!?"  # "…on Spotify.," is a stray comma after a finished sentence
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_MIN_WORDS = 3
_MIN_PROSE_LINE_WORDS = 8
_REORDER_MAX_WORDS = 10
# "Hawaii has 8 islands in total," is a stray comma; a long clause broken off at a comma is a cut.
_MIN_COMMA_FRAGMENT_WORDS = 8
_FINISHED = re.compile(r"[.!?)\]}]")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?:\s|$)")


class TruncationRule:
    name = "truncated"
    description = "the output stops mid-sentence, mid-code block or on an open bracket"

    def __init__(self, config: FlagConfig) -> None:
        self.min_words = config.truncated_min_words
        self.missing_stop = config.truncated_missing_stop

    def check(self, record: Record) -> str | None:
        text = record.output.rstrip()
        n_words = len(words(text))
        if n_words < _MIN_WORDS:
            return None
        ending = quote_tail(text)
        if text.count("```") % 2:
            return f"a code block opened with ``` is never closed; it ends {ending}"
        if looks_like_code(text):
            return _unclosed_code(text, ending)
        last_line = text.splitlines()[-1].strip()
        if not _is_prose(last_line) or _reorders_prompt(record, text):
            return None
        problem = _open_ending(text, last_line)
        if not problem and self.missing_stop and self._unfinished_prose(text, last_line, n_words):
            problem = "ends mid-sentence (no closing punctuation)"
        return f"{problem} after {n_words} words: {ending}" if problem else None

    def _unfinished_prose(self, text: str, last_line: str, n_words: int) -> bool:
        """A long output that punctuates its sentences, except the last one, which runs on."""
        last_word = text.split()[-1]
        if n_words < self.min_words or not (last_word.isalpha() and last_word.islower()):
            return False
        if len(last_line.split()) < _MIN_PROSE_LINE_WORDS:
            return False
        return len(_SENTENCE_END.findall(text)) >= 2


def _open_ending(text: str, last_line: str) -> str | None:
    """What about the end of a prose output shows it was cut, if anything."""
    opener = _unclosed_bracket(last_line)
    if opener:
        return f'ends inside an unclosed "{opener}"'
    if _dangles(text, last_line):
        return f'ends on a dangling "{text[-1]}"'
    last_word = text.split()[-1]
    if _is_trailing_word(last_word) and (text[-1].isalpha() or last_word.count(".") > 1):
        return f'ends mid-sentence on "{last_word}"'
    return None


def _dangles(text: str, last_line: str) -> bool:
    if text[-1] not in _DANGLING or text[-2:-1] in _STOPS or _short_list_line(text, last_line):
        return False
    return text[-1] != "," or _last_fragment_words(text) >= _MIN_COMMA_FRAGMENT_WORDS


def _is_trailing_word(word: str) -> bool:
    # Lower case only: a capital "A" or "AND" at the end is a name, a label or a note ("Company A").
    return word.islower() and word.rstrip(".") in TRAILING_WORDS


def _reorders_prompt(record: Record, text: str) -> bool:
    """Short outputs that rearrange the prompt's words (sort these words, pick from a list) end anywhere.

    A span copied as it stands is not a rearrangement: "…an amateur record of 31-4 (26 KOs" cut from the
    context is still cut.
    """
    if len(text.split()) > _REORDER_MAX_WORDS:
        return False
    prompt = record.instruction + " " + record.input
    vocabulary = {w.casefold() for w in words(prompt)}
    return all(w.casefold() in vocabulary for w in words(text)) and bare(text) not in bare(prompt)


def _short_list_line(text: str, last_line: str) -> bool:
    """The last line of a multi-line list or table ("Bhojpuri -", "Category 4:") is not a sentence."""
    return text.count("\n") >= 2 and len(last_line.split()) <= 3


def _last_fragment_words(text: str) -> int:
    """Words after the last sentence end."""
    return len(re.split(r"[.!?]\s", text)[-1].split())


def _is_prose(line: str) -> bool:
    if _LIST_LINE.match(line) or _SIGN_OFF.match(line) or "|" in line or "\t" in line:
        return False
    if "#" in line or "http" in line:  # hashtags and links end posts without a full stop
        return False
    segments = line.split(",")
    # "Water, food, knife, first aid kit," is an enumeration, not a sentence.
    return not (len(segments) >= 3 and sum(len(s.split()) for s in segments) / len(segments) <= 3)


def _unclosed_bracket(line: str) -> str | None:
    """The bracket still open at the very end, with an unfinished fragment after it ("…record (26 KOs").

    A bracket left open earlier in a line that then ends its sentence is a typo, not a cut.
    """
    stack: list[tuple[str, int]] = []
    for index, ch in enumerate(line):
        if ch in _OPENERS and not (ch == "(" and index and line[index - 1] in ":;"):  # ":(" is a smiley
            stack.append((ch, index))
        elif stack and ch == _OPENERS[stack[-1][0]]:
            stack.pop()
    if not stack:
        return None
    opener, index = stack[-1]
    return None if _FINISHED.search(line[index + 1 :]) else opener


def _unclosed_code(text: str, ending: str) -> str | None:
    for opener, closer in _OPENERS.items():
        missing = text.count(opener) - text.count(closer)
        if missing > 0:
            return f'code ends with {missing} unclosed "{opener}"; it ends {ending}'
    return None
