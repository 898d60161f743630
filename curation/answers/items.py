"""The test items a model answers: instruction and input apart (the Alpaca template needs both), by test set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from curation.store import NotFound, Store
from curation.testsets import BUILTIN, BUILTIN_DIR, TestItem, read_testset


@dataclass(frozen=True)
class AnswerItem:
    testset: str
    item_id: str
    instruction: str
    input: str
    category: str | None
    question: str  # instruction and input as judges and people read them


def alpaca_fields(item: TestItem) -> tuple[str, str]:
    """(instruction, input) of a test item; the question is ``instruction + "\\n\\n" + input``."""
    item_input = str(item.meta.get("input") or "")
    suffix = "\n\n" + item_input
    if item_input and item.question.endswith(suffix):
        return item.question[: -len(suffix)], item_input
    return item.question, ""


def testset_items(store: Store, name: str) -> list[TestItem]:
    """A test set's items from the store; a bundled set not stored yet is stored first (so ids agree)."""
    try:
        return store.testsets.items(name)
    except NotFound:
        spec = next((s for s in BUILTIN if s.name == name), None)
        if spec is None:
            known = sorted({t.name for t in store.testsets.all()} | {s.name for s in BUILTIN})
            raise NotFound(f"no test set '{name}'; known: {', '.join(known)}") from None
        items = read_testset(BUILTIN_DIR / spec.path, spec.category_field)
        store.testsets.create(spec.name, items, source_path=f"bundled:{spec.path}", category_field=spec.category_field)
        return store.testsets.items(name)


def answer_items(store: Store, names: Sequence[str], limit: int | None = None) -> list[AnswerItem]:
    """The items of each named test set in order (the first ``limit`` of each when given)."""
    found = []
    for name in names:
        items = testset_items(store, name)
        for item in items[:limit] if limit else items:
            instruction, item_input = alpaca_fields(item)
            found.append(AnswerItem(name, item.item_id, instruction, item_input, item.category, item.question))
    return found
