"""Ratings: many raters per record, keyed by content id so nothing is rated twice."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from curation.store.db import Database
from curation.store.schema import Example, Rating, utcnow

STATUSES = ("ok", "unparsed", "error")


@dataclass(frozen=True)
class RatingRow:
    record_id: str
    rater: str
    rater_version: str
    status: str
    score: float | None = None
    score_0_5: float | None = None
    explanation: str | None = None
    raw: str | None = None
    dimension: str | None = None
    job_id: int | None = None


@dataclass(frozen=True)
class RaterSummary:
    rater: str
    rater_version: str
    n: int
    n_ok: int


class Ratings:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, rows: Sequence[RatingRow]) -> None:
        """Insert or replace ratings (the same record, rater and version keep one row)."""
        if not rows:
            return
        for row in rows:
            if row.status not in STATUSES:
                raise ValueError(f"rating status must be one of {STATUSES}, got {row.status!r}")
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        values = [{**asdict(r), "created_at": utcnow()} for r in rows]
        with self.db.session() as session:
            for start in range(0, len(values), 2000):
                statement = insert(Rating).values(values[start : start + 2000])
                updated = {c: statement.excluded[c] for c in values[0] if c not in ("record_id", "rater", "rater_version")}
                session.execute(
                    statement.on_conflict_do_update(index_elements=["record_id", "rater", "rater_version"], set_=updated)
                )

    def set_explanations(self, rater: str, rater_version: str, updates: Sequence[tuple[str, str, str | None]]) -> None:
        """Replace the explanation (and raw) of existing ratings: (record_id, explanation, raw) each.

        The score is untouched and ``created_at`` too: an explanation computed later (the IQS sentence that
        moves the score) does not make the ratings' cached frames stale.
        """
        if not updates:
            return
        with self.db.session() as session:
            for record_id, explanation, raw in updates:
                session.execute(
                    update(Rating)
                    .where(Rating.record_id == record_id, Rating.rater == rater, Rating.rater_version == rater_version)
                    .values(explanation=explanation, raw=raw)
                )

    def version(self) -> tuple[int, int, str]:
        """A cheap fingerprint (count, max id, latest write) that changes whenever a rating is saved.

        Caches of rating frames key on it; an upsert keeps the id but refreshes ``created_at``.
        """
        with self.db.session() as session:
            count, top, latest = session.execute(select(func.count(), func.max(Rating.id), func.max(Rating.created_at))).one()
        return int(count or 0), int(top or 0), str(latest or "")

    def rated_ids(self, rater: str, rater_version: str, record_ids: Iterable[str] | None = None) -> set[str]:
        """Ids that already have a finished rating (ok or unparsed) from this rater version."""
        query = select(Rating.record_id).where(
            Rating.rater == rater, Rating.rater_version == rater_version, Rating.status != "error"
        )
        with self.db.session() as session:
            done = set(session.scalars(query))
        return done if record_ids is None else done & set(record_ids)

    def stored(self, rater: str, rater_version: str, record_ids: Iterable[str]) -> dict[str, RatingRow]:
        """This rater version's ratings of ``record_ids`` (any status), by record id."""
        ids = list(dict.fromkeys(record_ids))
        found: dict[str, RatingRow] = {}
        with self.db.session() as session:
            for start in range(0, len(ids), 500):
                query = select(Rating).where(
                    Rating.rater == rater,
                    Rating.rater_version == rater_version,
                    Rating.record_id.in_(ids[start : start + 500]),
                )
                for row in session.scalars(query):
                    found[row.record_id] = RatingRow(
                        record_id=row.record_id,
                        rater=row.rater,
                        rater_version=row.rater_version,
                        status=row.status,
                        score=row.score,
                        score_0_5=row.score_0_5,
                        explanation=row.explanation,
                        raw=row.raw,
                        dimension=row.dimension,
                        job_id=row.job_id,
                    )
        return found

    def raters(self, dataset_id: int) -> list[RaterSummary]:
        """The raters that rated examples of this dataset, most complete first."""
        query = (
            select(
                Rating.rater,
                Rating.rater_version,
                func.count(),
                func.sum(case((Rating.status == "ok", 1), else_=0)),
            )
            .join(Example, Example.record_id == Rating.record_id)
            .where(Example.dataset_id == dataset_id)
            .group_by(Rating.rater, Rating.rater_version)
        )
        with self.db.session() as session:
            rows = [RaterSummary(r, v, n, int(ok or 0)) for r, v, n, ok in session.execute(query)]
        return sorted(rows, key=lambda s: (-s.n, s.rater))

    def frame(self, dataset_id: int, rater: str | None = None, rater_version: str | None = None) -> pd.DataFrame:
        """Ratings of a dataset's examples: id, rater, rater_version, status, score, score_0_5, explanation."""
        columns = [
            Rating.record_id.label("id"),
            Rating.rater,
            Rating.rater_version,
            Rating.dimension,
            Rating.status,
            Rating.score,
            Rating.score_0_5,
            Rating.explanation,
        ]
        query = select(*columns).join(Example, Example.record_id == Rating.record_id).where(Example.dataset_id == dataset_id)
        if rater is not None:
            query = query.where(Rating.rater == rater)
        if rater_version is not None:
            query = query.where(Rating.rater_version == rater_version)
        with self.db.engine.connect() as connection:
            return pd.DataFrame(connection.execute(query).mappings().all(), columns=[c.key for c in columns])

    def for_record(self, record_id: str) -> list[dict[str, Any]]:
        with self.db.session() as session:
            rows = session.scalars(select(Rating).where(Rating.record_id == record_id).order_by(Rating.rater))
            return [
                {
                    "rater": r.rater,
                    "rater_version": r.rater_version,
                    "dimension": r.dimension,
                    "status": r.status,
                    "score": r.score,
                    "score_0_5": r.score_0_5,
                    "explanation": r.explanation,
                    "raw": r.raw,
                    "created_at": r.created_at,
                }
                for r in rows
            ]
