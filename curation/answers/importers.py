"""Published answers, read from the files their authors released and mapped onto the bundled test items.

Formats (detected from the content):
- FastChat answer JSONL: ``question_id`` with ``text`` (Vicuna eval) or ``choices[0].turns`` (MT-bench);
  the first turn is the answer, later turns are kept in ``meta``;
- Self-Instruct predictions JSONL: ``instruction``, ``input``, ``response``;
- AlpaGasus result JSON: a list of items with the question and one column per model (``alpagasus2``,
  ``alpaca2``): ``column`` names the model's column;
- Cherry (CaR) review JSON: ``{"Meta_Info": ..., "data": [{question, "Answer1", "Answer2"}]}``: ``column``
  is ``Answer1`` or ``Answer2``;
- AlpacaEval ``model_outputs.json``: a list of ``{instruction, output, generator}``.

Items are matched by their question text (whitespace-insensitive; a text asked twice matches its
occurrences in order), then by id. A row that matches no item is reported with its position, never
dropped silently, and nothing of a file that does not map is stored.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curation.answers.items import alpaca_fields, testset_items
from curation.formats import UnreadableFile
from curation.records import prompt_text
from curation.store import AnswerRow, Store
from curation.studio_auth import Person, require
from curation.testsets import QUESTION_FIELDS, TestItem

IMPORTED = "imported"
SHOWN_UNMATCHED = 10
KNOWN_FIELDS = {*QUESTION_FIELDS, "question_id", "id", "idx", "instances", "input", "category", "answer_id",
                "model_id", "metadata", "tstamp"}


@dataclass(frozen=True)
class FileAnswer:
    location: str  # "file:line" or "file item N", for messages
    output: str
    question: str | None  # the question text as the file has it, when it has one
    question_id: str | None
    model: str | None  # the model name the file gives, when it gives one
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportSummary:
    model_id: str
    testset: str
    file: str
    format: str
    rows: int
    matched: int
    added: int  # new answers stored; the rest were already there from an earlier import
    unmatched: list[str] = field(default_factory=list)  # the first few, "location: reason"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        lines = [
            (f"{self.file} ({self.format}): {self.rows} answers, {self.matched} matched to {self.testset} items, "
            f"{self.added} stored as model '{self.model_id}' ({self.matched - self.added} were already stored)")
        ]
        lines += [f"  not matched: {u}" for u in self.unmatched]
        return lines


class AnswerFileError(UnreadableFile):
    """An answer file that cannot be imported as asked; the message says why and what to do."""


def import_answers(path: Path, store: Store, person: Person | None, testset: str, model: str | None = None,
                   column: str | None = None, allow_unmatched: bool = False) -> ImportSummary:
    """Store a file's answers as ``model``'s answers to ``testset``; every row must match an item."""
    require(person, "import", "import answers")
    fmt, answers = read_answer_file(path, column)
    model_id = model or next((a.model for a in answers if a.model), None)
    if not model_id:
        raise AnswerFileError(f"{path.name}: the file names no model; give one (--model NAME)")
    items = testset_items(store, testset)
    matched, unmatched = match_items(answers, items)
    if unmatched and not allow_unmatched:
        shown = "; ".join(unmatched[:3])
        raise AnswerFileError(
            f"{path.name}: {len(unmatched)} of {len(answers)} answers match no item of {testset} ({shown}); "
            "check the test set name, or import the rest with --allow-unmatched"
        )
    source = f"{IMPORTED}:{path.name}"
    rows = [
        AnswerRow(model_id=model_id, testset=testset, item_id=item.item_id, decoding_hash=IMPORTED,
                  output=answer.output, finish_reason="unknown", decoding={"source_file": path.name, "format": fmt,
                                                                          "column": column},
                  source=source, created_by=person.name if person else "", meta=answer.meta)
        for answer, item in matched
    ]
    added = store.answers.save(rows)
    return ImportSummary(model_id, testset, path.name, fmt, len(answers), len(matched), added,
                         unmatched[:SHOWN_UNMATCHED])


# ----------------------------------------------------------------------------------------------------
# Reading the formats


def read_answer_file(path: Path, column: str | None = None) -> tuple[str, list[FileAnswer]]:
    """(format name, the answers in file order)."""
    if not path.is_file():
        raise AnswerFileError(f"answer file {path} does not exist")
    text = path.read_text(encoding="utf-8-sig")
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and _is_single_json(stripped)):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise AnswerFileError(f"{path.name}:{err.lineno}: invalid JSON ({err.msg}); fix the file") from err
        return _read_json(path.name, data, column)
    return _read_jsonl(path.name, text)


def _is_single_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def _read_jsonl(name: str, text: str) -> tuple[str, list[FileAnswer]]:
    answers, formats = [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise AnswerFileError(f"{name}:{number}: invalid JSON ({err.msg}); fix the line") from err
        fmt, answer = _jsonl_row(f"{name}:{number}", row)
        formats.add(fmt)
        answers.append(answer)
    if not answers:
        raise AnswerFileError(f"{name}: no answers in the file")
    return " + ".join(sorted(formats)), answers


def _jsonl_row(location: str, row: Any) -> tuple[str, FileAnswer]:
    if not isinstance(row, dict):
        raise AnswerFileError(f"{location}: expected a JSON object per line")
    if isinstance(row.get("choices"), list) and row["choices"]:
        turns = row["choices"][0].get("turns") or []
        if not turns:
            raise AnswerFileError(f"{location}: choices[0] has no turns")
        meta = {"answer_id": row.get("answer_id"), "turns": turns} if len(turns) > 1 else {"answer_id": row.get("answer_id")}
        return "fastchat", FileAnswer(location, str(turns[0]), None, _id(row.get("question_id")), row.get("model_id"), meta)
    if "question_id" in row and isinstance(row.get("text"), str):
        meta = {"answer_id": row.get("answer_id")}
        return "fastchat", FileAnswer(location, row["text"], None, _id(row["question_id"]), row.get("model_id"), meta)
    if isinstance(row.get("response"), str) and "instruction" in row:
        question = prompt_text(str(row["instruction"]).strip(), str(row.get("input") or "").strip())
        return "self-instruct", FileAnswer(location, row["response"].strip(), question, None, None, {})
    raise AnswerFileError(
        f"{location}: not an answer row (expected FastChat question_id + text/choices, or instruction + response)"
    )


def _read_json(name: str, data: Any, column: str | None) -> tuple[str, list[FileAnswer]]:
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return "cherry", _rows_with_column(name, data["data"], column, "cherry")
    if not isinstance(data, list) or not data or not all(isinstance(row, dict) for row in data):
        raise AnswerFileError(f"{name}: expected a JSON list of answers or a Cherry {{'data': [...]}} file")
    if all(isinstance(row.get("output"), str) and "instruction" in row for row in data):
        return "alpaca_eval", [
            FileAnswer(f"{name} item {i}", row["output"], prompt_text(str(row["instruction"]), str(row.get("input") or "")),
                       None, row.get("generator"), {k: row[k] for k in ("dataset",) if k in row})
            for i, row in enumerate(data)
        ]
    return "alpagasus", _rows_with_column(name, data, column, "alpagasus")


def _rows_with_column(name: str, rows: list[Any], column: str | None, fmt: str) -> list[FileAnswer]:
    columns = sorted({k for row in rows if isinstance(row, dict) for k, v in row.items()
                      if k not in KNOWN_FIELDS and isinstance(v, str)})
    if column is None or column not in columns:
        said = f"column '{column}' is not in the file" if column else "the file holds several models' answers"
        raise AnswerFileError(f"{name}: {said}; choose one with --column ({', '.join(columns)})")
    answers = []
    for i, row in enumerate(rows):
        location = f"{name} item {i}"
        if not isinstance(row, dict) or not isinstance(row.get(column), str):
            raise AnswerFileError(f"{location}: no '{column}' answer; every item needs one")
        answers.append(FileAnswer(location, row[column].strip(), _question(row), _id(row.get("question_id")),
                                  None if fmt == "cherry" else column, {}))
    return answers


def _question(row: dict[str, Any]) -> str | None:
    key = next((k for k in QUESTION_FIELDS if isinstance(row.get(k), str)), None)
    if key is None:
        return None
    instances = row.get("instances")
    given = instances[0].get("input", "") if isinstance(instances, list) and instances else row.get("input", "")
    return prompt_text(row[key], str(given or ""))


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


# ----------------------------------------------------------------------------------------------------
# Matching answers to test items


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def match_items(answers: list[FileAnswer], items: list[TestItem]) -> tuple[list[tuple[FileAnswer, TestItem]], list[str]]:
    """Each answer's item, by question text, else by id; returns (matched pairs, "location: reason")."""
    by_text: dict[str, list[TestItem]] = defaultdict(list)
    for item in items:
        by_text[_norm(item.question)].append(item)
        instruction, item_input = alpaca_fields(item)
        if item_input:  # files that keep only the instruction (Cherry's Self-Instruct file)
            by_text[_norm(instruction)].append(item)
    by_id = {item.item_id: item for item in items}
    used: set[str] = set()
    matched, unmatched = [], []
    for answer in answers:
        item = _by_text(answer, by_text, used) or _by_id(answer, by_id, used)
        if item is None:
            what = f"question {answer.question[:60]!r}" if answer.question else f"question_id {answer.question_id}"
            unmatched.append(f"{answer.location}: {what} is not in the test set")
            continue
        used.add(item.item_id)
        matched.append((answer, item))
    return matched, unmatched


def _by_text(answer: FileAnswer, by_text: dict[str, list[TestItem]], used: set[str]) -> TestItem | None:
    if not answer.question:
        return None
    # The same text asked twice: its occurrences match the items in order.
    return next((item for item in by_text.get(_norm(answer.question), []) if item.item_id not in used), None)


def _by_id(answer: FileAnswer, by_id: dict[str, TestItem], used: set[str]) -> TestItem | None:
    item = by_id.get(answer.question_id or "")
    return item if item is not None and item.item_id not in used else None
