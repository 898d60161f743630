"""Jobs and their log: rows claimed under a lease (a fencing token), slots per resource, queue positions.

Every write a worker makes names its token (``... WHERE id = ? AND lease = ?``): once another worker has
claimed the job, or someone cancelled or resumed it, the old worker's writes change nothing and tell it so.
Claiming is one conditional UPDATE (serialised by SQLite's write lock; on PostgreSQL by an advisory
transaction lock), so two processes never both take the last slot of a resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, exists, func, insert, literal, or_, select, text, update
from sqlalchemy.orm import aliased

from curation.store.db import Database
from curation.store.schema import Job, JobEvent, utcnow

FINISHED = ("done", "failed", "cancelled")
# One lock for every claim on PostgreSQL; claims are rare and short.
_CLAIM_LOCK = 4242002

ClaimOutcome = Literal["claimed", "waiting", "gone"]


@dataclass(frozen=True)
class Staleness:
    """When a job's worker counts as gone: a running job stops beating, a launched one never claims."""

    stale_after_s: float
    claim_timeout_s: float

    def running_cutoff(self) -> datetime:
        return utcnow() - timedelta(seconds=self.stale_after_s)

    def queued_cutoff(self) -> datetime:
        return utcnow() - timedelta(seconds=self.claim_timeout_s)


@dataclass(frozen=True)
class JobInfo:
    id: int
    kind: str
    title: str
    status: str
    params: dict[str, Any]
    result: dict[str, Any]
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    pid: int | None
    attempts: int
    done: int
    total: int
    message: str
    error: str | None
    cancel_requested: bool
    stale: bool
    dataset_id: int | None = None
    subject: str | None = None
    resource: str | None = None
    # 1 = next to start, for a queued job waiting for a slot of its resource; None otherwise.
    queue_position: int | None = None

    @property
    def state(self) -> str:
        """What a person should read: ``running`` becomes ``stale`` when its worker stopped beating."""
        return "stale" if self.stale else self.status

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True)
class Beat:
    held: bool  # False: this worker no longer owns the job
    cancel_requested: bool


