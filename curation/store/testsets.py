"""Test sets kept in the store, for answer generation and judging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from curation.store.datasets import AlreadyExists, NotFound
from curation.store.db import Database
from curation.store.schema import TestItem as TestItemRow
from curation.store.schema import TestSet
from curation.testsets import TestItem


@dataclass(frozen=True)
class TestSetInfo:
    __test__ = False

    id: int
    name: str
    n_items: int
    category_field: str | None
    source_path: str


class TestSets:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, items: Sequence[TestItem], source_path: str = "", category_field: str | None = None, replace: bool = False) -> TestSetInfo:
        with self.db.session() as session:
            existing = session.scalar(select(TestSet).where(TestSet.name == name))
            if existing is not None:
                if not replace:
                    raise AlreadyExists(f"a test set named '{name}' exists")
                session.delete(existing)
                session.flush()
            testset = TestSet(name=name, source_path=source_path, n_items=len(items), category_field=category_field)
            session.add(testset)
            session.flush()
            rows = [
                {
                    "testset_id": testset.id,
                    "position": i,
                    "item_id": item.item_id,
                    "question": item.question,
                    "turns": item.turns,
                    "category": item.category,
                    "reference": item.reference,
                    "meta": item.meta,
                }
                for i, item in enumerate(items)
            ]
            self.db.bulk_insert(session, TestItemRow, rows)
            return _info(testset)

    def all(self) -> list[TestSetInfo]:
        with self.db.session() as session:
            return [_info(t) for t in session.scalars(select(TestSet).order_by(TestSet.id))]

    def items(self, name: str) -> list[TestItem]:
        with self.db.session() as session:
            testset = session.scalar(select(TestSet).where(TestSet.name == name))
            if testset is None:
                raise NotFound(f"no test set '{name}' in the store")
            rows = session.scalars(select(TestItemRow).where(TestItemRow.testset_id == testset.id).order_by(TestItemRow.position))
            return [TestItem(r.item_id, r.question, r.category, list(r.turns or []), r.reference, dict(r.meta or {})) for r in rows]


def _info(testset: TestSet) -> TestSetInfo:
    return TestSetInfo(testset.id, testset.name, testset.n_items, testset.category_field, testset.source_path)
