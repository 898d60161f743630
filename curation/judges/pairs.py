"""What a comparison judges: items with model A's and model B's answers, paired by id.

Answers come from files (one JSON object a line: ``id``, ``instruction``, ``input``, ``output``, optional
``category``) or, for B, from a test set's reference answers (PandaLM-170, CoachLM-150, Self-Instruct-252).
An empty answer is an answer (it is judged); items are never deduplicated; every problem names the file
and line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from curation.testsets import BUILTIN, BUILTIN_DIR, read_testset

REFERENCE = "reference"
# PandaLM-170 as published (testset-inference-v1) carries no reference answers, so it is not here.
REFERENCE_TESTSETS = ("coachlm150", "selfinstruct252")
SHOWN_IDS = 3


class PairingError(ValueError):
    """Answer files that cannot be compared as given; the message says what to change."""


@dataclass(frozen=True)
class Answer:
    id: str
    instruction: str
    input: str
    output: str
    category: str | None = None


@dataclass(frozen=True)
class Pair:
    item_id: str
    instruction: str
    input: str
    answer_a: str
    answer_b: str
    category: str | None = None


def read_answers(path: Path) -> list[Answer]:
    """Every line of an answers file; a line that is not a usable answer stops with its line number."""
    if not path.is_file():
        raise PairingError(f"{path}: no such file; give a JSONL file with one answer per line")
    answers: list[Answer] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        answer = _answer(path, number, line)
        if answer.id in seen:
            raise PairingError(
                f"{path.name}:{number}: id '{answer.id}' is also on line {seen[answer.id]}; give every item its own id"
            )
        seen[answer.id] = number
        answers.append(answer)
    if not answers:
        raise PairingError(f"{path}: the file holds no answers")
    return answers


def _answer(path: Path, number: int, line: str) -> Answer:
    where = f"{path.name}:{number}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise PairingError(f"{where}: invalid JSON ({err.msg}); fix the line") from err
    if not isinstance(row, dict):
        raise PairingError(f"{where}: expected a JSON object with id, instruction, input, output")
    for name in ("id", "instruction", "output"):
        if name not in row or row[name] is None:
            raise PairingError(f"{where}: the field '{name}' is missing; every line needs id, instruction and output")
    for name in ("instruction", "output", "input"):
        if name in row and not isinstance(row[name], str):
            raise PairingError(f"{where}: '{name}' must be text, got {type(row[name]).__name__}")
    category = row.get("category")
    return Answer(str(row["id"]), row["instruction"], row.get("input") or "", row["output"],
                  None if category in (None, "") else str(category))


def pair_answers(a: Sequence[Answer], b: Sequence[Answer], a_name: str = "A", b_name: str = "B") -> list[Pair]:
    """A's items in A's order, each with B's answer of the same id; both files must hold the same ids."""
    by_id = {answer.id: answer for answer in b}
    missing = [answer.id for answer in a if answer.id not in by_id]
    extra = sorted(set(by_id) - {answer.id for answer in a})
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"{len(missing)} ids of {a_name} are not in {b_name} (first: {', '.join(missing[:SHOWN_IDS])})")
        if extra:
            problems.append(f"{len(extra)} ids of {b_name} are not in {a_name} (first: {', '.join(extra[:SHOWN_IDS])})")
        raise PairingError("; ".join(problems) + "; both files must answer the same items")
    pairs = []
    for answer in a:
        other = by_id[answer.id]
        if " ".join(answer.instruction.split()) != " ".join(other.instruction.split()):
            raise PairingError(
                f"item '{answer.id}': {a_name} and {b_name} answer different instructions "
                f"({answer.instruction[:60]!r} vs {other.instruction[:60]!r}); pair the files by the same ids"
            )
        pairs.append(
            Pair(answer.id, answer.instruction, answer.input, answer.output, other.output,
                 answer.category or other.category)
        )
    return pairs


def reference_testsets() -> list[str]:
    """The bundled test sets whose items carry reference answers (MT-Bench only for some of its items)."""
    return list(REFERENCE_TESTSETS)


def _builtin_items(name: str):
    spec = next((s for s in BUILTIN if s.name == name), None)
    if spec is None:
        raise PairingError(f"unknown test set '{name}'; choose one of {', '.join(s.name for s in BUILTIN)}")
    return read_testset(BUILTIN_DIR / spec.path, spec.category_field)


def reference_answers(testset: str) -> list[Answer]:
    """A bundled test set's reference answers as answers (the question is the item's full prompt)."""
    items = [item for item in _builtin_items(testset) if item.reference]
    if not items:
        raise PairingError(f"test set '{testset}' has no reference answers; use one of {', '.join(reference_testsets())}")
    return [Answer(item.item_id, item.question, "", item.reference or "", item.category) for item in items]


def pair_with_references(a: Sequence[Answer], testset: str, a_name: str = "A") -> list[Pair]:
    """A's answers against the test set's references, matched by id (A must answer every referenced item)."""
    references = {answer.id: answer for answer in reference_answers(testset)}
    missing = [answer.id for answer in a if answer.id not in references]
    if missing:
        raise PairingError(
            f"{len(missing)} ids of {a_name} are not items of {testset} with a reference "
            f"(first: {', '.join(missing[:SHOWN_IDS])}); answer the test set's own item ids"
        )
    return [
        Pair(answer.id, answer.instruction, answer.input, answer.output, references[answer.id].output,
             answer.category or references[answer.id].category)
        for answer in a
    ]
