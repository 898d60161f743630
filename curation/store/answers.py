"""Answers to test items: kept forever, one per (model, test set, item, decoding); never overwritten."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from curation.store.db import Database
from curation.store.schema import utcnow
from curation.store.schema_answers import Answer

FINISH_REASONS = ("stop", "truncated", "unknown")
KEY_COLUMNS = ("model_id", "testset", "item_id", "decoding_hash")


@dataclass(frozen=True)
class AnswerRow:
    model_id: str
    testset: str
    item_id: str
    decoding_hash: str
    output: str
    finish_reason: str
    prompt_sha256: str = ""
    decoding: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    source: str = "generated"
    job_id: int | None = None
    created_by: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerSet:
    """One model's answers to one test set under one decoding: what the page lists and a judge pairs."""

    model_id: str
    testset: str
    decoding_hash: str
    source: str
    n: int
    n_truncated: int


class Answers:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, rows: Sequence[AnswerRow]) -> int:
        """Insert answers; one already stored under the same key is kept as it is. Returns how many were new."""
        if not rows:
            return 0
        for row in rows:
            if row.finish_reason not in FINISH_REASONS:
                raise ValueError(f"finish_reason must be one of {FINISH_REASONS}, got {row.finish_reason!r}")
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        values = [{**asdict(r), "created_at": utcnow()} for r in rows]
        added = 0
        with self.db.session() as session:
            for start in range(0, len(values), 1000):
                statement = insert(Answer).values(values[start : start + 1000])
                statement = statement.on_conflict_do_nothing(index_elements=list(KEY_COLUMNS)).returning(Answer.id)
                added += len(session.execute(statement).all())  # rowcount is not reliable across drivers
        return added

    def answered_ids(self, model_id: str, testset: str, decoding_hash: str) -> set[str]:
        query = select(Answer.item_id).where(
            Answer.model_id == model_id, Answer.testset == testset, Answer.decoding_hash == decoding_hash
        )
        with self.db.session() as session:
            return set(session.scalars(query))

    def of(self, model_id: str, testset: str, decoding_hash: str | None = None) -> list[AnswerRow]:
        """One model's answers on a test set (every decoding unless one is named), oldest first."""
        query = select(Answer).where(Answer.model_id == model_id, Answer.testset == testset).order_by(Answer.id)
        if decoding_hash is not None:
            query = query.where(Answer.decoding_hash == decoding_hash)
        with self.db.session() as session:
            return [_row(a) for a in session.scalars(query)]

    def for_item(self, testset: str, item_id: str) -> list[AnswerRow]:
        """Every model's answer to one test item."""
        query = select(Answer).where(Answer.testset == testset, Answer.item_id == item_id).order_by(Answer.model_id, Answer.id)
        with self.db.session() as session:
            return [_row(a) for a in session.scalars(query)]

    def sets(self, testset: str | None = None) -> list[AnswerSet]:
        truncated = func.sum(case((Answer.finish_reason == "truncated", 1), else_=0))
        query = (
            select(Answer.model_id, Answer.testset, Answer.decoding_hash, func.min(Answer.source), func.count(), truncated)
            .group_by(Answer.model_id, Answer.testset, Answer.decoding_hash)
            .order_by(Answer.testset, Answer.model_id, Answer.decoding_hash)
        )
        if testset is not None:
            query = query.where(Answer.testset == testset)
        with self.db.session() as session:
            return [AnswerSet(m, t, d, s, int(n), int(k or 0)) for m, t, d, s, n, k in session.execute(query)]

    def version(self) -> tuple[int, int]:
        """Changes whenever an answer is added (answers are never updated)."""
        with self.db.session() as session:
            count, top = session.execute(select(func.count(), func.max(Answer.id))).one()
        return int(count or 0), int(top or 0)


def _row(answer: Answer) -> AnswerRow:
    return AnswerRow(
        model_id=answer.model_id,
        testset=answer.testset,
        item_id=answer.item_id,
        decoding_hash=answer.decoding_hash,
        output=answer.output,
        finish_reason=answer.finish_reason,
        prompt_sha256=answer.prompt_sha256,
        decoding=dict(answer.decoding or {}),
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        seconds=answer.seconds,
        source=answer.source,
        job_id=answer.job_id,
        created_by=answer.created_by,
        meta=dict(answer.meta or {}),
    )
