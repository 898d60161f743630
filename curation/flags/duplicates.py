"""Rules that compare records with each other: duplicate instructions, exact and near.

Both flag the later occurrences and name the earlier record by its row in the dataset, counted from 1
as a person (and ``flags``' file:line) counts, so dropping every flagged row keeps one example of each group.
The instruction is compared together with its input: "Rewrite the following sentence" over two
different sentences is two examples, not a duplicate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from curation.config import FlagConfig
from curation.flags.base import FlagEmbeddings, bare, quote
from curation.records import Record

# Rows of the similarity matrix computed at once: 512 x 52k float32 is about 100 MB.
BLOCK_ROWS = 512


def prompt_keys(records: Sequence[Record]) -> tuple[list[str], list[str]]:
    """Instruction and input as compared: case, spacing and punctuation ignored."""
    return [bare(r.instruction) for r in records], [bare(r.input) for r in records]


class ExactDuplicateRule:
    name = "exact_duplicate"
    description = "same instruction (and input) as an earlier record, ignoring case, spacing and punctuation"

    def __init__(self, config: FlagConfig) -> None:
        self.config = config

    def find(self, records: Sequence[Record]) -> dict[int, str]:
        first: dict[tuple[str, str], int] = {}
        found: dict[int, str] = {}
        instructions, inputs = prompt_keys(records)
        for index, key in enumerate(zip(instructions, inputs)):
            earlier = first.setdefault(key, index)
            if earlier != index:
                what = "instruction and input" if key[1] else "instruction"
                found[index] = f"same {what} as row {earlier + 1}: {quote(records[earlier].instruction)}"
        return found


class NearDuplicateRule:
    name = "near_duplicate"
    description = "instruction nearly the same as an earlier one (embedding cosine), with the same input"

    def __init__(self, config: FlagConfig, block_rows: int = BLOCK_ROWS) -> None:
        self.threshold = config.near_duplicate_similarity
        self.block_rows = block_rows

    def find(self, records: Sequence[Record], embeddings: FlagEmbeddings) -> dict[int, str]:
        vectors = np.asarray(embeddings.instructions, dtype=np.float32)
        instructions, inputs = prompt_keys(records)
        # Integer ids make "same input" and "exact duplicate" one vectorised comparison per block.
        input_ids = _ids(inputs)
        prompt_ids = _ids([f"{a}\x00{b}" for a, b in zip(instructions, inputs)])
        found: dict[int, str] = {}
        for start in range(0, len(records), self.block_rows):
            stop = min(len(records), start + self.block_rows)
            sims = self._earlier_similarities(vectors, start, stop, input_ids, prompt_ids)
            for row in np.nonzero(sims.max(axis=1) >= self.threshold)[0]:
                index = start + int(row)
                earlier = self._closest_same_question(records, index, sims[row])
                if earlier is not None:
                    found[index] = (
                        f"near-duplicate of the instruction of row {earlier + 1} (cosine {sims[row, earlier]:.2f}): "
                        f"{quote(records[earlier].instruction)}"
                    )
        return found

    def _closest_same_question(self, records: Sequence[Record], index: int, sims: np.ndarray) -> int | None:
        """The most similar earlier instruction above the threshold that asks the same thing."""
        candidates = np.nonzero(sims >= self.threshold)[0]
        for earlier in candidates[np.argsort(-sims[candidates], kind="stable")]:
            if not _asks_differently(records[index].instruction, records[int(earlier)].instruction):
                return int(earlier)
        return None

    @staticmethod
    def _earlier_similarities(
        vectors: np.ndarray, start: int, stop: int, input_ids: np.ndarray, prompt_ids: np.ndarray
    ) -> np.ndarray:
        """Cosines of rows start..stop with every earlier row of the same input that is not an exact copy."""
        sims = vectors[start:stop] @ vectors[:stop].T
        rows = np.arange(start, stop)[:, None]
        columns = np.arange(stop)[None, :]
        excluded = (columns >= rows) | (input_ids[None, :stop] != input_ids[start:stop, None])
        excluded |= prompt_ids[None, :stop] == prompt_ids[start:stop, None]
        sims[excluded] = -np.inf
        return sims


# Sentence vectors barely move with a number, a negation or the list a task is about, yet "the 2020
# prize" and "the 2022 prize", or "which are noble gases" and "which are not", are different questions
# (Dolly has many such pairs: this check took 22 of its 170 hits away).
_NUMBER = re.compile(
    r"\b(?:\d+(?:[.,]\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|first|second|third|fourth|fifth|"
    r"sixth|seventh|eighth|ninth|tenth|last|\d+(?:st|nd|rd|th))\b"
)
_NEGATION = re.compile(r"\b(?:not|no|never|none|without)\b|n't\b")


_NUMBER_WORDS = {word: str(value) for value, word in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"])}
_NUMBER_WORDS |= {word: f"{value}th" for value, word in enumerate(
    ["zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"])}


def _numbers(text: str) -> set[str]:
    """Numbers a question mentions, "three" and "3" alike."""
    return {re.sub(r"(?<=\d)(?:st|nd|rd|th)$", "", _NUMBER_WORDS.get(n, n)) for n in _NUMBER.findall(text)}


def _asks_differently(a: str, b: str) -> bool:
    a, b = a.casefold(), b.casefold()
    if _numbers(a) != _numbers(b) or bool(_NEGATION.search(a)) != bool(_NEGATION.search(b)):
        return True
    # "Classify these colors: red, blue, green" over another list of colors is another question.
    return ":" in a and ":" in b and bare(a.split(":", 1)[1]) != bare(b.split(":", 1)[1])


def _ids(keys: list[str]) -> np.ndarray:
    seen: dict[str, int] = {}
    return np.array([seen.setdefault(key, len(seen)) for key in keys], dtype=np.int64)
