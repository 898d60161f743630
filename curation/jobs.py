"""One runner for all long work (rating, embedding, mapping, training, judging).

A job is a row in the store. ``launch`` starts ``python -m curation jobs run ID`` as a detached
process; that worker claims the row, beats a heartbeat, reports progress and a log into the store, and
calls the handler registered for the job's kind. Because every fact lives in the store, a page reload
or a studio restart shows the job where it is; a worker that died is seen by its stale heartbeat and
``resume`` starts a new one, which skips the work already stored (handlers are written to be
re-runnable).
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update

from curation.config import REPO_DIR, Settings
from curation.store import Store, utcnow
from curation.store.schema import Job, JobEvent

# Job kind -> "module:function". Imported only in the worker, so the studio never loads torch for it.
HANDLERS: dict[str, str] = {
    "sleep": "curation.jobs:sleep_job",
    "embed": "curation.embed:embed_job",
    "map": "curation.cluster:map_job",
    "rate": "curation.raters.run:rate_job",
    "flags": "curation.flags:flag_job",
    "train": "training.sft.job:train_job",
    "judge": "curation.judges.run:judge_job",
    "generate": "curation.answers.run:generate_job",
}
FINISHED = ("done", "failed", "cancelled")


class JobCancelled(Exception):
    """Raised inside a handler when someone asked the job to stop."""


class JobError(RuntimeError):
    pass


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

    @property
    def state(self) -> str:
        """What a person should read: ``running`` becomes ``stale`` when its worker stopped beating."""
        return "stale" if self.stale else self.status

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


def register(kind: str, target: str) -> None:
    """Add a job kind (``"module:function"``) — the way later packages (training, judging) plug in."""
    HANDLERS[kind] = target


def submit(store: Store, kind: str, params: dict[str, Any], title: str = "", created_by: str = "") -> int:
    if kind not in HANDLERS:
        raise JobError(f"unknown job kind '{kind}'; known: {', '.join(sorted(HANDLERS))}")
    with store.db.session() as session:
        job = Job(kind=kind, title=title or kind, params=params, created_by=created_by, result={}, message="queued")
        session.add(job)
        session.flush()
        return job.id


def launch(store: Store, settings: Settings, job_id: int) -> int:
    """Start a detached worker process for the job; returns its pid. Its output goes to a log file."""
    log_dir = settings.workspace / "jobs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["DATABASE_URL"] = store.url
    env["CURATION_WORKSPACE"] = str(settings.workspace.resolve())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_DIR), env.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "curation", *settings_args(settings), "jobs", "run", str(job_id)]
    with store.db.session() as session:
        # A launched job beats once now: if its worker dies before claiming it, it turns stale too.
        session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow(), message="launching worker"))
    with open(log_dir / f"{job_id}.log", "ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO_DIR, start_new_session=True
        )
    # Reap the worker when it exits so a long-lived studio process collects no zombies.
    threading.Thread(target=process.wait, daemon=True, name=f"reap-job-{job_id}").start()
    return process.pid


def settings_args(settings: Settings) -> list[str]:
    """CLI arguments that make a child process see the same configuration."""
    args = []
    if settings.config_file:
        args += ["--config", settings.config_file]
    for override in settings.overrides:
        # The database URL may hold a password: it travels in the environment, not on the command line.
        if not override.startswith("database_url="):
            args += ["--set", override]
    return args


def start(store: Store, settings: Settings, kind: str, params: dict[str, Any], title: str = "", created_by: str = "") -> int:
    """Submit and launch in one step: what the studio and the CLI usually want."""
    job_id = submit(store, kind, params, title, created_by)
    launch(store, settings, job_id)
    return job_id


def run(store: Store, settings: Settings, job_id: int) -> JobInfo:
    """Claim the job and run its handler in this process (the worker's body; tests call it directly)."""
    if not _claim(store, settings, job_id):
        info = get(store, settings, job_id)
        raise JobError(f"job {job_id} is {info.state}; only a queued or stale job can be run")
    context = JobContext(store, settings, job_id)
    beat = _Heartbeat(context, settings.jobs.heartbeat_s)
    beat.start()
    try:
        handler = _handler(get(store, settings, job_id).kind)
        result = handler(context) or {}
        context.flush_progress()
        _finish(store, job_id, "done", result=result, message=context.last_message or "done")
    except JobCancelled:
        context.flush_progress()
        _finish(store, job_id, "cancelled", message="cancelled on request")
    except BaseException as err:  # a job must end in a known state whatever happened
        context.log(traceback.format_exc(), level="error")
        _finish(store, job_id, "failed", error=f"{type(err).__name__}: {err}", message="failed")
        if not isinstance(err, Exception):
            raise
    finally:
        beat.stop()
    return get(store, settings, job_id)


def cancel(store: Store, settings: Settings, job_id: int) -> JobInfo:
    """Ask a running job to stop; a queued or stale one is cancelled at once."""
    info = get(store, settings, job_id)
    if info.status in FINISHED:
        return info
    with store.db.session() as session:
        if info.status == "queued" or info.stale:
            session.execute(
                update(Job).where(Job.id == job_id).values(status="cancelled", finished_at=utcnow(), message="cancelled")
            )
        else:
            session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True, message="cancelling…"))
    _event(store, job_id, "cancel requested", "warning")
    return get(store, settings, job_id)


