"""Writers: Alpaca JSON, JSONL, Parquet, CSV, ShareGPT, and a LLaMA-Factory dataset_info.json entry.

Every writer keeps the record id and metadata, so importing what was exported gives the same ids.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from curation.records import Record, prompt_text

WRITE_FORMATS = ("alpaca", "jsonl", "parquet", "csv", "sharegpt")
EXTENSIONS = {"alpaca": ".json", "jsonl": ".jsonl", "parquet": ".parquet", "csv": ".csv", "sharegpt": ".json"}
TABLE_COLUMNS = ("id", "instruction", "input", "output", "category", "source", "meta")


def write_records(records: Iterable[Record], path: Path, fmt: str, extra: Sequence[dict[str, Any]] | None = None) -> int:
    """Write records in ``fmt``; ``extra`` adds per-record fields (e.g. keep/reason). Returns the count."""
    rows = list(records)
    writers = {"alpaca": _write_alpaca, "jsonl": _write_jsonl, "parquet": _write_parquet, "csv": _write_csv, "sharegpt": _write_sharegpt}
    if fmt not in writers:
        raise ValueError(f"unknown export format '{fmt}'; choose one of {', '.join(WRITE_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    writers[fmt](rows, path, list(extra) if extra is not None else [{} for _ in rows])
    return len(rows)


def flat_row(record: Record, extra: dict[str, Any]) -> dict[str, Any]:
    row = record.to_row()
    row.update(extra)
    return row


def _write_alpaca(records: list[Record], path: Path, extra: list[dict[str, Any]]) -> None:
    rows = [flat_row(r, e) for r, e in zip(records, extra)]
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_jsonl(records: list[Record], path: Path, extra: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(flat_row(record, more), ensure_ascii=False) + "\n" for record, more in zip(records, extra))


def table_row(record: Record, extra: dict[str, Any]) -> dict[str, Any]:
    # Metadata goes into one JSON column so rows with different extra fields share one schema.
    row = {
        "id": record.id,
        "instruction": record.instruction,
        "input": record.input,
        "output": record.output,
        "category": record.category,
        "source": record.source,
        "meta": json.dumps(record.meta, ensure_ascii=False, default=str) if record.meta else "",
    }
    row.update(extra)
    return row


def _write_parquet(records: list[Record], path: Path, extra: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [table_row(r, e) for r, e in zip(records, extra)]
    columns = _column_order(rows)
    table = pa.Table.from_pylist(rows) if rows else pa.table({c: pa.array([], pa.string()) for c in columns})
    pq.write_table(table.select(columns), path)


def _write_csv(records: list[Record], path: Path, extra: list[dict[str, Any]]) -> None:
    rows = [table_row(r, e) for r, e in zip(records, extra)]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=_column_order(rows))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def _column_order(rows: list[dict[str, Any]]) -> list[str]:
    columns = list(TABLE_COLUMNS)
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    return columns


def _write_sharegpt(records: list[Record], path: Path, extra: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps(sharegpt_rows(records, extra), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def sharegpt_rows(records: list[Record], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One conversation per record, except exchanges marked as turns of one conversation, rejoined."""
    grouped: dict[str, list[tuple[int, Record, dict[str, Any]]]] = defaultdict(list)
    order: list[tuple[str, Record | None, dict[str, Any]]] = []
    for record, more in zip(records, extra):
        conversation = record.meta.get("conversation")
        if conversation is not None and isinstance(record.meta.get("turn"), int):
            if conversation not in grouped:
                order.append((str(conversation), None, {}))
            grouped[str(conversation)].append((record.meta["turn"], record, more))
        else:
            order.append(("", record, more))
    rows = []
    for conversation, record, more in order:
        if record is not None:
            rows.append(_conversation_row([record], more, record.meta))
        else:
            turns = sorted(grouped[conversation], key=lambda item: item[0])
            first_meta = {k: v for k, v in turns[0][1].meta.items() if k not in ("turn", "turns", "history")}
            merged_extra = {k: v for _, _, e in turns for k, v in e.items()}
            row = _conversation_row([r for _, r, _ in turns], merged_extra, first_meta)
            row["id"] = first_meta.pop("conversation", conversation)
            rows.append(row)
    return rows


def _conversation_row(records: list[Record], extra: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    messages = []
    for record in records:
        messages.append({"from": "human", "value": prompt_text(record.instruction, record.input)})
        messages.append({"from": "gpt", "value": record.output})
    row: dict[str, Any] = {k: v for k, v in meta.items() if k not in ("conversation", "turn", "turns", "history")}
    row["id"] = records[0].id
    row["conversations"] = messages
    if records[0].category is not None:
        row["category"] = records[0].category
    if records[0].source is not None:
        row["source"] = records[0].source
    row.update(extra)
    return row


def dataset_info_entry(file_name: str, fmt: str) -> dict[str, Any]:
    """The LLaMA-Factory ``dataset_info.json`` entry that loads a file this module wrote."""
    if fmt == "sharegpt":
        return {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
        }
    if fmt in ("alpaca", "jsonl", "parquet", "csv"):
        return {
            "file_name": file_name,
            "formatting": "alpaca",
            "columns": {"prompt": "instruction", "query": "input", "response": "output"},
        }
    raise ValueError(f"LLaMA-Factory cannot load the '{fmt}' format")


def write_dataset_info(directory: Path, name: str, file_name: str, fmt: str) -> Path:
    """Add or replace ``name`` in ``directory/dataset_info.json``, keeping the other entries."""
    info_path = directory / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    info[name] = dataset_info_entry(file_name, fmt)
    info_path.write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return info_path
