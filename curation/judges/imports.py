"""Published judge reviews into the store, beside new runs (their tallies and charts show the same way).

Two shapes:
- Cherry_LLM's ``*_wrap_reviews_gpt4.json`` (GPT-4, Vicuna prompt, both orders): ``{Meta_Info, data}``;
  each item has its question, ``Answer1``/``Answer2``, ``review`` (Answer1 shown first) and
  ``review_reverse`` (Answer2 shown first). Answer1 is model A.
- FastChat's review JSONL (``question_id``, ``text``, ``score``; one order: answer 1 shown first), with
  the Vicuna-80 questions and, when given, the two answer files (``question_id``, ``text``).
Reviews are parsed with the same parser as new runs: what it cannot read is ``unparsed``, with its text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.judges.parse import parse_scores
from curation.judges.rule import winner_model
from curation.store import JudgmentRow, RunInfo, RunSpec, Store
from curation.studio_auth import Person, require
from curation.testsets import BUILTIN, BUILTIN_DIR, read_testset

QUESTION_FIELDS = ("text", "prompt", "instruction", "Instruction", "conversations", "question")
# Cherry_LLM's dataset names -> the bundled test sets (for categories and labels).
CHERRY_TESTSETS = {
    "vicuna": "vicuna80",
    "koala": "koala180",
    "wizardlm": "wizardlm218",
    "sinstruct": "selfinstruct252",
    "lima": "lima300",
}


class ReviewImportError(ValueError):
    """A review file that cannot be imported; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Review:
    order: str  # ab | ba
    text: str | None


@dataclass(frozen=True)
class ImportedItem:
    item_id: str
    instruction: str
    answer_a: str
    answer_b: str
    category: str | None
    reviews: tuple[Review, ...]


def import_reviews(
    store: Store,
    path: Path,
    person: Person | None,
    model_a: str | None = None,
    model_b: str | None = None,
    judge_model: str = "gpt-4",
    answers_a: Path | None = None,
    answers_b: Path | None = None,
) -> list[RunInfo]:
    """Import a Cherry_LLM review file (or a folder of them) or a FastChat review JSONL; one run per file."""
    require(person, "import", "import judge reviews")
    files = sorted(path.glob("*_reviews_*.json")) if path.is_dir() else [path]
    if not files:
        raise ReviewImportError(f"{path}: no *_reviews_*.json files in the folder")
    runs = []
    for file in files:
        if file.suffix == ".jsonl":
            testset, items = "vicuna80", read_fastchat(file, answers_a, answers_b)
            labels = (model_a or "answer 1", model_b or "answer 2")
        else:
            testset, items = read_cherry(file)
            labels = (model_a or "cherry-5pct-7b", model_b or "alpaca-7b")
        runs.append(_store_run(store, file, testset, items, labels, judge_model, person))
    return runs


def _store_run(
    store: Store,
    file: Path,
    testset: str,
    items: Sequence[ImportedItem],
    labels: tuple[str, str],
    judge_model: str,
    person: Person | None,
) -> RunInfo:
    orders = sorted({review.order for item in items for review in item.reviews})
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    spec = RunSpec(
        key=hashlib.sha256(f"import:{digest}:{labels}:{judge_model}".encode()).hexdigest(),
        name=f"{labels[0]} vs {labels[1]} — {testset} — published {judge_model} reviews ({file.name})",
        judge="vicuna",
        judge_model=judge_model,
        judge_version="published",
        model_a=labels[0],
        model_b=labels[1],
        testset=testset,
        source="import",
        n_items=len(items),
        params={"file": file.name, "orders": orders},
        created_by=person.name if person else "",
    )
    run = store.judgments.find_or_create_run(spec)
    store.judgments.save(run.id, [row for i, item in enumerate(items) for row in _rows(item, i)])
    return run


def _rows(item: ImportedItem, position: int) -> list[JudgmentRow]:
    rows = []
    for review in item.reviews:
        parsed = parse_scores(review.text)
        base = {
            "item_id": item.item_id,
            "order_shown": review.order,
            "position": position,
            "category": item.category,
            "instruction": item.instruction,
            "input": "",
            "answer_a": item.answer_a,
            "answer_b": item.answer_b,
            "raw": review.text,
        }
        if parsed.status != "ok" or parsed.winner is None:
            rows.append(JudgmentRow(**base, status="unparsed", problem=parsed.problem))
            continue
        scores = (parsed.score_1, parsed.score_2) if review.order == "ab" else (parsed.score_2, parsed.score_1)
        rows.append(
            JudgmentRow(**base, status="ok", winner=winner_model(parsed.winner, review.order),
                        score_a=scores[0], score_b=scores[1], reason=parsed.reason)
        )
    return rows


