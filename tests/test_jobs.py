"""The job runner: state, progress, log and heartbeat in the store; cancel; kill -9, stale, resume; kinds found
without library edits; slots per resource; the lease that fences a paused worker; who may launch what.

Workers are real processes (``python -m curation jobs run ID``) started by ``jobs.launch``. The test-only
kinds live in tests/job_kinds.py and are registered through the setting ``jobs.kinds``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from job_kinds import TEST_KINDS
from llm_fault_server import FaultServer
from sqlalchemy import func, select
from waiting import wait_for

from curation import jobs
from curation.cli import main
from curation.config import ConfigError, Settings, load_settings, set_value
from curation.records import Record
from curation.store import Store
from curation.store.schema import LLMCall, Rating
from curation.studio_auth import Forbidden, Person

TESTS_DIR = Path(__file__).resolve().parent
LEAD = Person("ana", "lead")
ANNOTATOR = Person("ann", "annotator")
OTHER_ANNOTATOR = Person("bob", "annotator")


def configure(settings: Settings, key: str, value: str) -> None:
    """Set a value here and for the workers this test launches (they get the overrides on their command line)."""
    set_value(settings, key, value, origin="test")
    settings.overrides.append(f"{key}={value}")


@pytest.fixture(autouse=True)
def test_kinds(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(settings, "jobs.kinds", json.dumps(TEST_KINDS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])))


def fast_jobs(settings: Settings) -> Settings:
    for key, value in (("jobs.heartbeat_s", "0.2"), ("jobs.stale_after_s", "2"), ("jobs.poll_s", "0.05")):
        configure(settings, key, value)
    return settings


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def messages_of(store: Store, job_id: int) -> list[str]:
    return [message for _, _, _, message in jobs.events(store, job_id)]


# ----------------------------------------------------------------------------------------------------
# Running, failing, cancelling, resuming


def test_a_job_runs_in_process_with_progress_log_and_result(store: Store, settings: Settings) -> None:
    job_id = jobs.submit(store, settings, "sleep", {"steps": 4, "delay_s": 0.01}, title="count to four", by=LEAD)
    assert jobs.get(store, settings, job_id).state == "queued"
    info = jobs.run(store, settings, job_id)
    assert (info.status, info.done, info.total, info.fraction) == ("done", 4, 4, 1.0)
    assert info.result == {"steps": 4, "resumed_from": 0}
    assert (info.message, info.created_by, info.attempts) == ("step 4/4", "ana", 1)
    messages = messages_of(store, job_id)
    assert messages[0].startswith(f"worker {os.getpid()}") and messages[-1] == "done"
    with pytest.raises(jobs.JobError, match="only a queued or stale job can be run"):
        jobs.run(store, settings, job_id)
    with pytest.raises(jobs.JobError, match="only failed, cancelled or stale"):
        jobs.resume(store, settings, job_id, by=LEAD, launch_worker=False)


def test_a_failing_handler_fails_the_job_with_its_error_and_traceback(store: Store, settings: Settings) -> None:
    info = jobs.run(store, settings, jobs.submit(store, settings, "broken", {}, by=LEAD))
    assert (info.status, info.error, info.done) == ("failed", "ValueError: the input is broken", 1)
    logged = [(level, message) for _, _, level, message in jobs.events(store, info.id)]
    assert any(
        level == "error" and "Traceback" in message and "the input is broken" in message for level, message in logged
    )


def test_errors_tracebacks_and_logs_are_redacted(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "test-key-5a1c9e77d0b4"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    configure(settings, "jobs.kinds", json.dumps({**TEST_KINDS, "leaky": "job_kinds:leaky_job"}))
    info = jobs.run(store, settings, jobs.submit(store, settings, "leaky", {}, by=LEAD))
    assert info.status == "failed" and "[REDACTED]" in (info.error or "")
    written = [info.error or "", info.message, *messages_of(store, info.id)]
    assert any("Traceback" in text for text in written)
    assert not any(key in text or "sk-live" + "x" * 20 in text for text in written)


def test_unknown_kinds_are_refused_at_submit(store: Store, settings: Settings) -> None:
    with pytest.raises(jobs.JobError, match="unknown job kind 'nope'; known: .*rate.*sleep"):
        jobs.submit(store, settings, "nope", {}, by=LEAD)


def test_a_queued_job_is_cancelled_at_once(store: Store, settings: Settings) -> None:
    job_id = jobs.submit(store, settings, "sleep", {}, by=LEAD)
    assert jobs.cancel(store, settings, job_id, by=LEAD).state == "cancelled"
    assert jobs.cancel(store, settings, job_id, by=LEAD).state == "cancelled"  # idempotent


def test_a_worker_process_reports_into_the_store_and_stops_when_cancelled(store: Store, settings: Settings) -> None:
    fast_jobs(settings)
    job_id = jobs.start(store, settings, "sleep", {"steps": 400, "delay_s": 0.05}, by=LEAD)
    wait_for(lambda: jobs.get(store, settings, job_id).done >= 3, "progress from the worker")
    running = jobs.get(store, settings, job_id)
    assert running.state == "running" and running.pid != os.getpid() and running.total == 400

    # A page reload or a studio restart is a new connection: it sees the same job, where it is.
    reopened = Store(store.url)
    try:
        seen = jobs.get(reopened, settings, job_id)
        assert seen.state == "running" and seen.done >= 3 and seen.heartbeat_at is not None
        first_beat = seen.heartbeat_at
        wait_for(lambda: jobs.get(reopened, settings, job_id).heartbeat_at > first_beat, "a later heartbeat")
    finally:
        reopened.close()

    assert jobs.cancel(store, settings, job_id, by=LEAD).cancel_requested
    info = jobs.wait(store, settings, job_id, timeout_s=60)
    assert info.status == "cancelled" and info.done < 400
    assert any("cancel requested by ana" in message for message in messages_of(store, job_id))
    assert (Path(settings.workspace) / "jobs" / f"{job_id}.log").exists()


def test_a_killed_worker_is_seen_stale_and_the_resumed_job_skips_finished_work(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    fast_jobs(settings)
    state_file = tmp_path / "state.txt"  # written atomically by the job (temp file + rename)
    job_id = jobs.start(store, settings, "sleep", {"steps": 60, "delay_s": 0.05, "state_file": str(state_file)}, by=LEAD)
    wait_for(lambda: jobs.get(store, settings, job_id).done >= 10, "ten steps")
    os.kill(jobs.get(store, settings, job_id).pid or 0, signal.SIGKILL)
    steps_before_kill = int(state_file.read_text())

    assert jobs.get(store, settings, job_id).status == "running"  # nobody told the store...
    wait_for(lambda: jobs.get(store, settings, job_id).state == "stale", "the heartbeat to go stale")
    assert jobs.wait(store, settings, job_id, timeout_s=5).stale  # waiting ends on a dead worker too

    resumed = jobs.resume(store, settings, job_id, by=LEAD)
    assert resumed.state == "queued"
    info = jobs.wait(store, settings, job_id, timeout_s=120)
    assert (info.status, info.attempts, info.done) == ("done", 2, 60)
    assert info.result["resumed_from"] >= steps_before_kill >= 10
    assert any(message.startswith("resumed (was stale)") for message in messages_of(store, job_id))


def test_a_stale_job_can_be_cancelled_and_a_cancelled_one_resumed(store: Store, settings: Settings) -> None:
    fast_jobs(settings)
    job_id = jobs.start(store, settings, "sleep", {"steps": 400, "delay_s": 0.05}, by=LEAD)
    wait_for(lambda: jobs.get(store, settings, job_id).done >= 1, "the worker to start")
    os.kill(jobs.get(store, settings, job_id).pid or 0, signal.SIGKILL)
    wait_for(lambda: jobs.get(store, settings, job_id).state == "stale", "the heartbeat to go stale")
    assert jobs.cancel(store, settings, job_id, by=LEAD).state == "cancelled"
    requeued = jobs.resume(store, settings, job_id, by=LEAD, launch_worker=False)
    assert requeued.state == "queued" and not requeued.cancel_requested


def test_a_worker_that_dies_before_claiming_leaves_a_stale_resumable_job(store: Store, settings: Settings) -> None:
    fast_jobs(settings)
    job_id = jobs.submit(store, settings, "sleep", {"steps": 2, "delay_s": 0.01}, by=LEAD)
    assert not jobs.get(store, settings, job_id).stale  # submitted, never launched: just queued
    broken = Settings(**{**settings.__dict__, "overrides": [*settings.overrides, "no.such.setting=1"]})
    settings.jobs.claim_timeout_s = 2.0
    jobs.launch(store, broken, job_id)  # the worker exits on its bad configuration before claiming
    wait_for(lambda: jobs.get(store, settings, job_id).state == "stale", "the unclaimed job to go stale")
    assert jobs.get(store, settings, job_id).status == "queued"
    jobs.resume(store, settings, job_id, by=LEAD, launch_worker=False)
    settings.jobs.claim_timeout_s = 120.0  # the new worker may take a while to start on a busy machine
    jobs.launch(store, settings, job_id)
    assert jobs.wait(store, settings, job_id, timeout_s=120).status == "done"


def test_jobs_cli_lists_shows_cancels_and_resumes(
    sqlite_store: Store, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--workspace", str(settings.workspace), "--set", f"jobs.kinds={json.dumps(TEST_KINDS)}"]
    done_id = jobs.submit(sqlite_store, settings, "sleep", {"steps": 2, "delay_s": 0.0}, title="two steps", by=LEAD)
    jobs.run(sqlite_store, settings, done_id)
    queued_id = jobs.submit(sqlite_store, settings, "sleep", {}, title="waiting", by=LEAD)

    assert main([*base, "jobs", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"{done_id}   sleep  done" in listing and "2/2" in listing and "waiting" in listing

    assert main([*base, "jobs", "show", str(done_id)]) == 0
    shown = capsys.readouterr().out
    assert (
        "state: done" in shown
        and "result: {'steps': 2, 'resumed_from': 0}" in shown
        and "step 2/2" not in shown.split("message:")[0]
    )

    assert main([*base, "jobs", "cancel", str(queued_id)]) == 0
    assert f"job {queued_id}: cancelled" in capsys.readouterr().out

    assert main([*base, "jobs", "resume", str(done_id)]) == 1
    assert "only failed, cancelled or stale jobs can be resumed" in capsys.readouterr().err
    assert main([*base, "jobs", "show", "999"]) == 1
    assert "no job 999" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------
# Kinds found without library edits


def test_builtin_kinds_come_from_the_checkouts_pyproject_and_test_kinds_from_config(settings: Settings) -> None:
    kinds = jobs.job_kinds(settings)
    assert kinds["rate"] == "curation.raters.run:rate_job" and kinds["embed"] == "curation.embed:embed_job"
    assert {"map", "flags"} <= kinds.keys()
    assert kinds["sleep"] == "job_kinds:sleep_job"  # the tests' own, through jobs.kinds
    assert "sleep" not in jobs.job_kinds(load_settings(env={"CURATION_WORKSPACE": str(settings.workspace)}))
    assert not hasattr(jobs, "HANDLERS") and not hasattr(jobs, "register")


def test_an_installed_entry_point_kind_runs_in_a_worker(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package declaring ``[project.entry-points."curation.jobs"]`` adds a kind: no library edit at all."""
    site = tmp_path / "site"
    dist_info = site / "countingplugin-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: countingplugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[curation.jobs]\ncounting = job_kinds:sleep_job\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ["PYTHONPATH"]]))
    assert jobs.job_kinds(settings)["counting"] == "job_kinds:sleep_job"
    job_id = jobs.start(store, settings, "counting", {"steps": 3, "delay_s": 0.0}, by=LEAD)
    info = jobs.wait(store, settings, job_id, timeout_s=120)
    assert (info.status, info.result["steps"]) == ("done", 3)
    assert info.pid != os.getpid()


