"""One runner for all long work (rating, embedding, mapping, training, judging).

A job is a row in the store. ``launch`` starts ``python -m curation jobs run ID`` as a detached
process; that worker waits for a slot of the job's resource if it has one, claims the row under a new
lease (a fencing token), beats a heartbeat, reports progress and a log into the store, and calls the
handler of the job's kind. Because every fact lives in the store, a page reload or a studio restart shows
the job where it is; a worker that died is seen by its stale heartbeat and ``resume`` starts a new one,
which skips the work already stored (handlers are re-runnable). A worker that lost its lease (the job was
resumed, cancelled or claimed while it was paused) stops at once and writes nothing more.

Job kinds are found without editing this module: the entry points ``curation.jobs`` (``kind =
"module:function"``, declared in pyproject.toml), the same table of the checkout's own pyproject.toml
(a checkout that is not pip-installed), and the setting ``jobs.kinds`` for local and test kinds.
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from curation.config import REPO_DIR, Settings
from curation.redact import redact
from curation.store import Store
from curation.store.jobs import FINISHED, JobInfo, Staleness
from curation.studio_auth import Person, require

__all__ = [
    "FINISHED",
    "JobCancelled",
    "JobContext",
    "JobError",
    "JobInfo",
    "LeaseLost",
    "all_jobs",
    "cancel",
    "dataset_id_named",
    "events",
    "get",
    "job_kinds",
    "launch",
    "resume",
    "run",
    "start",
    "submit",
    "wait",
]

ENTRY_POINT_GROUP = "curation.jobs"
# A worker that lost its lease exits with this code (EX_TEMPFAIL) or by SIGTERM: it was replaced, not failed.
LEASE_LOST_EXIT = 75

Handler = Callable[["JobContext"], "dict[str, Any] | None"]


class JobError(RuntimeError):
    pass


class JobCancelled(Exception):
    """Raised inside a handler when someone asked the job to stop."""


class LeaseLost(JobError):
    """This worker no longer owns the job (it was resumed, cancelled or claimed by another worker)."""


# ----------------------------------------------------------------------------------------------------
# Kinds, resources and who may launch what


def job_kinds(settings: Settings) -> dict[str, str]:
    """Kind -> "module:function": installed entry points < the checkout's pyproject.toml < ``jobs.kinds``."""
    found = {point.name: point.value for point in entry_points(group=ENTRY_POINT_GROUP)}
    found.update(_checkout_kinds(REPO_DIR / "pyproject.toml"))
    found.update(settings.jobs.kinds)
    return found


@functools.cache
def _checkout_kinds(pyproject: Path) -> dict[str, str]:
    # Several worktrees may share one venv whose installed metadata names another checkout's table.
    if not pyproject.is_file():
        return {}
    with open(pyproject, "rb") as handle:
        data = tomllib.load(handle)
    return dict(data.get("project", {}).get("entry-points", {}).get(ENTRY_POINT_GROUP, {}))


def _handler(settings: Settings, kind: str) -> Handler:
    target = job_kinds(settings).get(kind)
    if target is None:
        raise JobError(f"unknown job kind '{kind}'")
    module_name, _, function_name = target.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def _resource(settings: Settings, kind: str) -> str | None:
    return settings.jobs.resources.get(kind)


def _slots(settings: Settings, resource: str | None) -> int | None:
    return None if resource is None else int(settings.jobs.slots.get(resource, 1))


def _require_launch(by: Person | None, settings: Settings, kind: str, params: dict[str, Any], doing: str) -> Person:
    """``run_job`` always; plus the kind's action (config) or the job's own (params); plus paid work."""
    person = require(by, "run_job", doing)
    for action in (settings.jobs.actions.get(kind), params.get("action")):
        if action:
            require(by, str(action), f"{doing} ({kind})")
    if params.get("paid"):
        require(by, "run_paid_job", f"{doing}: it spends money")
    return person


def _staleness(settings: Settings) -> Staleness:
    return Staleness(settings.jobs.stale_after_s, settings.jobs.claim_timeout_s)


# ----------------------------------------------------------------------------------------------------
# What people (pages, the CLI) call


