"""The eight bundled test sets read into one item shape, with their categories and references."""

from __future__ import annotations

from collections import Counter

import pytest

from curation.testsets import BUILTIN, BUILTIN_DIR, read_testset

SIZES = {"vicuna80": 80, "koala180": 180, "wizardlm218": 218, "selfinstruct252": 252, "pandalm170": 170,
         "coachlm150": 150, "mtbench80": 80, "lima300": 300}


@pytest.mark.parametrize("spec", BUILTIN, ids=lambda s: s.name)
def test_every_builtin_set_reads_whole(spec) -> None:
    items = read_testset(BUILTIN_DIR / spec.path, spec.category_field)
    assert len(items) == SIZES[spec.name]
    assert all(item.question.strip() for item in items)
    assert len({item.item_id for item in items}) == len(items)
    if spec.category_field:
        assert all(item.category for item in items)


def test_categories_references_and_turns() -> None:
    vicuna = read_testset(BUILTIN_DIR / "vicuna80.jsonl", "category")
    assert len(Counter(i.category for i in vicuna)) == 9
    mtbench = read_testset(BUILTIN_DIR / "mtbench80/question.jsonl", "category")
    assert all(len(i.turns) == 2 for i in mtbench)
    assert sum(i.reference is not None for i in mtbench) == 30
    coach = read_testset(BUILTIN_DIR / "coachlm150.json")
    assert all(i.reference for i in coach)
    selfinstruct = read_testset(BUILTIN_DIR / "selfinstruct252.jsonl", "motivation_app")
    assert "If you have any questions about my rate" in selfinstruct[0].question
