"""Readers: each turns a file into located raw rows ("file:line" or "file[index]"), never a silent skip.

A reader yields ``(location, raw)`` where ``raw`` is a dict (to be validated by ``rows``) or a
``Rejection`` when the row could not even be parsed. A file that cannot be read at all raises
``UnreadableFile`` with one sentence saying what is wrong and what to do.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curation.formats.rows import MAX_NESTING, NESTED_TOO_DEEP, Rejection, too_deep

RawRows = Iterator[tuple[str, Any]]
READ_FORMATS = ("alpaca", "jsonl", "csv", "parquet", "hf")
SUPPORTED = "Alpaca/ShareGPT JSON, JSONL, CSV, Parquet or a Hugging Face datasets directory"


class UnreadableFile(Exception):
    """The whole file cannot be read; the message is one sentence for the user."""


def detect_format(path: Path) -> str:
    if path.is_dir():
        if any(path.glob("*.arrow")) or (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return "hf"
        raise UnreadableFile(f"{path} is a directory but not a Hugging Face dataset saved with save_to_disk")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".json":
        return "alpaca"
    raise UnreadableFile(f"{path.name}: unknown file type '{suffix or 'none'}'; expected {SUPPORTED}")


def read_raw_rows(path: Path, fmt: str | None = None) -> RawRows:
    """Located raw rows of any supported file; validates the file as a whole first."""
    if not path.exists():
        raise UnreadableFile(f"{path} does not exist; check the path")
    fmt = fmt or detect_format(path)
    if path.is_dir() and fmt != "hf":
        raise UnreadableFile(
            f"{path} is a directory, and --format {fmt} reads one file; give a file, or --format hf for a datasets folder"
        )
    readers = {"alpaca": _read_json, "jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet, "hf": _read_hf}
    if fmt not in readers:
        raise UnreadableFile(f"unknown format '{fmt}'; choose one of {', '.join(READ_FORMATS)}")
    if fmt in ("alpaca", "jsonl", "csv"):
        _refuse_binary(path)
    return readers[fmt](path)


def _refuse_binary(path: Path) -> None:
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFile(f"{path.name} is UTF-16 text; re-save it as UTF-8")
    if b"\x00" in head:
        raise UnreadableFile(
            f"{path.name} is a binary file (it contains NUL bytes), not text; expected {SUPPORTED}"
        )


def _read_jsonl(path: Path) -> RawRows:
    name = path.name
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            location = f"{name}:{number}"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield location, Rejection(location, f"undecodable bytes (not UTF-8) at column {err.start + 1}", repr(raw[:200]))
                continue
            if not text.strip():
                continue  # blank lines separate nothing in JSONL; they are not rows
            yield location, _parse_line(location, text)


def _parse_line(location: str, text: str) -> Any:
    """One JSON value, or the Rejection saying why not (bad JSON, or nested too deep to handle safely)."""
    try:
        value = json.loads(text.rstrip("\r\n"))
    except json.JSONDecodeError as err:
        return Rejection(location, f"invalid JSON: {err.msg} at column {err.colno}", text.strip()[:300])
    except RecursionError:
        return Rejection(location, NESTED_TOO_DEEP, text.strip()[:300])
    if too_deep(value):
        return Rejection(location, NESTED_TOO_DEEP, text.strip()[:300])
    return value

# A JSON string, or one structural character: enough to find where each top-level element ends without
# recursing (the fallback for a file in which one element is nested too deep for json.loads).
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]')


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise UnreadableFile(
            f"{path.name} is not UTF-8 text (undecodable byte at line {line}); re-save it as UTF-8"
        ) from err


def _read_json(path: Path) -> RawRows:
    text = _read_text(path)
    try:
        data = json.loads(text)
    except RecursionError:
        yield from _read_json_elements(path, text)
        return
    except json.JSONDecodeError as err:
        if _looks_like_jsonl(text):
            yield from _read_jsonl(path)
            return
        raise UnreadableFile(
            f"{path.name} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
            "fix it, or use .jsonl for one record per line"
        ) from err
    if isinstance(data, dict):
        data = _unwrap_container(path, data)
    if not isinstance(data, list):
        raise UnreadableFile(f"{path.name} holds a JSON {type(data).__name__}; expected a list of records")
    for index, item in enumerate(data):
        location = f"{path.name}[{index}]"
        yield location, Rejection(location, NESTED_TOO_DEEP) if too_deep(item) else item


def _read_json_elements(path: Path, text: str) -> RawRows:
    """A top-level JSON list read element by element, so one element nested too deep loses only itself."""
    start = len(text) - len(text.lstrip())
    if not text.startswith("[", start):
        raise UnreadableFile(f"{path.name} is nested deeper than {MAX_NESTING} levels; expected a list of records")
    for index, element in enumerate(_top_level_elements(text, start + 1)):
        yield f"{path.name}[{index}]", _parse_line(f"{path.name}[{index}]", element)


def _top_level_elements(text: str, position: int) -> Iterator[str]:
    depth, begin = 0, position
    for token in _JSON_TOKEN.finditer(text, position):
        char = token.group()
        if char in "[{":
            depth += 1
        elif char in "]}":
            if depth == 0:  # the closing bracket of the top-level list
                if text[begin:token.start()].strip():
                    yield text[begin:token.start()]
                return
            depth -= 1
        elif char == "," and depth == 0:
            yield text[begin:token.start()]
            begin = token.end()


def _unwrap_container(path: Path, data: dict[str, Any]) -> Any:
    # Some exports wrap the list: {"data": [...]} or {"train": [...]}; a single record is a list of one.
    for key in ("data", "train", "examples", "records"):
        if isinstance(data.get(key), list):
            return data[key]
    if any(k in data for k in ("instruction", "conversations", "messages", "prompt")):
        return [data]
    raise UnreadableFile(f"{path.name} is a JSON object without a list of records (looked for data/train/examples)")


def _looks_like_jsonl(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) > 1 and all(line.lstrip().startswith("{") for line in lines[:5])


# The csv module's own cell limit (128 KiB) would reject big cells with a cryptic reason; the row rules
# apply validation.max_field_chars with a clear one instead.
_CSV_CELL_LIMIT = 2**31 - 1


def _read_csv(path: Path) -> RawRows:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_CELL_LIMIT))
    text = _read_text(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as err:
        raise UnreadableFile(f"{path.name}: the header line is not valid CSV ({err})") from err
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            location = f"{path.name}:{line}"
            yield location, Rejection(location, f"invalid CSV: {err}")
            continue
        location = f"{path.name}:{line}"
        if not cells:
            continue  # an empty line holds no cells: not a row (as blank lines in JSONL)
        if not any(cell.strip() for cell in cells):
            yield location, Rejection(location, "every cell is blank", ",".join(cells)[:300])
            continue
        if len(cells) != len(header):
            yield location, Rejection(location, f"has {len(cells)} cells, the header has {len(header)}", ",".join(cells)[:300])
            continue
        yield location, dict(zip(header, cells))


def _read_parquet(path: Path) -> RawRows:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a bad file
        raise UnreadableFile(f"{path.name} is not a readable Parquet file ({err.__class__.__name__}: {err})") from err
    for index, row in enumerate(table.to_pylist()):
        yield f"{path.name}[{index}]", _clean_cells(row)


def _read_hf(path: Path) -> RawRows:
    from datasets import Dataset, DatasetDict, load_from_disk

    try:
        loaded = load_from_disk(str(path))
    except Exception as err:
        raise UnreadableFile(f"{path.name} could not be opened with datasets.load_from_disk ({err})") from err
    splits = loaded.items() if isinstance(loaded, DatasetDict) else [("", loaded)]
    for split, dataset in splits:
        assert isinstance(dataset, Dataset)
        prefix = f"{path.name}/{split}" if split else path.name
        for index, row in enumerate(dataset):
            yield f"{prefix}[{index}]", _clean_cells(row)


def _clean_cells(row: dict[str, Any]) -> dict[str, Any]:
    # Columnar formats hold NaN/None for absent cells; absent is what they mean.
    return {k: v for k, v in row.items() if not (v is None or (isinstance(v, float) and math.isnan(v)))}