class Jobs:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- rows

    def add(
        self,
        kind: str,
        params: dict[str, Any],
        title: str,
        created_by: str,
        resource: str | None = None,
        dataset_id: int | None = None,
        subject: str | None = None,
    ) -> int:
        with self.db.session() as session:
            job = Job(
                kind=kind,
                title=title,
                params=params,
                created_by=created_by,
                result={},
                message="queued",
                resource=resource,
                dataset_id=dataset_id,
                subject=subject,
            )
            session.add(job)
            session.flush()
            return job.id

    def set_params(self, job_id: int, params: dict[str, Any]) -> None:
        """Replace a job's parameters (before it runs: e.g. an output folder named after the job id)."""
        with self.db.session() as session:
            session.execute(update(Job).where(Job.id == job_id).values(params=params))

    def get(self, job_id: int, staleness: Staleness) -> JobInfo | None:
        found = self._select(staleness, Job.id == job_id, limit=1)
        return found[0] if found else None

    def list(
        self,
        staleness: Staleness,
        kinds: tuple[str, ...] = (),
        dataset_id: int | None = None,
        subject: str | None = None,
        active: bool = False,
        limit: int = 100,
    ) -> list[JobInfo]:
        """Newest first, filtered in SQL."""
        conditions: list[ColumnElement[bool]] = []
        if kinds:
            conditions.append(Job.kind.in_(kinds))
        if dataset_id is not None:
            conditions.append(Job.dataset_id == dataset_id)
        if subject is not None:
            conditions.append(Job.subject == subject)
        if active:
            conditions.append(Job.status.in_(("queued", "running")))
        return self._select(staleness, *conditions, limit=limit)

    def _select(self, staleness: Staleness, *conditions: ColumnElement[bool], limit: int) -> list[JobInfo]:
        position = _queue_position(staleness).label("queue_position")
        query = select(Job, position).where(*conditions).order_by(Job.id.desc()).limit(limit)
        with self.db.session() as session:
            return [_info(job, place, staleness) for job, place in session.execute(query)]

    def events(self, job_id: int, after: int = 0, limit: int = 500) -> list[tuple[int, datetime, str, str]]:
        query = (
            select(JobEvent.id, JobEvent.created_at, JobEvent.level, JobEvent.message)
            .where(JobEvent.job_id == job_id, JobEvent.id > after)
            .order_by(JobEvent.id)
            .limit(limit)
        )
        with self.db.session() as session:
            return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]

    def event(self, job_id: int, message: str, level: str = "info", lease: str | None = None) -> bool:
        """Append a log line; with ``lease``, only while that worker still owns the job."""
        with self.db.session() as session:
            if lease is None:
                session.add(JobEvent(job_id=job_id, message=message, level=level))
                return True
            owned = select(literal(job_id), literal(utcnow(), JobEvent.created_at.type), literal(level), literal(message))
            owned = owned.where(exists().where(Job.id == job_id, Job.lease == lease))
            # RETURNING, not rowcount: psycopg reports no row count for INSERT ... SELECT.
            inserted = session.execute(
                insert(JobEvent).from_select(["job_id", "created_at", "level", "message"], owned).returning(JobEvent.id)
            )
            return inserted.first() is not None

    # ---- the launcher and people

    def mark_launching(self, job_id: int) -> None:
        """A launched job beats once now: if its worker dies before claiming, it turns stale too."""
        with self.db.session() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "queued")
                .values(heartbeat_at=utcnow(), message="launching worker")
            )

    def cancel(self, job_id: int, staleness: Staleness) -> str:
        """``cancelled`` (queued or stale: at once, fencing any worker) or ``requested`` or ``finished``."""
        with self.db.session() as session:
            at_once = session.execute(
                update(Job)
                .where(Job.id == job_id, _idle_or_stale(staleness))
                .values(status="cancelled", finished_at=utcnow(), message="cancelled", lease=None)
            )
            if at_once.rowcount == 1:
                return "cancelled"
            asked = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "running")
                .values(cancel_requested=True, message="cancelling…")
            )
            return "requested" if asked.rowcount == 1 else "finished"

    def requeue(self, job_id: int, staleness: Staleness) -> bool:
        """Back in line (a failed, cancelled or stale job); the old worker, if alive, loses its lease."""
        resumable = or_(Job.status.in_(("failed", "cancelled")), _idle_or_stale(staleness, only_stale=True))
        with self.db.session() as session:
            changed = session.execute(
                update(Job)
                .where(Job.id == job_id, resumable)
                .values(
                    status="queued",
                    lease=None,
                    cancel_requested=False,
                    error=None,
                    finished_at=None,
                    heartbeat_at=None,
                    message="resumed",
                )
            )
            return changed.rowcount == 1

    # ---- the worker

    def claim(
        self, job_id: int, lease: str, pid: int, host: str, slots: int | None, staleness: Staleness
    ) -> ClaimOutcome:
        """Take the job under ``lease`` if it is runnable and its resource has a free slot (FIFO by id)."""
        runnable = or_(Job.status == "queued", _stale_running(staleness))
        with self.db.session() as session:
            if self.db.dialect == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
            now = utcnow()
            claimed = session.execute(
                update(Job)
                .where(Job.id == job_id, runnable, _slot_free(job_id, slots, staleness))
                .values(
                    status="running",
                    lease=lease,
                    pid=pid,
                    host=host,
                    heartbeat_at=now,
                    started_at=now,
                    attempts=Job.attempts + 1,
                    message="starting",
                    cancel_requested=False,
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount == 1:
                return "claimed"
            still = session.scalar(select(func.count()).select_from(Job).where(Job.id == job_id, runnable))
            return "waiting" if still else "gone"

    def wait_in_line(self, job_id: int, message: str) -> bool:
        """A worker waiting for a slot beats the queued row (so it is not seen as dead) and says why."""
        with self.db.session() as session:
            changed = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "queued", Job.lease.is_(None))
                .values(heartbeat_at=utcnow(), message=message)
            )
            return changed.rowcount == 1

    def beat(self, job_id: int, lease: str) -> Beat:
        # One statement, so the transaction (and the row or SQLite write lock it takes) is as short as it gets.
        with self.db.session() as session:
            requested = session.execute(
                _owned(job_id, lease).values(heartbeat_at=utcnow()).returning(Job.cancel_requested)
            ).scalar_one_or_none()
            return Beat(held=requested is not None, cancel_requested=bool(requested))

    def holds(self, job_id: int, lease: str) -> bool:
        with self.db.session() as session:
            found = session.scalar(select(func.count()).select_from(Job).where(Job.id == job_id, Job.lease == lease))
            return bool(found)

    def progress(self, job_id: int, lease: str, done: int, total: int, message: str) -> bool:
        with self.db.session() as session:
            changed = session.execute(
                _owned(job_id, lease).values(progress_done=done, progress_total=total, message=message)
            )
            return changed.rowcount == 1

    def finish(
        self,
        job_id: int,
        lease: str,
        status: str,
        message: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "message": message, "error": error}
        if result is not None:
            values["result"] = result
        with self.db.session() as session:
            changed = session.execute(_owned(job_id, lease).values(lease=None, **values))
            return changed.rowcount == 1


