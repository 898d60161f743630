"""Reading and writing instruction data. Entry points: :func:`read_file` and :func:`write_records`."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.formats.readers import READ_FORMATS, UnreadableFile, detect_format, read_raw_rows
from curation.formats.rows import CONVERSATION_KEYS, Duplicate, Rejection, RowRules, normalize_rows
from curation.formats.writers import (
    EXTENSIONS,
    WRITE_FORMATS,
    dataset_info_entry,
    write_dataset_info,
    write_records,
)
from curation.records import Record

__all__ = [
    "EXTENSIONS",
    "READ_FORMATS",
    "WRITE_FORMATS",
    "ReadResult",
    "Rejection",
    "RowRules",
    "UnreadableFile",
    "dataset_info_entry",
    "detect_format",
    "parse_mapping",
    "read_file",
    "write_dataset_info",
    "write_records",
]


@dataclass
class ReadResult:
    """What a file yielded: the loadable records and every rejected row with its reason."""

    path: Path
    format: str
    records: list[Record] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    # With keep_duplicates: index in ``records`` of each repeated row -> location of its first copy.
    duplicates: dict[int, str] = field(default_factory=dict)
    # Where each record came from ("file.jsonl:12", "file.json[3]"), aligned with ``records``.
    locations: list[str] = field(default_factory=list)

    @property
    def rows_seen(self) -> int:
        return len(self.records) + len(self.rejections)

    def nothing_loadable(self) -> str | None:
        """Why nothing in the file can be loaded (one sentence), or None when at least one row can."""
        if self.records:
            return None
        if not self.rejections:
            return f"{self.path.name} holds no rows (an empty file, or a header without rows); nothing to load"
        reasons = Counter(_reason_kind(r.reason) for r in self.rejections)
        why = ", ".join(f"{n} {kind}" for kind, n in reasons.most_common(3))
        return (f"none of the {len(self.rejections)} rows of {self.path.name} is loadable ({why}); "
                "fix the file (the report names every row) or map its columns with --map")

    @property
    def exit_code(self) -> int:
        """0: every row loads; 1: some rows are rejected; 2: nothing loads (see also UnreadableFile)."""
        if not self.records:
            return 2
        return 1 if self.rejections else 0

    def summary(self) -> str:
        reasons = Counter(_reason_kind(r.reason) for r in self.rejections)
        by_reason = ", ".join(f"{n} {kind}" for kind, n in reasons.most_common())
        rejected = f"{len(self.rejections)} rejected ({by_reason})" if self.rejections else "0 rejected"
        return f"{self.path.name}: {len(self.records)} loadable, {rejected}"

    def write_report(self, path: Path) -> Path:
        """Export the rejections as CSV or JSONL (by extension) so they can be fixed and re-imported."""
        rows = [r.as_dict() for r in self.rejections]
        if path.suffix.lower() == ".csv":
            with open(path, "w", encoding="utf-8", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["location", "reason", "raw"])
                writer.writeheader()
                writer.writerows(rows)
        else:
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return path


def read_file(
    path: str | Path,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    max_field_chars: int = 100_000,
    source: str | None = None,
    keep_duplicates: bool = False,
) -> ReadResult:
    """Read and validate any supported file. Raises :class:`UnreadableFile` if nothing can be read.

    An exact repeat of an earlier row is rejected, or with ``keep_duplicates`` kept and listed in
    ``ReadResult.duplicates``.
    """
    path = Path(path)
    fmt = fmt or (detect_format(path) if path.exists() else None)
    raw_rows = read_raw_rows(path, fmt)
    rules = RowRules(
        max_field_chars=max_field_chars, mapping=dict(mapping or {}), source=source, keep_duplicates=keep_duplicates
    )
    conversations = _ConversationCounter(raw_rows)
    result = ReadResult(path=path, format=fmt or "")
    for item in normalize_rows(conversations, rules):
        if isinstance(item, Rejection):
            result.rejections.append(item)
        elif isinstance(item, Duplicate):
            result.duplicates[len(result.records)] = item.first
            result.records.append(item.record)
            result.locations.append(item.location)
        else:
            result.records.append(item)
            # Rows are normalised one at a time: a record comes from the row read last.
            result.locations.append(conversations.last)
    if conversations.rows and conversations.rows * 2 >= conversations.seen:
        result.format = "sharegpt"  # a JSON/JSONL file of conversations: say what it holds, not its container
    return result


class _ConversationCounter:
    """Passes raw rows through, counting ShareGPT conversations (ReadResult.format) and noting the last location."""

    def __init__(self, rows: Any) -> None:
        self._rows, self.seen, self.rows, self.last = rows, 0, 0, ""

    def __iter__(self) -> Any:
        for location, raw in self._rows:
            self.seen += 1
            self.last = location
            if isinstance(raw, Mapping) and "instruction" not in raw and any(k in raw for k in CONVERSATION_KEYS):
                self.rows += 1
            yield location, raw


def parse_mapping(text: str | None) -> dict[str, str]:
    """``"prompt=instruction,completion=output"`` -> ``{"prompt": "instruction", ...}``."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        source, sep, target = part.partition("=")
        if not sep or target.strip() not in ("instruction", "input", "output", "category", "source"):
            raise ValueError(f"mapping entry {part!r} must be COLUMN=instruction|input|output|category|source")
        mapping[source.strip()] = target.strip()
    return mapping


def _reason_kind(reason: str) -> str:
    # Group "invalid JSON: Expecting ',' at column 12" with its kin for the one-line summary.
    return reason.split(":")[0].split(" of ")[0] if reason else "unknown"
