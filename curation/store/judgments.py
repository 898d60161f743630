"""Judge runs and their judgments: every review kept, one row per item and order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from curation.store.datasets import NotFound
from curation.store.db import Database
from curation.store.schema import utcnow
from curation.store.schema_judgments import JudgeRun, Judgment

STATUSES = ("ok", "unparsed", "error")
_KEY_COLUMNS = ("run_id", "item_id", "order_shown")


@dataclass(frozen=True)
class RunSpec:
    """What identifies a comparison run; ``key`` is the hash the caller computed from it."""

    key: str
    name: str
    judge: str
    judge_model: str
    judge_version: str
    model_a: str
    model_b: str
    testset: str
    source: str = "run"
    n_items: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    job_id: int | None = None
    created_by: str = ""


@dataclass(frozen=True)
class RunInfo:
    id: int
    key: str
    name: str
    judge: str
    judge_model: str
    judge_version: str
    model_a: str
    model_b: str
    testset: str
    source: str
    n_items: int
    params: dict[str, Any]
    job_id: int | None
    created_by: str
    created_at: datetime

    @property
    def label(self) -> str:
        return f"#{self.id} {self.name}"


@dataclass(frozen=True)
class JudgmentRow:
    item_id: str
    order_shown: str  # ab | ba
    position: int
    category: str | None
    instruction: str
    input: str
    answer_a: str
    answer_b: str
    status: str  # ok | unparsed | error
    winner: str | None = None  # a | b | tie
    score_a: float | None = None
    score_b: float | None = None
    raw: str | None = None
    reason: str | None = None
    reference: str | None = None
    problem: str | None = None
    call_key: str | None = None


class Judgments:
    def __init__(self, db: Database) -> None:
        self.db = db

    def find_or_create_run(self, spec: RunSpec) -> RunInfo:
        """The run with ``spec.key`` (a re-run continues it), or a new one."""
        with self.db.session() as session:
            run = session.scalar(select(JudgeRun).where(JudgeRun.key == spec.key))
            if run is None:
                run = JudgeRun(**asdict(spec))
                session.add(run)
                session.flush()
            elif spec.job_id is not None and run.job_id != spec.job_id:
                run.job_id = spec.job_id  # the latest job working on it, for the page's progress
            return _info(run)

    def run(self, run_id: int) -> RunInfo:
        with self.db.session() as session:
            run = session.get(JudgeRun, run_id)
            if run is None:
                raise NotFound(f"no judge run #{run_id}; `python -m curation judge --runs` lists the runs")
            return _info(run)

    def runs(self) -> list[RunInfo]:
        with self.db.session() as session:
            return [_info(r) for r in session.scalars(select(JudgeRun).order_by(JudgeRun.id))]

    def delete_run(self, run_id: int) -> None:
        with self.db.session() as session:
            session.execute(delete(Judgment).where(Judgment.run_id == run_id))
            session.execute(delete(JudgeRun).where(JudgeRun.id == run_id))

    def save(self, run_id: int, rows: Sequence[JudgmentRow]) -> None:
        """Insert judgments; a finished one (ok or unparsed) is never replaced by a later error."""
        if not rows:
            return
        for row in rows:
            if row.status not in STATUSES:
                raise ValueError(f"judgment status must be one of {STATUSES}, got {row.status!r}")
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        values = [{**asdict(r), "run_id": run_id, "created_at": utcnow()} for r in rows]
        with self.db.session() as session:
            for start in range(0, len(values), 1000):
                statement = insert(Judgment).values(values[start : start + 1000])
                updated = {c: statement.excluded[c] for c in values[0] if c not in _KEY_COLUMNS}
                session.execute(
                    statement.on_conflict_do_update(
                        index_elements=list(_KEY_COLUMNS), set_=updated, where=Judgment.status == "error"
                    )
                )

    def finished(self, run_id: int) -> set[tuple[str, str]]:
        """(item id, order) pairs with a finished review (ok or unparsed): what a re-run skips."""
        query = select(Judgment.item_id, Judgment.order_shown).where(
            Judgment.run_id == run_id, Judgment.status != "error"
        )
        with self.db.session() as session:
            return {(item, order) for item, order in session.execute(query)}

    def rows(self, run_id: int) -> list[JudgmentRow]:
        names = [f for f in JudgmentRow.__dataclass_fields__]
        columns = [getattr(Judgment, name) for name in names]
        query = select(*columns).where(Judgment.run_id == run_id).order_by(Judgment.position, Judgment.order_shown)
        with self.db.session() as session:
            return [JudgmentRow(*row) for row in session.execute(query)]

    def counts(self) -> dict[int, int]:
        """Judgments stored per run (finished or not)."""
        query = select(Judgment.run_id, func.count()).group_by(Judgment.run_id)
        with self.db.session() as session:
            return {run_id: int(n) for run_id, n in session.execute(query)}

    def version(self) -> tuple[int, str]:
        """Changes whenever a judgment is saved: the studio's cached tallies key on it."""
        with self.db.session() as session:
            count, latest = session.execute(select(func.count(), func.max(Judgment.created_at))).one()
        return int(count or 0), str(latest or "")


def _info(run: JudgeRun) -> RunInfo:
    return RunInfo(
        run.id,
        run.key,
        run.name,
        run.judge,
        run.judge_model,
        run.judge_version,
        run.model_a,
        run.model_b,
        run.testset,
        run.source,
        run.n_items,
        dict(run.params or {}),
        run.job_id,
        run.created_by,
        run.created_at,
    )
