"""Repetition loops: the same line or phrase over and over, or a long output made of few phrases.

Numbered lists and tables are not loops: list numbers are tokens too, so "1. Practice 2. Practice"
never repeats back to back, and a line only repeats when it is identical, numbers included. Commas,
semicolons, line breaks and math operators are tokens as well, and a repeated unit that contains one
is an enumeration ("yes, no, yes, yes, yes" labelling a list of items) or a formula
("sqrt(2) ^ sqrt(2)"), not a loop. Labels the prompt asked for are answers, not loops, and code and
markup are left alone unless a line repeats twice as often (closing tags repeat by design).
"""

from __future__ import annotations

import re
from collections import Counter

from curation.config import FlagConfig
from curation.flags.base import fold, looks_like_code, quote, words
from curation.records import Record

_NGRAM = 3
# Words, plus the separators and operators that make a repetition an enumeration or a formula.
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[,;^*=+/<>|\n]")


class RepetitionRule:
    name = "repetition"
    description = "a line or phrase repeated back to back, or a long output with few distinct phrases"

    def __init__(self, config: FlagConfig) -> None:
        self.min_repeats = max(2, config.repetition_min_repeats)
        self.max_unit = max(1, config.repetition_max_unit_words)
        self.min_words = config.repetition_min_words
        self.min_distinct = config.repetition_min_distinct_ratio

    def check(self, record: Record) -> str | None:
        code = looks_like_code(record.output)
        line_loop = self._repeated_line(record.output, 2 * self.min_repeats if code else self.min_repeats)
        if line_loop or code:
            return line_loop
        tokens = _TOKEN.findall(record.output.casefold())
        prompt = fold(record.instruction + " " + record.input)
        return self._repeated_phrase(tokens, prompt) or self._few_distinct([t for t in tokens if t[0].isalnum()])

    def _repeated_line(self, text: str, min_repeats: int) -> str | None:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        run = 1
        for index in range(1, len(lines)):
            run = run + 1 if lines[index] == lines[index - 1] and _has_letters(lines[index]) else 1
            if run >= min_repeats:
                return f"line {quote(lines[index])} repeated {run + _same_after(lines, index)} times in a row"
        return None

    def _repeated_phrase(self, tokens: list[str], prompt: str) -> str | None:
        for size in range(1, self.max_unit + 1):
            start, repeats = 0, 1
            for index in range(len(tokens) - size):
                if tokens[index] != tokens[index + size]:
                    start = index + 1
                    continue
                repeats = (index + size - start + 1) // size
                unit = tokens[start : start + size]
                if repeats >= self.min_repeats and _is_loop_unit(unit, prompt):
                    total = _count_repeats(tokens, start, size)
                    return f"repeats {quote(' '.join(unit))} {total} times in a row"
        return None

    def _few_distinct(self, tokens: list[str]) -> str | None:
        if len(tokens) < max(self.min_words, _NGRAM + 1):
            return None
        grams = Counter(tuple(tokens[i : i + _NGRAM]) for i in range(len(tokens) - _NGRAM + 1))
        ratio = len(grams) / sum(grams.values())
        if ratio >= self.min_distinct:
            return None
        top, count = grams.most_common(1)[0]
        return (
            f"only {ratio:.0%} of its {_NGRAM}-word sequences are distinct ({len(tokens)} words, "
            f"< {self.min_distinct:.0%}); {quote(' '.join(top))} alone appears {count} times"
        )


def _is_loop_unit(unit: list[str], prompt: str) -> bool:
    if not any(token.isalpha() for token in unit):  # "0 0 0 0" in a matrix, "1 1 1" in a sequence
        return False
    if any(not token[0].isalnum() for token in unit):  # a separator or operator inside the unit
        return False
    return not all(token in prompt for token in unit)


def _has_letters(line: str) -> bool:
    # "| 0 | 0 |" rows of a truth table and "-----" rules repeat by design.
    return any(word.isalpha() for word in words(line))


def _count_repeats(tokens: list[str], start: int, size: int) -> int:
    unit, count = tokens[start : start + size], 1
    while tokens[start + count * size : start + (count + 1) * size] == unit:
        count += 1
    return count


def _same_after(lines: list[str], index: int) -> int:
    extra = 0
    while index + 1 + extra < len(lines) and lines[index + 1 + extra] == lines[index]:
        extra += 1
    return extra