def submit(
    store: Store,
    settings: Settings,
    kind: str,
    params: dict[str, Any],
    title: str = "",
    *,
    by: Person | None,
    dataset_id: int | None = None,
    subject: str | None = None,
) -> int:
    """Queue a job as ``by`` (checked with ``require``); ``dataset_id``/``subject`` say what it is about."""
    known = job_kinds(settings)
    if kind not in known:
        raise JobError(f"unknown job kind '{kind}'; known: {', '.join(sorted(known))}")
    person = _require_launch(by, settings, kind, params, "launch jobs")
    resource = _resource(settings, kind)
    return store.jobs.add(kind, params, title or kind, person.name, resource, dataset_id, subject)


def dataset_id_named(store: Store, name: Any) -> int | None:
    """The id of the dataset a job's params name, for the ``dataset_id`` column; None if there is none."""
    from curation.store import NotFound

    if not name:
        return None
    try:
        return store.datasets.get(str(name)).id
    except NotFound:
        return None  # the handler says so in one sentence when it runs


def launch(store: Store, settings: Settings, job_id: int) -> int:
    """Start a detached worker process for the job; returns its pid. Its output goes to a log file."""
    log_dir = settings.workspace / "jobs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["DATABASE_URL"] = store.url
    env["CURATION_WORKSPACE"] = str(settings.workspace.resolve())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_DIR), env.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "curation", *settings_args(settings), "jobs", "run", str(job_id)]
    store.jobs.mark_launching(job_id)
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


def start(
    store: Store,
    settings: Settings,
    kind: str,
    params: dict[str, Any],
    title: str = "",
    *,
    by: Person | None,
    dataset_id: int | None = None,
    subject: str | None = None,
) -> int:
    """Submit and launch in one step: what the studio and the CLI usually want."""
    job_id = submit(store, settings, kind, params, title, by=by, dataset_id=dataset_id, subject=subject)
    launch(store, settings, job_id)
    return job_id


def cancel(store: Store, settings: Settings, job_id: int, *, by: Person | None) -> JobInfo:
    """Ask a running job to stop; a queued or stale one is cancelled at once (its worker, if it comes
    back, has lost its lease and stops). Cancelling someone else's job needs ``cancel_any_job``."""
    info = get(store, settings, job_id)
    if by is not None and by.name == info.created_by:
        person = require(by, "run_job", "cancel jobs")
    else:
        person = require(by, "cancel_any_job", f"cancel {info.created_by or 'someone else'}'s job")
    outcome = store.jobs.cancel(job_id, _staleness(settings))
    if outcome != "finished":
        _event(store, settings, job_id, f"cancel requested by {person.name}", "warning")
    return get(store, settings, job_id)


def resume(store: Store, settings: Settings, job_id: int, *, by: Person | None, launch_worker: bool = True) -> JobInfo:
    """Re-queue a failed, cancelled or stale job and start a worker; finished work is skipped.

    Resuming launches (and may spend) again, so it needs what launching needs.
    """
    info = get(store, settings, job_id)
    person = _require_launch(by, settings, info.kind, info.params, "resume jobs")
    if not store.jobs.requeue(job_id, _staleness(settings)):
        raise JobError(f"job {job_id} is {info.state}; only failed, cancelled or stale jobs can be resumed")
    _event(store, settings, job_id, f"resumed (was {info.state}) by {person.name}")
    if launch_worker:
        launch(store, settings, job_id)
    return get(store, settings, job_id)


def get(store: Store, settings: Settings, job_id: int) -> JobInfo:
    info = store.jobs.get(job_id, _staleness(settings))
    if info is None:
        raise JobError(f"no job {job_id}")
    return info


def all_jobs(
    store: Store,
    settings: Settings,
    kind: str | tuple[str, ...] | None = None,
    dataset_id: int | None = None,
    subject: str | None = None,
    active: bool = False,
    limit: int = 100,
) -> list[JobInfo]:
    """Newest first; ``kind`` (one or several), ``dataset_id``, ``subject`` and ``active`` filter in SQL."""
    kinds = (kind,) if isinstance(kind, str) else tuple(kind or ())
    return store.jobs.list(_staleness(settings), kinds, dataset_id, subject, active, limit)


