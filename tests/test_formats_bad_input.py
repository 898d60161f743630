"""Hostile and careless files: deep nesting, directories, blank rows; every row is loaded or named."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.formats import UnreadableFile, read_file

DEEP = 100_000
GOOD = [{"instruction": f"Question {i}", "input": "", "output": f"Answer {i}"} for i in range(3)]


def deep_json(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def test_a_jsonl_line_nested_100000_deep_is_rejected_and_the_rest_loads(tmp_path: Path) -> None:
    lines = [json.dumps(GOOD[0]), '{"instruction": "q", "output": "a", "meta": ' + deep_json() + "}", json.dumps(GOOD[1])]
    path = tmp_path / "deep.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = read_file(path)
    assert [r.instruction for r in result.records] == ["Question 0", "Question 1"]
    assert [(r.location, "nested deeper" in r.reason) for r in result.rejections] == [("deep.jsonl:2", True)]


def test_a_json_list_with_one_element_nested_100000_deep_loses_only_that_element(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    elements = [json.dumps(GOOD[0]), '{"instruction": "q", "output": "a", "meta": ' + deep_json() + "}",
                json.dumps({**GOOD[1], "output": "a, [tricky] {string}"}), json.dumps(GOOD[2])]
    path.write_text("[\n" + ",\n".join(elements) + "\n]\n")
    result = read_file(path)
    assert [r.instruction for r in result.records] == ["Question 0", "Question 1", "Question 2"]
    assert result.records[1].output == "a, [tricky] {string}"
    assert [r.location for r in result.rejections] == ["deep.json[1]"]
    assert "nested deeper" in result.rejections[0].reason


def test_moderately_deep_rows_that_python_can_parse_are_still_rejected(tmp_path: Path) -> None:
    # 500 levels parse, but would later exhaust the recursion of json.dumps/ORM serialisers on some paths.
    path = tmp_path / "deep.jsonl"
    path.write_text(json.dumps(GOOD[0]) + "\n" + json.dumps({**GOOD[1], "extra": json.loads(deep_json(500))}) + "\n")
    result = read_file(path)
    assert len(result.records) == 1 and result.rejections[0].location == "deep.jsonl:2"


def test_a_csv_meta_cell_nested_100000_deep_is_rejected_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.csv"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["instruction", "input", "output", "meta"])
    writer.writerow(["Question 0", "", "Answer 0", "{}"])
    writer.writerow(["Question 1", "", "Answer 1", deep_json()])
    writer.writerow(["Question 2", "", "Answer 2", '{"topic": "x"}'])
    path.write_text(buffer.getvalue())
    result = read_file(path)
    assert [r.instruction for r in result.records] == ["Question 0", "Question 2"]
    assert result.records[1].meta == {"topic": "x"}
    assert [r.location for r in result.rejections] == ["deep.csv:3"]
    assert "meta cell" in result.rejections[0].reason and "nested deeper" in result.rejections[0].reason


def test_a_parquet_meta_cell_nested_100000_deep_is_rejected_with_its_index(tmp_path: Path) -> None:
    path = tmp_path / "deep.parquet"
    pq.write_table(pa.table({"instruction": ["Q0", "Q1"], "output": ["A0", "A1"], "meta": [deep_json(), "{}"]}), path)
    result = read_file(path)
    assert [r.instruction for r in result.records] == ["Q1"]
    assert [r.location for r in result.rejections] == ["deep.parquet[0]"]


def test_format_jsonl_on_a_directory_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="is a directory"):
        read_file(tmp_path, fmt="jsonl")


def test_csv_rows_of_blank_cells_are_rejected_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "blanks.csv"
    path.write_text("instruction,output\nQ,A\n  ,  \n,\nQ2,A2\n")
    result = read_file(path)
    assert len(result.records) == 2
    assert [(r.location, r.reason) for r in result.rejections] == [
        ("blanks.csv:3", "every cell is blank"),
        ("blanks.csv:4", "every cell is blank"),
    ]


@pytest.mark.parametrize("content", ["", "instruction,input,output\n", "a,b\n1,2\n"])
def test_nothing_loadable_says_why(tmp_path: Path, content: str) -> None:
    path = tmp_path / "nothing.csv"
    path.write_text(content)
    result = read_file(path)
    assert result.exit_code == 2 and "nothing.csv" in (result.nothing_loadable() or "")


# --- every input row is either loaded or rejected with its line ---------------------------------------

CELL = st.sampled_from(["", " ", "  ", "Question", "Answer", "a,b", 'say "hi"', "multi\nline", "x" * 3, "\t"])
ROW = st.tuples(CELL, CELL, CELL)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, max_size=25))
def test_every_csv_row_is_loaded_or_rejected_with_its_line(tmp_path_factory: pytest.TempPathFactory, rows: list) -> None:
    path = tmp_path_factory.mktemp("csv") / "gen.csv"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["instruction", "input", "output"])
    starts = []  # the line each data row starts on (a quoted cell may span lines)
    line = 2
    for row in rows:
        starts.append(line)
        before = buffer.tell()
        writer.writerow(row)
        line += buffer.getvalue()[before:].count("\n")
    path.write_text(buffer.getvalue())
    result = read_file(path)
    # csv.writer writes a row of one empty cell... as '""'; three empty cells as ',,': a row either way.
    assert len(result.records) + len(result.rejections) == len(rows)
    rejected_lines = [int(r.location.rsplit(":", 1)[1]) for r in result.rejections]
    assert set(rejected_lines) <= set(starts) and len(set(rejected_lines)) == len(rejected_lines)
    assert all(r.reason for r in result.rejections)


JSON_VALUE = st.one_of(
    st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
    st.fixed_dictionaries({"instruction": st.sampled_from(["", " ", "Q", "Q2"]),
                           "output": st.sampled_from(["", "A", "A2"])}),
)
LINE = st.one_of(JSON_VALUE.map(json.dumps), st.sampled_from(["{broken", "[1,", '"unterminated', "nul\x00l"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, max_size=25))
def test_every_jsonl_line_is_loaded_or_rejected_with_its_line(tmp_path_factory: pytest.TempPathFactory, lines: list) -> None:
    path = tmp_path_factory.mktemp("jsonl") / "gen.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    try:
        result = read_file(path)
    except UnreadableFile as err:  # a NUL byte in the first 8 KiB: the whole file is refused, in one sentence
        assert "binary" in str(err) and any("\x00" in line for line in lines)
        return
    assert len(result.records) + len(result.rejections) == len(lines)
    numbers = sorted(int(r.location.rsplit(":", 1)[1]) for r in result.rejections)
    assert len(set(numbers)) == len(numbers) and all(1 <= n <= len(lines) for n in numbers)


@pytest.mark.parametrize("name", ["u16.jsonl", "u16.csv", "u16.json"])
def test_utf16_files_are_refused_in_one_sentence_that_says_what_to_do(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("instruction,output\nQ,A\n" if name.endswith(".csv") else json.dumps([GOOD[0]]), encoding="utf-16")
    with pytest.raises(UnreadableFile, match=f"{name} is UTF-16 text; re-save it as UTF-8"):
        read_file(path)
