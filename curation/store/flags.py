"""Rule flags stored per dataset example, each with its human-readable reason."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import delete, func, select

from curation.store.db import Database
from curation.store.schema import Flag


@dataclass(frozen=True)
class FlagRow:
    record_id: str
    name: str
    reason: str


class Flags:
    def __init__(self, db: Database) -> None:
        self.db = db

    def replace(self, dataset_id: int, names: Iterable[str], rows: Sequence[FlagRow]) -> None:
        """Replace the findings of the given rules for a dataset (a re-run supersedes the last one)."""
        with self.db.session() as session:
            session.execute(delete(Flag).where(Flag.dataset_id == dataset_id, Flag.name.in_(list(names))))
            self.db.bulk_insert(
                session, Flag, [{"dataset_id": dataset_id, "record_id": r.record_id, "name": r.name, "reason": r.reason} for r in rows]
            )

    def frame(self, dataset_id: int) -> pd.DataFrame:
        query = select(Flag.record_id.label("id"), Flag.name, Flag.reason).where(Flag.dataset_id == dataset_id)
        with self.db.engine.connect() as connection:
            return pd.DataFrame(connection.execute(query).mappings().all(), columns=["id", "name", "reason"])

    def counts(self, dataset_id: int) -> dict[str, int]:
        with self.db.session() as session:
            rows = session.execute(
                select(Flag.name, func.count()).where(Flag.dataset_id == dataset_id).group_by(Flag.name)
            )
            return dict(sorted(rows, key=lambda item: -item[1]))

    def version(self, dataset_id: int) -> tuple[int, int, str]:
        """A cheap fingerprint (count, max id, latest write) that changes whenever the flags are re-run.

        The write time is part of it because SQLite may hand a deleted row's id to the next insert.
        """
        with self.db.session() as session:
            count, top, latest = session.execute(
                select(func.count(), func.max(Flag.id), func.max(Flag.created_at)).where(Flag.dataset_id == dataset_id)
            ).one()
        return int(count or 0), int(top or 0), str(latest or "")

    def for_record(self, dataset_id: int, record_id: str) -> list[FlagRow]:
        with self.db.session() as session:
            rows = session.scalars(select(Flag).where(Flag.dataset_id == dataset_id, Flag.record_id == record_id))
            return [FlagRow(r.record_id, r.name, r.reason) for r in rows]