# ----------------------------------------------------------------------------------------------------
# Slots per resource


def test_a_second_job_for_a_full_resource_waits_in_line_and_starts_when_the_slot_frees(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    fast_jobs(settings)
    configure(settings, "jobs.resources", json.dumps({"slotted": "gpu"}))
    configure(settings, "jobs.slots", json.dumps({"gpu": 1}))
    trace, gate = tmp_path / "trace.txt", tmp_path / "gate"
    first = jobs.start(store, settings, "slotted", {"trace": str(trace), "gate": str(gate)}, by=LEAD)
    wait_for(lambda: jobs.get(store, settings, first).state == "running", "the first job to take the slot")
    second = jobs.start(store, settings, "slotted", {"trace": str(trace)}, by=LEAD)
    third = jobs.start(store, settings, "slotted", {"trace": str(trace)}, by=LEAD)

    def waiting(job_id: int, place: str) -> bool:
        info = jobs.get(store, settings, job_id)
        return info.state == "queued" and info.message == f"waiting for a gpu slot: {place} in line"

    wait_for(lambda: waiting(second, "1st") and waiting(third, "2nd"), "both to wait in line with their place")
    assert (jobs.get(store, settings, second).queue_position, jobs.get(store, settings, third).queue_position) == (1, 2)
    assert jobs.get(store, settings, first).queue_position is None
    gate.touch()  # the first job may finish now
    for job_id in (first, second, third):
        assert jobs.wait(store, settings, job_id, timeout_s=120).status == "done"
    # One at a time, first come first served.
    assert trace.read_text().split("\n")[:-1] == [f"{what} {job}" for job in (first, second, third) for what in ("start", "end")]


def test_claims_racing_for_the_last_slot_take_exactly_the_free_slots(store: Store, settings: Settings) -> None:
    """Eight workers (own connections) claim at once; on SQLite and PostgreSQL exactly ``slots`` win."""
    configure(settings, "jobs.resources", json.dumps({"sleep": "gpu"}))
    configure(settings, "jobs.slots", json.dumps({"gpu": 2}))
    # Never launched, so none waits ahead of another: every claim competes for the slots alone.
    ids = [jobs.submit(store, settings, "sleep", {}, by=LEAD) for _ in range(8)]
    staleness = jobs._staleness(settings)
    stores = [Store(store.url, run_migrations=False) for _ in ids]
    start = threading.Barrier(len(ids))
    outcomes: dict[int, str] = {}

    def claim(job_id: int, own: Store) -> None:
        start.wait(timeout=30)
        outcomes[job_id] = own.jobs.claim(job_id, f"lease-{job_id}", os.getpid(), "here", 2, staleness)

    threads = [threading.Thread(target=claim, args=pair) for pair in zip(ids, stores, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for own in stores:
        own.close()
    assert Counter(outcomes.values()) == {"claimed": 2, "waiting": 6}
    running = jobs.all_jobs(store, settings, kind="sleep", active=True)
    assert sorted(j.id for j in running if j.status == "running") == sorted(i for i, o in outcomes.items() if o == "claimed")


# ----------------------------------------------------------------------------------------------------
# The lease: a paused worker never runs beside the one that took over


def test_a_cancel_set_while_the_worker_was_paused_is_honoured(store: Store, settings: Settings) -> None:
    fast_jobs(settings)
    job_id = jobs.start(store, settings, "sleep", {"steps": 4000, "delay_s": 0.01}, by=LEAD)
    wait_for(lambda: jobs.get(store, settings, job_id).done >= 5, "the worker to make progress")
    pid = jobs.get(store, settings, job_id).pid or 0
    pause_between_transactions(pid, store, job_id)
    try:
        wait_for(lambda: jobs.get(store, settings, job_id).state == "stale", "the paused worker to go stale")
        assert jobs.cancel(store, settings, job_id, by=LEAD).state == "cancelled"
        done_at_cancel = jobs.get(store, settings, job_id).done
        events_at_cancel = len(jobs.events(store, job_id))
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: not alive(pid), "the old worker to stop on its lost lease")
    info = jobs.get(store, settings, job_id)
    assert (info.status, info.done) == ("cancelled", done_at_cancel)  # not set back to running or done
    assert len(jobs.events(store, job_id)) == events_at_cancel  # it wrote nothing more
    assert "lease lost" in (Path(settings.workspace) / "jobs" / f"{job_id}.log").read_text()


def others_can_write(store: Store, job_id: int) -> bool:
    """Nobody holds a write lock that the job's row or the store needs (SQLite: the database; PostgreSQL:
    the job's row)."""
    if store.db.dialect == "sqlite":
        raw = sqlite3.connect(store.url.split(":///", 1)[1], timeout=0.2)
        try:
            raw.execute("BEGIN IMMEDIATE")
            raw.rollback()
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            raw.close()
    from sqlalchemy import exc, text

    with store.db.engine.connect() as connection:
        try:
            connection.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE NOWAIT"), {"id": job_id})
            return True
        except exc.OperationalError:
            return False
        finally:
            connection.rollback()


def pause_between_transactions(pid: int, store: Store, job_id: int) -> None:
    """SIGSTOP the worker at a moment it holds no write lock.

    A process paused inside a write transaction blocks every other writer on SQLite until it continues: no
    lease can help there, only killing it (on PostgreSQL the server ends such a session after the busy
    timeout: tests/test_store_postgres_locks.py); that is another scenario.
    The paused-past-the-threshold worker of issue 9 was paused between its writes, as here.
    """
    for _ in range(100):
        os.kill(pid, signal.SIGSTOP)
        if others_can_write(store, job_id):
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError("the worker was inside a write transaction at every try")


def stored(store: Store, table: type) -> int:
    with store.db.session() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


class GatedServer(FaultServer):
    """Holds the ``hold_at``-th request unanswered until the test ends: the worker that sent it is then
    paused with a call in flight that never completes, so every answered call is a distinct record."""

    def __init__(self, hold_at: int) -> None:
        super().__init__()
        self.hold_at = hold_at
        self.arrived = 0
        self.holding = threading.Event()
        self.release = threading.Event()
        self._count_lock = threading.Lock()

    def decide(self, messages, authorization, path="", api_key_header=""):  # type: ignore[no-untyped-def]
        with self._count_lock:
            self.arrived += 1
            held = self.arrived == self.hold_at
        if held:
            self.holding.set()
            self.release.wait(timeout=300)
            return super().decide(messages + [{"role": "note", "content": "@dropx1 released"}], authorization, path)
        return super().decide(messages, authorization, path, api_key_header)


@pytest.fixture
def gated_server() -> Iterator[GatedServer]:
    server = GatedServer(hold_at=4).start()
    yield server
    server.release.set()
    server.stop()


def test_a_paused_worker_past_the_threshold_never_runs_beside_the_resumed_one(
    store: Store, settings: Settings, gated_server: GatedServer
) -> None:
    from curation.raters.run import RateRequest

    fast_jobs(settings)
    records = [Record(f"Name a fruit number {i}.", "", f"Fruit {i}") for i in range(12)]
    store.datasets.create("fruit", records, created_by="tests")
    # Concurrency 1: with several calls in flight, a paused worker could hold answers it never stored,
    # and the new owner would rightly ask those again; one call at a time keeps "one call per record" exact.
    request = RateRequest(
        rater="llm", dataset="fruit", model="fault-model", base_url=gated_server.base_url, concurrency=1
    )
    job_id = jobs.start(store, settings, "rate", request.as_params(), request.title(), by=LEAD)
    assert gated_server.holding.wait(timeout=120), "the worker never sent its fourth call"
    # Its three answers are stored (the writer threads are idle until the fourth call returns).
    wait_for(lambda: stored(store, LLMCall) == stored(store, Rating) == 3, "three stored answers")
    old_pid = jobs.get(store, settings, job_id).pid or 0
    pause_between_transactions(old_pid, store, job_id)  # paused with its fourth call in flight
    try:
        wait_for(lambda: jobs.get(store, settings, job_id).state == "stale", "the paused worker to go stale")
        jobs.resume(store, settings, job_id, by=LEAD)
        info = jobs.wait(store, settings, job_id, timeout_s=180)
        assert info.status == "done", info.error
        new_pid = info.pid
    finally:
        os.kill(old_pid, signal.SIGCONT)
    wait_for(lambda: not alive(old_pid), "the old worker to stop on its lost lease")

    answered = Counter(hit.key for hit in gated_server.hits if hit.action == "ok")
    assert len(answered) == len(records) and set(answered.values()) == {1}  # exactly one call per record
    final = jobs.get(store, settings, job_id)
    assert (final.status, final.attempts, final.pid, final.done) == ("done", 2, new_pid, len(records))
    assert new_pid != old_pid
    assert sum(message == "done" for message in messages_of(store, job_id)) == 1
    assert "lease lost" in (Path(settings.workspace) / "jobs" / f"{job_id}.log").read_text()


# ----------------------------------------------------------------------------------------------------
# Who may launch, resume and cancel


def test_launching_needs_run_job_and_paid_work_needs_a_lead(store: Store, settings: Settings) -> None:
    with pytest.raises(Forbidden, match="Sign in"):
        jobs.submit(store, settings, "sleep", {}, by=None)
    with pytest.raises(Forbidden, match="Only a lead can launch jobs: it spends money"):
        jobs.submit(store, settings, "sleep", {"paid": True}, by=ANNOTATOR)
    with pytest.raises(Forbidden):
        jobs.submit(store, settings, "sleep", {}, by=Person("vic", "voter"))
    assert jobs.get(store, settings, jobs.submit(store, settings, "sleep", {}, by=ANNOTATOR)).created_by == "ann"

    paid = jobs.submit(store, settings, "sleep", {"paid": True}, by=LEAD)
    jobs.cancel(store, settings, paid, by=LEAD)
    with pytest.raises(Forbidden, match="spends money"):
        jobs.resume(store, settings, paid, by=ANNOTATOR, launch_worker=False)
    assert jobs.resume(store, settings, paid, by=LEAD, launch_worker=False).state == "queued"


def test_a_kind_or_a_job_may_ask_for_a_stricter_action(store: Store, settings: Settings) -> None:
    configure(settings, "jobs.actions", json.dumps({"sleep": "train"}))
    with pytest.raises(Forbidden, match=r"Only a lead can launch jobs \(sleep\)"):
        jobs.submit(store, settings, "sleep", {}, by=ANNOTATOR)
    with pytest.raises(Forbidden):
        jobs.submit(store, settings, "broken", {"action": "manage_studies"}, by=ANNOTATOR)
    jobs.submit(store, settings, "broken", {"action": "manage_studies"}, by=LEAD)


def test_cancelling_someone_elses_job_needs_cancel_any_job(store: Store, settings: Settings) -> None:
    mine = jobs.submit(store, settings, "sleep", {}, by=ANNOTATOR)
    with pytest.raises(Forbidden, match="cancel ann's job"):
        jobs.cancel(store, settings, mine, by=OTHER_ANNOTATOR)
    with pytest.raises(Forbidden):
        jobs.cancel(store, settings, mine, by=None)
    assert jobs.get(store, settings, mine).state == "queued"
    assert jobs.cancel(store, settings, mine, by=ANNOTATOR).state == "cancelled"
    theirs = jobs.submit(store, settings, "sleep", {}, by=ANNOTATOR)
    assert jobs.cancel(store, settings, theirs, by=LEAD).state == "cancelled"


# ----------------------------------------------------------------------------------------------------
# Jobs linked to what they are about; configuration


def test_jobs_are_linked_to_their_dataset_and_subject_by_columns(store: Store, settings: Settings) -> None:
    pool = store.datasets.create("pool", [Record("Say hi.", "", "Hi")], created_by="tests")
    other = store.datasets.create("other", [Record("Say bye.", "", "Bye")], created_by="tests")
    on_pool = jobs.submit(store, settings, "sleep", {}, by=LEAD, dataset_id=pool.id, subject="model-7")
    on_other = jobs.submit(store, settings, "broken", {}, by=LEAD, dataset_id=other.id)
    unlinked = jobs.submit(store, settings, "sleep", {}, by=LEAD)
    assert [j.id for j in jobs.all_jobs(store, settings, dataset_id=pool.id)] == [on_pool]
    assert [j.id for j in jobs.all_jobs(store, settings, subject="model-7")] == [on_pool]
    assert [j.id for j in jobs.all_jobs(store, settings, kind=("sleep", "broken"))] == [unlinked, on_other, on_pool]
    assert [j.id for j in jobs.all_jobs(store, settings, kind="broken", dataset_id=pool.id)] == []
    info = jobs.get(store, settings, on_pool)
    assert (info.dataset_id, info.subject) == (pool.id, "model-7")


def test_the_sqlite_busy_timeout_is_below_the_stale_threshold(settings: Settings) -> None:
    assert settings.jobs.busy_timeout_s == settings.jobs.stale_after_s / 2
    tuned = load_settings(env={"CURATION_WORKSPACE": str(settings.workspace)}, overrides=["jobs.stale_after_s=8"])
    store = Store.open(tuned)
    try:
        with store.db.engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            assert isinstance(raw, sqlite3.Connection)
            assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 4000
    finally:
        store.close()
    with pytest.raises(ConfigError, match="sqlite_busy_timeout_s .* must be below jobs.stale_after_s"):
        load_settings(env={}, overrides=["jobs.stale_after_s=10", "jobs.sqlite_busy_timeout_s=10"])
    with pytest.raises(ConfigError, match="heartbeat_s .* must be below"):
        load_settings(env={}, overrides=["jobs.stale_after_s=1", "jobs.heartbeat_s=2"])