def events(store: Store, job_id: int, after: int = 0, limit: int = 500) -> list[tuple[int, datetime, str, str]]:
    return store.jobs.events(job_id, after, limit)


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


def waiting_message(resource: str, position: int) -> str:
    return f"waiting for a {resource} slot: {place_in_line(position)}"


def place_in_line(position: int) -> str:
    return f"{_ordinal(position)} in line"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ----------------------------------------------------------------------------------------------------
# The worker


def run(store: Store, settings: Settings, job_id: int, exit_on_lease_loss: bool = False) -> JobInfo:
    """Wait for a slot, claim the job and run its handler in this process (the worker's body; tests call
    it directly). Raises :class:`LeaseLost` if another worker took the job over meanwhile; with
    ``exit_on_lease_loss`` (the detached worker) the process exits at once instead."""
    lease = uuid.uuid4().hex
    if not _claim_when_free(store, settings, job_id, lease):
        return get(store, settings, job_id)
    context = JobContext(store, settings, job_id, lease, exit_on_lease_loss)
    beat = _Heartbeat(context, settings.jobs.heartbeat_s)
    beat.start()
    try:
        ended = _run_handler(context)
    finally:
        beat.stop()
    if not ended:
        raise LeaseLost(
            f"job {job_id}: this worker lost its lease (the job was resumed, cancelled or claimed by another "
            "worker) and stopped without touching it"
        )
    return get(store, settings, job_id)


def _claim_when_free(store: Store, settings: Settings, job_id: int, lease: str) -> bool:
    """True once claimed. Waits in line (beating the queued row) while the resource has no free slot."""
    info = get(store, settings, job_id)
    slots = _slots(settings, info.resource)
    waited = False
    while True:
        outcome = store.jobs.claim(job_id, lease, os.getpid(), socket.gethostname(), slots, _staleness(settings))
        if outcome == "claimed":
            attempt = get(store, settings, job_id).attempts
            started = f"worker {os.getpid()} on {socket.gethostname()} started (attempt {attempt})"
            store.jobs.event(job_id, started, "info", lease=lease)
            return True
        if outcome == "gone":
            if waited:  # cancelled while it waited for its slot
                return False
            raise JobError(f"job {job_id} is {get(store, settings, job_id).state}; only a queued or stale job can be run")
        waited = True
        position = get(store, settings, job_id).queue_position or 1
        store.jobs.wait_in_line(job_id, waiting_message(info.resource or "", position))
        time.sleep(min(settings.jobs.poll_s, settings.jobs.heartbeat_s))


def _run_handler(context: JobContext) -> bool:
    """Run the handler and record how it ended; False when the lease was lost (nothing recorded)."""
    try:
        handler = _handler(context.settings, get(context.store, context.settings, context.job_id).kind)
        result = handler(context) or {}
        context.flush_progress()
        return context.finish("done", result=result, message=context.last_message or "done")
    except LeaseLost:
        return False
    except JobCancelled:
        try:
            context.flush_progress()
        except LeaseLost:
            return False
        return context.finish("cancelled", message="cancelled on request")
    except BaseException as err:  # a job must end in a known state whatever happened
        if context.lease_lost:  # e.g. a handler that wrapped our LeaseLost in its own error
            return False
        context.log(traceback.format_exc(), level="error")
        ended = context.finish("failed", error=f"{type(err).__name__}: {err}", message="failed")
        if not isinstance(err, Exception):
            raise
        return ended


