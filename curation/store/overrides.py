"""Human keep/drop decisions: an append-only audit log; the latest entry per example is in force."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from curation.store.db import Database
from curation.store.schema import Override

DECISIONS = ("keep", "drop", "clear")


@dataclass(frozen=True)
class Decision:
    record_id: str
    decision: str
    reason: str
    user: str
    at: datetime
    entry: int


class Overrides:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, dataset_id: int, record_id: str, decision: str, user: str, reason: str = "") -> Decision:
        """Record a decision; ``clear`` hands the example back to the machine's verdict."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
        if not user:
            raise ValueError("an override needs the name of the person deciding")
        with self.db.session() as session:
            row = Override(dataset_id=dataset_id, record_id=record_id, decision=decision, reason=reason, user=user)
            session.add(row)
            session.flush()
            return _decision(row)

    def add_many(self, dataset_id: int, record_ids: list[str], decision: str, user: str, reason: str = "") -> list[Decision]:
        """One entry per example, in one transaction: a bulk decision is recorded whole or not at all."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
        if not user:
            raise ValueError("an override needs the name of the person deciding")
        with self.db.session() as session:
            rows = [Override(dataset_id=dataset_id, record_id=r, decision=decision, reason=reason, user=user)
                    for r in record_ids]
            session.add_all(rows)
            session.flush()
            return [_decision(row) for row in rows]

    def history(self, dataset_id: int, record_id: str | None = None) -> list[Decision]:
        query = select(Override).where(Override.dataset_id == dataset_id)
        if record_id is not None:
            query = query.where(Override.record_id == record_id)
        with self.db.session() as session:
            return [_decision(row) for row in session.scalars(query.order_by(Override.id))]

    def in_force(self, dataset_id: int) -> dict[str, Decision]:
        """The latest keep/drop per example (examples whose latest entry is ``clear`` are absent)."""
        latest = (
            select(func.max(Override.id))
            .where(Override.dataset_id == dataset_id)
            .group_by(Override.record_id)
            .scalar_subquery()
        )
        with self.db.session() as session:
            rows = session.scalars(select(Override).where(Override.id.in_(latest)))
            return {row.record_id: _decision(row) for row in rows if row.decision != "clear"}


def _decision(row: Override) -> Decision:
    return Decision(row.record_id, row.decision, row.reason, row.user, row.created_at, row.id)
