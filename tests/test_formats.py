"""Readers, validation and writers on real pool records and on deliberately broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.formats import (
    WRITE_FORMATS,
    UnreadableFile,
    parse_mapping,
    read_file,
    write_dataset_info,
    write_records,
)
from curation.formats.writers import EXTENSIONS
from curation.records import Record, record_id

POOLS = Path(__file__).resolve().parent.parent / "curation" / "data" / "pools"


@pytest.fixture(scope="module")
def alpaca_rows() -> list[dict]:
    return json.loads((POOLS / "alpaca_random_9k.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dolly_lines() -> list[str]:
    return (POOLS / "dolly_15k.jsonl").read_text(encoding="utf-8").splitlines()


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_thousand_lines_with_three_broken_name_exactly_those(tmp_path: Path, alpaca_rows: list[dict]) -> None:
    rows: list = [r for r in alpaca_rows if r["output"]][:1000]
    rows[99] = '{"instruction": "Name a colour", "input": "", "output": "Blue"'  # line 100: bad JSON
    rows[499] = {"input": "", "output": "An answer without a question"}  # line 500
    rows[899] = {"instruction": ["not", "a", "string"], "input": "", "output": "x"}  # line 900
    result = read_file(write_jsonl(tmp_path / "pool.jsonl", rows))
    assert len(result.records) == 997
    assert [(r.location, r.reason.split(":")[0]) for r in result.rejections] == [
        ("pool.jsonl:100", "invalid JSON"),
        ("pool.jsonl:500", "missing instruction"),
        ("pool.jsonl:900", "instruction is a list, expected a string"),
    ]


def test_every_rejection_reason_is_named(tmp_path: Path) -> None:
    good = {"instruction": "Say hi", "input": "", "output": "Hi"}
    lines = [
        json.dumps(good),
        json.dumps(good),  # duplicate of line 1
        json.dumps({"instruction": "   ", "output": "x"}),
        json.dumps({"instruction": "Q", "output": ""}),
        json.dumps({"instruction": "Q", "output": 5}),
        json.dumps({"instruction": "Q", "input": None, "output": "y" * 50}),  # null input is allowed
        json.dumps(["a", "list"]),
        json.dumps({"instruction": "Q2", "output": "z" * 200}),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"instruction": "caf\xe9", "output": "x"}\n')
    result = read_file(path, max_field_chars=100)
    reasons = {r.location: r.reason for r in result.rejections}
    assert reasons["mixed.jsonl:2"] == "exact duplicate of mixed.jsonl:1"
    assert reasons["mixed.jsonl:3"] == "empty instruction"
    assert reasons["mixed.jsonl:4"] == "empty output"
    assert reasons["mixed.jsonl:5"] == "output is a number, expected a string"
    assert reasons["mixed.jsonl:7"].startswith("expected an object")
    assert "over the limit of 100" in reasons["mixed.jsonl:8"]
    assert reasons["mixed.jsonl:9"].startswith("undecodable bytes")
    assert [r.instruction for r in result.records] == ["Say hi", "Q"]
    assert result.rows_seen == 9


def test_binary_and_missing_files_give_one_sentence(tmp_path: Path) -> None:
    binary = tmp_path / "weights.jsonl"
    binary.write_bytes(b"\x00\x01\x02PK\x03\x04" * 100)
    with pytest.raises(UnreadableFile, match="binary file"):
        read_file(binary)
    with pytest.raises(UnreadableFile, match="does not exist"):
        read_file(tmp_path / "nope.json")
    with pytest.raises(UnreadableFile, match="unknown file type"):
        read_file(_touch(tmp_path / "data.xlsx"))


def _touch(path: Path) -> Path:
    path.write_text("x")
    return path


def test_json_that_is_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n {"instruction": "a", "output": "b"},\n {"instruction": oops}\n]\n')
    with pytest.raises(UnreadableFile, match=r"line 3"):
        read_file(path)


def test_bom_is_accepted_in_json_jsonl_and_csv(tmp_path: Path) -> None:
    row = {"instruction": "Translate 'chat'", "input": "", "output": "cat"}
    (tmp_path / "a.json").write_bytes(b"\xef\xbb\xbf" + json.dumps([row]).encode())
    (tmp_path / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(row).encode() + b"\n")
    (tmp_path / "a.csv").write_bytes(b"\xef\xbb\xbfinstruction,input,output\nTranslate 'chat',,cat\n")
    ids = {read_file(tmp_path / name).records[0].id for name in ("a.json", "a.jsonl", "a.csv")}
    assert ids == {record_id("Translate 'chat'", "", "cat")}


def test_dolly_fields_map_to_the_canonical_record(tmp_path: Path, dolly_lines: list[str]) -> None:
    path = tmp_path / "dolly.jsonl"
    path.write_text("\n".join(dolly_lines[:200]) + "\n", encoding="utf-8")
    result = read_file(path)
    original = [json.loads(line) for line in dolly_lines[:200]]
    assert not result.rejections
    with_context = next(i for i, row in enumerate(original) if row["context"])
    assert result.records[with_context].input == original[with_context]["context"]
    assert result.records[with_context].output == original[with_context]["response"]
    assert {r.category for r in result.records} <= {row["category"] for row in original}
    assert all(r.meta == {} for r in result.records)


def test_column_mapping_for_other_names(tmp_path: Path) -> None:
    rows = [{"prompt": "2+2?", "completion": "4", "lang": "en"}, {"question": "Capital of France?", "answer": "Paris"}]
    result = read_file(write_jsonl(tmp_path / "qa.jsonl", rows))
    assert [(r.instruction, r.output) for r in result.records] == [("2+2?", "4"), ("Capital of France?", "Paris")]
    assert result.records[0].meta == {"lang": "en"}
    custom = [{"q": "Why?", "a": "Because.", "ctx": "Context"}]
    mapped = read_file(write_jsonl(tmp_path / "custom.jsonl", custom), mapping=parse_mapping("q=instruction,a=output,ctx=input"))
    assert (mapped.records[0].instruction, mapped.records[0].input, mapped.records[0].output) == ("Why?", "Context", "Because.")
    with pytest.raises(ValueError, match="COLUMN="):
        parse_mapping("q=question")


def test_sharegpt_multi_turn_becomes_marked_exchanges(tmp_path: Path) -> None:
    conversation = {
        "id": "conv-7",
        "system": "Be brief.",
        "conversations": [
            {"from": "human", "value": "Name a prime."},
            {"from": "gpt", "value": "7"},
            {"from": "human", "value": "Another?"},
            {"from": "gpt", "value": "11"},
        ],
    }
    openai_style = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
    broken = {"conversations": [{"from": "gpt", "value": "I speak first"}, {"from": "human", "value": "?"}]}
    path = tmp_path / "chat.json"
    path.write_text(json.dumps([conversation, openai_style, broken]))
    result = read_file(path)
    first, second, third = result.records
    assert (first.instruction, first.output, first.meta["turn"], first.meta["turns"]) == ("Name a prime.", "7", 1, 2)
    assert second.meta["conversation"] == "conv-7" and second.meta["history"] == [["Name a prime.", "7"]]
    assert first.meta["system"] == "Be brief."
    assert (third.instruction, third.output, "turn" in third.meta) == ("Hi", "Hello!", False)
    assert len(result.rejections) == 1 and "expected human/user then gpt/assistant" in result.rejections[0].reason


@pytest.mark.parametrize("fmt", WRITE_FORMATS)
def test_round_trip_keeps_ids_in_every_format(tmp_path: Path, alpaca_rows: list[dict], fmt: str) -> None:
    records = [Record(r["instruction"], r["input"], r["output"], source="alpaca") for r in alpaca_rows[:300] if r["output"]]
    records.append(Record("Rate this", "with an input", "and an output", category="qa", meta={"score": 4.5, "tags": ["a", "b"]}))
    records.append(Record("Second turn?", "", "Yes.", meta={"conversation": "c1", "turn": 2, "turns": 2, "history": [["First?", "No."]]}))
    records.append(Record("First?", "", "No.", meta={"conversation": "c1", "turn": 1, "turns": 2}))
    path = tmp_path / f"out{EXTENSIONS[fmt]}"
    write_records(records, path, fmt)
    again = read_file(path)
    assert not again.rejections
    assert sorted(r.id for r in again.records) == sorted(r.id for r in records)
    if fmt != "sharegpt":  # ShareGPT has no input field: the input is folded into the prompt, the id survives
        by_id = {r.id: r for r in again.records}
        assert by_id[records[-3].id].meta == {"score": 4.5, "tags": ["a", "b"]}
        assert by_id[records[-3].id].category == "qa"


def test_parquet_and_hf_datasets_directory(tmp_path: Path) -> None:
    import datasets
    import pandas as pd

    frame = pd.DataFrame({"instruction": ["a", "b"], "input": ["", "ctx"], "output": ["1", "2"], "score": [1.0, None]})
    frame.to_parquet(tmp_path / "plain.parquet")
    parquet = read_file(tmp_path / "plain.parquet")
    assert [r.output for r in parquet.records] == ["1", "2"]
    assert parquet.records[0].meta == {"score": 1.0} and parquet.records[1].meta == {}
    datasets.Dataset.from_pandas(frame.drop(columns="score")).save_to_disk(str(tmp_path / "hf"))
    hf = read_file(tmp_path / "hf")
    assert [r.id for r in hf.records] == [r.id for r in parquet.records]
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_pandas(frame.drop(columns="score"))})
    splits.save_to_disk(str(tmp_path / "hf_dict"))
    assert read_file(tmp_path / "hf_dict").records[1].input == "ctx"


def test_csv_row_with_wrong_cell_count_is_rejected_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('instruction,input,output\n"multi\nline question",,answer\ntoo,many,cells,here\nok,,fine\n')
    result = read_file(path)
    assert [r.instruction for r in result.records] == ["multi\nline question", "ok"]
    assert [(r.location, r.reason) for r in result.rejections] == [("rows.csv:4", "has 4 cells, the header has 3")]


def test_report_exports_every_rejection(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", ['{"bad', {"instruction": "x"}])
    result = read_file(path)
    csv_report = result.write_report(tmp_path / "report.csv").read_text()
    jsonl_report = [json.loads(line) for line in result.write_report(tmp_path / "report.jsonl").read_text().splitlines()]
    assert "r.jsonl:1" in csv_report and "r.jsonl:2" in csv_report
    assert [row["reason"] for row in jsonl_report] == [result.rejections[0].reason, "missing output"]
    assert "2 rejected" in result.summary()


def test_llama_factory_dataset_info_entry(tmp_path: Path) -> None:
    write_dataset_info(tmp_path, "curated", "curated.json", "alpaca")
    write_dataset_info(tmp_path, "chat", "chat.json", "sharegpt")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["curated"]["columns"] == {"prompt": "instruction", "query": "input", "response": "output"}
    assert info["chat"]["formatting"] == "sharegpt" and info["chat"]["tags"]["user_tag"] == "human"