def _owned(job_id: int, lease: str):  # type: ignore[no-untyped-def]
    return update(Job).where(Job.id == job_id, Job.lease == lease, Job.status == "running")


def _stale_running(staleness: Staleness) -> ColumnElement[bool]:
    return and_(Job.status == "running", Job.heartbeat_at < staleness.running_cutoff())


def _idle_or_stale(staleness: Staleness, only_stale: bool = False) -> ColumnElement[bool]:
    """Queued (or, with only_stale, queued with a worker that never claimed) or running without a beat."""
    queued_stale = and_(Job.status == "queued", Job.heartbeat_at < staleness.queued_cutoff())
    return or_(queued_stale if only_stale else Job.status == "queued", _stale_running(staleness))


def _slot_free(job_id: int, slots: int | None, staleness: Staleness) -> ColumnElement[bool]:
    """True when the job's resource has a free slot and no earlier live job waits for it.

    A running job holds its slot even when stale: a paused worker may still hold the GPU; cancelling or
    resuming the stale job frees it. A queued job whose worker never beat (never launched) does not block.
    """
    if slots is None:
        return literal(True)
    other = aliased(Job)  # the rows compared with the one being claimed (``Job``, id = job_id)
    running = (
        select(func.count())
        .select_from(other)
        .where(other.resource == Job.resource, other.status == "running", other.id != job_id)
        .scalar_subquery()
    )
    ahead = exists().where(
        other.resource == Job.resource,
        other.status == "queued",
        other.id < job_id,
        other.heartbeat_at >= staleness.queued_cutoff(),
    )
    return or_(Job.resource.is_(None), and_(running < slots, ~ahead))


def _queue_position(staleness: Staleness):  # type: ignore[no-untyped-def]
    """1 + the live queued jobs ahead of this one for the same resource (a correlated subquery)."""
    other = aliased(Job)
    return (
        select(func.count() + 1)
        .select_from(other)
        .where(
            other.resource == Job.resource,
            other.status == "queued",
            other.id < Job.id,
            other.heartbeat_at >= staleness.queued_cutoff(),
        )
        .correlate(Job)
        .scalar_subquery()
    )


def _info(job: Job, place: int | None, staleness: Staleness) -> JobInfo:
    stale = False
    if job.status in ("running", "queued") and job.heartbeat_at is not None:
        limit = staleness.stale_after_s if job.status == "running" else staleness.claim_timeout_s
        stale = utcnow() - job.heartbeat_at > timedelta(seconds=limit)
    waiting = job.status == "queued" and job.resource is not None
    return JobInfo(
        id=job.id,
        kind=job.kind,
        title=job.title,
        status=job.status,
        params=dict(job.params or {}),
        result=dict(job.result or {}),
        created_by=job.created_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        heartbeat_at=job.heartbeat_at,
        pid=job.pid,
        attempts=job.attempts,
        done=job.progress_done,
        total=job.progress_total,
        message=job.message,
        error=job.error,
        cancel_requested=job.cancel_requested,
        stale=stale,
        dataset_id=job.dataset_id,
        subject=job.subject,
        resource=job.resource,
        queue_position=int(place) if waiting and place is not None else None,
    )