def resume(store: Store, settings: Settings, job_id: int, launch_worker: bool = True) -> JobInfo:
    """Re-queue a failed, cancelled or stale job and start a worker; finished work is skipped."""
    info = get(store, settings, job_id)
    if info.status == "done" or (info.status in ("running", "queued") and not info.stale):
        raise JobError(f"job {job_id} is {info.state}; only failed, cancelled or stale jobs can be resumed")
    with store.db.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status="queued", cancel_requested=False, error=None, finished_at=None, heartbeat_at=None, message="resumed")
        )
    _event(store, job_id, f"resumed (was {info.state})")
    if launch_worker:
        launch(store, settings, job_id)
    return get(store, settings, job_id)


def get(store: Store, settings: Settings, job_id: int) -> JobInfo:
    with store.db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobError(f"no job {job_id}")
        return _info(job, settings)


def all_jobs(store: Store, settings: Settings, kind: str | None = None, limit: int = 100) -> list[JobInfo]:
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if kind:
        query = query.where(Job.kind == kind)
    with store.db.session() as session:
        return [_info(job, settings) for job in session.scalars(query)]


def events(store: Store, job_id: int, after: int = 0, limit: int = 500) -> list[tuple[int, datetime, str, str]]:
    query = (
        select(JobEvent.id, JobEvent.created_at, JobEvent.level, JobEvent.message)
        .where(JobEvent.job_id == job_id, JobEvent.id > after)
        .order_by(JobEvent.id)
        .limit(limit)
    )
    with store.db.session() as session:
        return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def wait(store: Store, settings: Settings, job_id: int, timeout_s: float = 600.0) -> JobInfo:
    """Block until the job finishes (or its worker dies); for the CLI's ``--wait`` and for tests."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = get(store, settings, job_id)
        if info.status in FINISHED or info.stale:
            return info
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {info.state} after {timeout_s:.0f} s")
        time.sleep(settings.jobs.poll_s)


class JobContext:
    """What a handler sees: its parameters, the store and settings, and progress/log/cancel hooks."""

    def __init__(self, store: Store, settings: Settings, job_id: int) -> None:
        self.store = store
        self.settings = settings
        self.job_id = job_id
        self.params: dict[str, Any] = get(store, settings, job_id).params
        self.last_message = ""
        self._cancel_requested = False
        self._pending: tuple[int, int, str] | None = None
        self._last_write = 0.0
        self._lock = threading.Lock()

    def progress(self, done: int, total: int, message: str | None = None) -> None:
        """Report progress; written at most every half second so tight loops stay cheap."""
        with self._lock:
            if message:
                self.last_message = message
            self._pending = (done, total, self.last_message)
            due = time.monotonic() - self._last_write > 0.5 or done >= total
        if due:
            self.flush_progress()
        self.check_cancelled()

    def flush_progress(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
            self._last_write = time.monotonic()
        if pending is not None:
            done, total, message = pending
            with self.store.db.session() as session:
                session.execute(
                    update(Job).where(Job.id == self.job_id).values(progress_done=done, progress_total=total, message=message)
                )

    def log(self, message: str, level: str = "info") -> None:
        _event(self.store, self.job_id, message, level)

    def cancelled(self) -> bool:
        return self._cancel_requested

    def check_cancelled(self) -> None:
        if self._cancel_requested:
            raise JobCancelled()


class _Heartbeat(threading.Thread):
    """Beats while the job runs and picks up cancel requests, so handlers never poll the store."""

    def __init__(self, context: JobContext, interval_s: float) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{context.job_id}")
        self.context = context
        self.interval_s = interval_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            try:
                self.beat()
            except Exception:  # a missed beat is not fatal; the next one retries
                pass

    def beat(self) -> None:
        with self.context.store.db.session() as session:
            session.execute(update(Job).where(Job.id == self.context.job_id).values(heartbeat_at=utcnow()))
            requested = session.scalar(select(Job.cancel_requested).where(Job.id == self.context.job_id))
        self.context._cancel_requested = bool(requested)

    def stop(self) -> None:
        self._stop_event.set()


def _claim(store: Store, settings: Settings, job_id: int) -> bool:
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.jobs.stale_after_s)
    with store.db.session() as session:
        job = session.get(Job, job_id)
        attempts = (job.attempts if job else 0) + 1
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id)
            .where(or_(Job.status == "queued", (Job.status == "running") & (Job.heartbeat_at < cutoff)))
            .values(
                status="running",
                pid=os.getpid(),
                host=socket.gethostname(),
                heartbeat_at=now,
                started_at=now,
                attempts=attempts,
                message="starting",
                cancel_requested=False,
            )
        )
        ok = claimed.rowcount == 1
    if ok:
        _event(store, job_id, f"worker {os.getpid()} on {socket.gethostname()} started (attempt {attempts})")
    return ok


def _finish(store: Store, job_id: int, status: str, result: dict[str, Any] | None = None, error: str | None = None, message: str = "") -> None:
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "message": message, "error": error}
    if result is not None:
        values["result"] = result
    with store.db.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(**values))
    _event(store, job_id, f"{status}" + (f": {error}" if error else ""), "error" if error else "info")


def _event(store: Store, job_id: int, message: str, level: str = "info") -> None:
    with store.db.session() as session:
        session.add(JobEvent(job_id=job_id, message=message, level=level))


def _handler(kind: str) -> Callable[[JobContext], dict[str, Any] | None]:
    target = HANDLERS.get(kind)
    if target is None:
        raise JobError(f"unknown job kind '{kind}'")
    module_name, _, function_name = target.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def _info(job: Job, settings: Settings) -> JobInfo:
    stale = False
    if job.status in ("running", "queued") and job.heartbeat_at is not None:
        limit = settings.jobs.stale_after_s if job.status == "running" else settings.jobs.claim_timeout_s
        stale = utcnow() - job.heartbeat_at > timedelta(seconds=limit)
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
    )


def sleep_job(context: JobContext) -> dict[str, Any]:
    """A job that only counts: exercises the runner (progress, cancel, kill, resume) without models."""
    steps = int(context.params.get("steps", 10))
    delay = float(context.params.get("delay_s", 0.1))
    state_file = context.params.get("state_file")
    start_at = int(Path(state_file).read_text()) if state_file and Path(state_file).exists() else 0
    for step in range(start_at, steps):
        time.sleep(delay)
        if state_file:
            Path(state_file).write_text(str(step + 1))
        context.progress(step + 1, steps, f"step {step + 1}/{steps}")
    return {"steps": steps, "resumed_from": start_at}