def read_cherry(path: Path) -> tuple[str, list[ImportedItem]]:
    """(test set name, items) of a Cherry_LLM ``*_wrap_reviews_gpt4.json`` file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        name = str(data["Meta_Info"]["dataset_name"])
        rows = data["data"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ReviewImportError(f"{path.name}: not a Cherry_LLM review file ({err}); expected {{Meta_Info, data}}") from err
    testset = CHERRY_TESTSETS.get(name, name)
    builtin = _builtin(testset)
    known = _testset_items(builtin)
    items = []
    for index, row in enumerate(rows):
        question = next((row[k] for k in QUESTION_FIELDS if isinstance(row.get(k), str)), None)
        if question is None or "Answer1" not in row or "Answer2" not in row:
            raise ReviewImportError(f"{path.name} item {index}: needs a question, Answer1 and Answer2")
        item_id, category = _match(question, index, builtin, known)
        reviews = (Review("ab", row.get("review")), Review("ba", row.get("review_reverse")))
        items.append(ImportedItem(item_id, question, row["Answer1"] or "", row["Answer2"] or "", category, reviews))
    return testset, _unique_ids(items)


def read_fastchat(path: Path, answers_a: Path | None, answers_b: Path | None) -> list[ImportedItem]:
    """Items of a FastChat review JSONL (one order), with Vicuna-80's questions and the answers if given."""
    questions = {item.item_id: item for item in _builtin("vicuna80")}
    first, second = _fastchat_answers(answers_a), _fastchat_answers(answers_b)
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question_id = str(row["question_id"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ReviewImportError(f"{path.name}:{number}: not a FastChat review line ({err})") from err
        question = questions.get(question_id)
        items.append(
            ImportedItem(
                question_id,
                question.question if question else f"question {question_id}",
                first.get(question_id, ""),
                second.get(question_id, ""),
                question.category if question else None,
                (Review("ab", row.get("text")),),
            )
        )
    return items


def _fastchat_answers(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    answers = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            answers[str(row["question_id"])] = str(row.get("text", ""))
    return answers


def _builtin(name: str):
    spec = next((s for s in BUILTIN if s.name == name), None)
    return [] if spec is None else read_testset(BUILTIN_DIR / spec.path, spec.category_field)


def _testset_items(items: Sequence[Any]) -> dict[str, tuple[str, str | None]]:
    """Normalised question text -> (item id, category) of a bundled test set."""
    found: dict[str, tuple[str, str | None]] = {}
    for item in items:
        found.setdefault(_normal(item.question), (item.item_id, item.category))
    return found


def _match(question: str, index: int, builtin: Sequence[Any], known: dict[str, tuple[str, str | None]]) -> tuple[str, str | None]:
    """The test-set item a published question is: same text, or (Self-Instruct, whose input the file
    leaves out) the item at the same place whose question starts with it; else the index, no category."""
    if _normal(question) in known:
        return known[_normal(question)]
    if index < len(builtin) and _normal(builtin[index].question).startswith(_normal(question)):
        return builtin[index].item_id, builtin[index].category
    return str(index), None


def _normal(text: str) -> str:
    return " ".join(text.split()).lower()


def _unique_ids(items: list[ImportedItem]) -> list[ImportedItem]:
    """Two items matching the same test-set question keep both (never deduplicated): the later gets a suffix."""
    seen: set[str] = set()
    unique = []
    for index, item in enumerate(items):
        item_id = item.item_id if item.item_id not in seen else f"{item.item_id}#{index}"
        seen.add(item_id)
        unique.append(item if item_id == item.item_id else ImportedItem(item_id, *[getattr(item, f) for f in
                      ("instruction", "answer_a", "answer_b", "category", "reviews")]))
    return unique





def import_bundled_reviews(store: Store, person: Person | None) -> list[RunInfo]:
    """The published GPT-4 reviews shipped with the studio (Cherry 5% vs Alpaca-7B on Vicuna-80 and WizardLM)."""
    from curation.config import BUNDLED_DATA_DIR

    return import_reviews(store, BUNDLED_DATA_DIR / "judge_reviews", person)
