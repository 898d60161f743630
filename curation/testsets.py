"""Instruction-following test sets: one item shape for the eight public sets and for user files.

Entry point: :func:`read_testset`. Each public set names its fields differently; the table below says
which field is the question, which the category and which the reference answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.config import BUNDLED_DATA_DIR
from curation.formats import UnreadableFile
from curation.records import prompt_text

BUILTIN_DIR = BUNDLED_DATA_DIR / "testsets"


@dataclass(frozen=True)
class TestItem:
    __test__ = False  # not a pytest class

    item_id: str
    question: str
    category: str | None = None
    turns: list[str] = field(default_factory=list)
    reference: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TestSetSpec:
    __test__ = False

    name: str
    path: str
    category_field: str | None


BUILTIN: tuple[TestSetSpec, ...] = (
    TestSetSpec("vicuna80", "vicuna80.jsonl", "category"),
    TestSetSpec("koala180", "koala180.jsonl", None),
    TestSetSpec("wizardlm218", "wizardlm218.jsonl", "Skill"),
    TestSetSpec("selfinstruct252", "selfinstruct252.jsonl", "motivation_app"),
    TestSetSpec("pandalm170", "pandalm170.json", "motivation_app"),
    TestSetSpec("coachlm150", "coachlm150.json", None),
    TestSetSpec("mtbench80", "mtbench80/question.jsonl", "category"),
    TestSetSpec("lima300", "lima300.jsonl", None),
)
QUESTION_FIELDS = ("text", "prompt", "Instruction", "instruction", "question", "conversations", "turns")
REFERENCE_FIELDS = ("reference response", "reference", "output")


def read_testset(path: Path, category_field: str | None = None) -> list[TestItem]:
    """Items of a test set file (JSON list or JSONL); a row without a question is an error, not a skip."""
    rows = _load_rows(path)
    references = _mtbench_references(path)
    items = []
    for index, row in enumerate(rows):
        items.append(_item(path, index, row, category_field, references))
    return items


def _load_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UnreadableFile(f"test set {path} does not exist")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".json":
        data = json.loads(text)
        if not isinstance(data, list):
            raise UnreadableFile(f"{path.name}: expected a JSON list of test items")
        return data
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise UnreadableFile(f"{path.name}:{number}: invalid JSON ({err.msg}); fix the line") from err
    return rows


def _item(path: Path, index: int, row: dict[str, Any], category_field: str | None, references: dict[str, str]) -> TestItem:
    key = next((k for k in QUESTION_FIELDS if k in row), None)
    if key is None:
        raise UnreadableFile(f"{path.name} item {index}: no question field (looked for {', '.join(QUESTION_FIELDS)})")
    value = row[key]
    turns = [str(t) for t in value] if isinstance(value, list) else [str(value)]
    question = turns[0]
    if isinstance(row.get("instances"), list) and row["instances"]:
        # Self-Instruct keeps the input inside its first instance.
        question = prompt_text(question, str(row["instances"][0].get("input", "")))
    elif isinstance(row.get("input"), str):
        question = prompt_text(question, row["input"])
    if question != turns[0]:
        # The question is instruction + input; answer generation renders them apart (Alpaca template).
        meta_input = question[len(turns[0]) + 2 :]
    else:
        meta_input = ""
    turns[0] = question
    item_id = str(row.get("question_id", row.get("id", row.get("idx", index))))
    category = row.get(category_field) if category_field else None
    reference = next((row[k] for k in REFERENCE_FIELDS if isinstance(row.get(k), str)), None) or references.get(item_id)
    if reference is None and isinstance(row.get("instances"), list) and row["instances"]:
        # Self-Instruct keeps its reference answer beside the input, in the first instance.
        output = row["instances"][0].get("output")
        reference = output if isinstance(output, str) and output else None
    used = {key, "input", "instances", category_field, "question_id", "id", "idx", *REFERENCE_FIELDS}
    meta = {k: v for k, v in row.items() if k not in used}
    if meta_input:
        meta["input"] = meta_input
    return TestItem(item_id, question, None if category is None else str(category), turns, reference, meta)


def _mtbench_references(path: Path) -> dict[str, str]:
    # MT-bench keeps GPT-4 reference answers (math, reasoning, coding) in a sibling folder.
    reference_file = path.parent / "reference_answer" / "gpt-4.jsonl"
    if not reference_file.is_file():
        return {}
    references = {}
    for line in reference_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            references[str(row["question_id"])] = row["choices"][0]["turns"][0]
    return references
