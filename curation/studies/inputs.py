"""What a study is made from: two models' answers (JSONL files), and LLM judges' verdicts to compare with.

Answers come from the Answers store (``store.answers``: generated or imported, with the test set's
questions), from the workspace's answer files, or from a file. An answers file has one JSON object per line: ``id``, ``instruction``, ``input``, ``output`` and
optionally ``category`` and ``testset``. A judgments file has ``id`` and ``verdict`` (from the study
model's side: win/tie/lose, or A/B/tie with A the study model), optionally ``judge``.
Every bad line is an error naming the file, the line and what to do: nothing is dropped silently.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.answers.items import answer_items
from curation.judges.answer_files import answer_sets
from curation.judges.pairs import PairingError
from curation.judges.pairs import read_answers as read_answer_file
from curation.store import Store
from curation.store.answers import AnswerSet
from curation.store.studies import ItemRow, StudyError

JUDGE_VERDICTS = {"win": "win", "tie": "tie", "lose": "lose", "a": "win", "b": "lose", "neither": "tie"}


@dataclass(frozen=True)
class Answer:
    id: str
    instruction: str
    input: str
    output: str
    category: str = ""
    testset: str = ""


@dataclass(frozen=True)
class Answers:
    """One model's answers, by test item id."""

    model: str
    by_id: dict[str, Answer]


@dataclass(frozen=True)
class Pairing:
    """The items of a study and what was left out (and why), so the lead sees every decision."""

    items: list[ItemRow]
    only_model: list[str]
    only_baseline: list[str]
    filtered_out: int


def _lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise StudyError(f"{path}:{number}: invalid JSON ({err.msg}); fix the line or remove it") from None
        if not isinstance(row, dict):
            raise StudyError(f"{path}:{number}: expected a JSON object per line")
        rows.append((number, row))
    return rows


def read_answers(path: Path, model: str | None = None) -> Answers:
    """A model's answers from a JSONL file; the model is named ``model`` or after the file."""
    by_id: dict[str, Answer] = {}
    for number, row in _lines(path):
        missing = [k for k in ("id", "instruction", "output") if not str(row.get(k) or "").strip()]
        if missing:
            raise StudyError(f"{path}:{number}: missing {', '.join(missing)}; every answer needs id, instruction and output")
        key = str(row["id"])
        if key in by_id:
            raise StudyError(f"{path}:{number}: id '{key}' appears twice; each test item is answered once per file")
        by_id[key] = Answer(key, str(row["instruction"]), str(row.get("input") or ""), str(row["output"]),
                            str(row.get("category") or ""), str(row.get("testset") or ""))
    if not by_id:
        raise StudyError(f"{path}: no answers in the file; give one JSON object per line")
    return Answers(model or Path(path).stem, by_id)


def answers_in_workspace(workspace: Path, model: str, testsets: list[str] | None = None) -> Answers:
    """A model's answers from the workspace's answer files (``answers/<model>/<testset>.jsonl``, the files
    the judges compare), on the chosen test sets (all by default); each answer keeps its test set."""
    files = answer_sets(Path(workspace)).get(model)
    if not files:
        raise StudyError(f"no answers of '{model}' in {workspace}/answers; generate or upload them first")
    by_id: dict[str, Answer] = {}
    for testset, path in files.items():
        if testsets and testset not in testsets:
            continue
        try:
            rows = read_answer_file(path)
        except PairingError as err:
            raise StudyError(str(err)) from None
        for row in rows:
            key = row.id if row.id not in by_id else f"{testset}/{row.id}"
            by_id[key] = Answer(key, row.instruction, row.input, row.output, row.category or "", testset)
    if not by_id:
        raise StudyError(f"'{model}' has no answers on {', '.join(testsets or [])}; its test sets: {', '.join(files)}")
    return Answers(model, by_id)


def answers_in_store(store: Store, model: str, testsets: list[str] | None = None) -> Answers:
    """A model's answers from the Answers store (``store.answers``), with each test item's question.

    A test set answered under several decodings gives the decoding with the most answers.
    """
    sets: dict[str, AnswerSet] = {}
    for found in store.answers.sets():
        wanted = found.model_id == model and (not testsets or found.testset in testsets)
        if wanted and (found.testset not in sets or found.n > sets[found.testset].n):
            sets[found.testset] = found
    if not sets:
        raise StudyError(f"the Answers store holds no answers of '{model}'"
                         + (f" on {', '.join(testsets)}" if testsets else "") + "; generate or import them first")
    by_id: dict[str, Answer] = {}
    for testset, chosen in sorted(sets.items()):
        questions = {item.item_id: item for item in answer_items(store, [testset])}
        for row in store.answers.of(model, testset, chosen.decoding_hash):
            item = questions.get(row.item_id)
            if item is None:
                raise StudyError(f"'{model}' answered item '{row.item_id}', which test set '{testset}' does not have")
            key = row.item_id if row.item_id not in by_id else f"{testset}/{row.item_id}"
            by_id[key] = Answer(key, item.instruction, item.input, row.output, item.category or "", testset)
    return Answers(model, by_id)


def store_models(store: Store) -> dict[str, list[str]]:
    """model -> the test sets it has answers on, in the Answers store."""
    found: dict[str, set[str]] = {}
    for answer_set in store.answers.sets():
        found.setdefault(answer_set.model_id, set()).add(answer_set.testset)
    return {model: sorted(testsets) for model, testsets in sorted(found.items())}


def workspace_models(workspace: Path) -> dict[str, list[str]]:
    """model -> its test sets, for every answer folder of the workspace."""
    return {model: sorted(files) for model, files in answer_sets(Path(workspace)).items()}


def pair(model: Answers, baseline: Answers, testsets: list[str] | None = None, sample: int | None = None,
         seed: int = 0) -> Pairing:
    """The items both sides answered (on the chosen test sets), optionally a seeded sample of them."""
    shared = [k for k in model.by_id if k in baseline.by_id]
    chosen = [k for k in shared if not testsets or model.by_id[k].testset in testsets]
    filtered_out = len(shared) - len(chosen)
    if sample is not None and sample < len(chosen):
        picked = set(random.Random(seed).sample(chosen, sample))
        filtered_out += len(chosen) - sample
        chosen = [k for k in chosen if k in picked]
    items = [_item(model.by_id[k], baseline.by_id[k]) for k in chosen]
    return Pairing(items, sorted(set(model.by_id) - set(baseline.by_id)),
                   sorted(set(baseline.by_id) - set(model.by_id)), filtered_out)


def _item(mine: Answer, theirs: Answer) -> ItemRow:
    if (mine.instruction, mine.input) != (theirs.instruction, theirs.input):
        raise StudyError(f"item '{mine.id}' has different questions in the two answer files; they must answer the same test items")
    return ItemRow(mine.id, mine.instruction, mine.input, mine.output, theirs.output, mine.category, mine.testset)


def read_judgments(path: Path) -> dict[str, dict[str, str]]:
    """Judge verdicts by judge then item id, from the study model's side (win/tie/lose)."""
    judges: dict[str, dict[str, str]] = {}
    for number, row in _lines(path):
        verdict = JUDGE_VERDICTS.get(str(row.get("verdict", "")).strip().lower())
        if "id" not in row or verdict is None:
            raise StudyError(f"{path}:{number}: need 'id' and a 'verdict' of win/tie/lose (or A/B/tie with A the study model)")
        judges.setdefault(str(row.get("judge") or Path(path).stem), {})[str(row["id"])] = verdict
    return judges
