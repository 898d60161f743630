"""The canonical record: one (instruction, input, output) triple with a stable content id."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

CORE_FIELDS = ("instruction", "input", "output")
KNOWN_FIELDS = ("id", "instruction", "input", "output", "category", "source")


def prompt_text(instruction: str, input: str) -> str:
    """The user turn as chat formats carry it: the input, if any, follows the instruction."""
    return f"{instruction}\n\n{input}" if input else instruction


def record_id(instruction: str, input: str, output: str) -> str:
    """A stable 16-hex content hash.

    It hashes the prompt as chat formats render it, so a record keeps its id when a format that has no
    separate input field (ShareGPT) folds the input into the instruction.
    """
    payload = json.dumps([prompt_text(instruction, input), output], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class Record:
    instruction: str
    input: str
    output: str
    category: str | None = None
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @functools.cached_property
    def id(self) -> str:
        # Cached: hashing 52k records on every access made reopening a map measurably slower.
        return record_id(self.instruction, self.input, self.output)

    def to_row(self) -> dict[str, Any]:
        """A flat dict: metadata first so the canonical fields always win on a name clash."""
        row: dict[str, Any] = dict(self.meta)
        row.update(id=self.id, instruction=self.instruction, input=self.input, output=self.output)
        if self.category is not None:
            row["category"] = self.category
        if self.source is not None:
            row["source"] = self.source
        return row