class JobContext:
    """What a handler sees: its parameters, the store and settings, and progress/log/cancel hooks."""

    def __init__(self, store: Store, settings: Settings, job_id: int, lease: str, exit_on_lease_loss: bool = False) -> None:
        self.store = store
        self.settings = settings
        self.job_id = job_id
        info = get(store, settings, job_id)
        self.params: dict[str, Any] = info.params
        self.dataset_id = info.dataset_id
        self.subject = info.subject
        self.last_message = ""
        self.lease_lost = False
        self.ending = False  # set while the final state is written: the lease is then released on purpose
        self._lease = lease
        self._exit_on_lease_loss = exit_on_lease_loss
        self._cancel_requested = False
        self._pending: tuple[int, int, str] | None = None
        self._last_write = 0.0
        self._confirmed_at = time.monotonic()
        self._lock = threading.Lock()

    def progress(self, done: int, total: int, message: str | None = None) -> None:
        """Report progress; written at most every half second so tight loops stay cheap.

        Raises :class:`JobCancelled` when asked to stop and :class:`LeaseLost` when this worker no longer
        owns the job (checked in the store if the last confirmation is older than a heartbeat, e.g. after
        the process was paused).
        """
        with self._lock:
            if message:
                self.last_message = message
            self._pending = (done, total, self.last_message)
            due = time.monotonic() - self._last_write > 0.5 or done >= total
        if due:
            self.flush_progress()
        elif time.monotonic() - self._confirmed_at > self.settings.jobs.heartbeat_s:
            self._confirm(self.store.jobs.holds(self.job_id, self._lease))
        self.check_cancelled()

    def flush_progress(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
            self._last_write = time.monotonic()
        if pending is not None:
            done, total, message = pending
            self._confirm(self.store.jobs.progress(self.job_id, self._lease, done, total, _redact(self.settings, message)))
        self._raise_if_lost()

    def log(self, message: str, level: str = "info") -> None:
        """A line in the job's log (redacted); dropped, and the lease marked lost, if another worker owns it."""
        self._confirm(self.store.jobs.event(self.job_id, _redact(self.settings, message), level, lease=self._lease))

    def finish(self, status: str, message: str, result: dict[str, Any] | None = None, error: str | None = None) -> bool:
        self.ending = True
        ended = self.store.jobs.finish(
            self.job_id, self._lease, status, _redact(self.settings, message), result, _redact(self.settings, error)
        )
        if ended:
            summary = status + (f": {error}" if error else "")
            self.store.jobs.event(self.job_id, _redact(self.settings, summary), "error" if error else "info")
        else:
            self._confirm(False)
        return ended

    def cancelled(self) -> bool:
        return self._cancel_requested

    def check_cancelled(self) -> None:
        self._raise_if_lost()
        if self._cancel_requested:
            raise JobCancelled()

    def _confirm(self, held: bool) -> None:
        if held:
            self._confirmed_at = time.monotonic()
            return
        if not self.lease_lost:
            self.lease_lost = True
            print(f"job {self.job_id}: lease lost (another worker owns the job, or it was cancelled); stopping",
                  file=sys.stderr, flush=True)
        if self._exit_on_lease_loss:
            _stop_this_worker()

    def _raise_if_lost(self) -> None:
        if self.lease_lost:
            raise LeaseLost(f"job {self.job_id}: lease lost")


def _stop_this_worker() -> None:
    """Stop at once: no further call, write or retry may happen on behalf of a job we do not own.

    A detached worker leads its own process group (``launch`` starts it in a new session): the group goes
    too, so a subprocess it runs (a trainer holding the GPU) does not outlive it beside the new owner.
    """
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpgrp(), signal.SIGTERM)
    os._exit(LEASE_LOST_EXIT)


class _Heartbeat(threading.Thread):
    """Beats while the job runs and picks up cancel requests and a lost lease, so handlers never poll."""

    def __init__(self, context: JobContext, interval_s: float) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{context.job_id}")
        self.context = context
        self.interval_s = interval_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            try:
                beat = self.context.store.jobs.beat(self.context.job_id, self.context._lease)
            except Exception as err:  # noqa: BLE001 - a missed beat is not fatal; the next one retries
                print(f"job {self.context.job_id}: heartbeat failed ({type(err).__name__}); retrying", file=sys.stderr)
                continue
            if self.context.ending:
                return  # the job is ending: its lease is released on purpose, the main thread checks it
            self.context._confirm(beat.held)
            self.context._cancel_requested = beat.cancel_requested

    def stop(self) -> None:
        self._stop_event.set()


def _redact(settings: Settings, text: str | None) -> str | None:
    return redact(text, extra_names=[settings.llm.api_key_name])


def _event(store: Store, settings: Settings, job_id: int, message: str, level: str = "info") -> None:
    store.jobs.event(job_id, _redact(settings, message) or "", level)
