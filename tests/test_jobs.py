"""The job runner: state, progress, log and heartbeat in the store; cancel; kill -9, stale, resume.

Workers are real processes (``python -m curation jobs run ID``) started by ``jobs.launch``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from curation import jobs
from curation.cli import main
from curation.config import Settings, set_value
from curation.store import Store


def fast_jobs(settings: Settings) -> Settings:
    for key, value in (("jobs.heartbeat_s", "0.2"), ("jobs.stale_after_s", "2"), ("jobs.poll_s", "0.05")):
        set_value(settings, key, value, origin="test")
        settings.overrides.append(f"{key}={value}")  # so launched workers use them too
    return settings


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def failing_job(context: jobs.JobContext) -> dict[str, Any]:
    context.progress(1, 3, "one step done")
    raise ValueError("the input is broken")


def test_a_job_runs_in_process_with_progress_log_and_result(store: Store, settings: Settings) -> None:
    job_id = jobs.submit(store, "sleep", {"steps": 4, "delay_s": 0.01}, title="count to four", created_by="ana")
    assert jobs.get(store, settings, job_id).state == "queued"
    info = jobs.run(store, settings, job_id)
    assert (info.status, info.done, info.total, info.fraction) == ("done", 4, 4, 1.0)
    assert info.result == {"steps": 4, "resumed_from": 0}
    assert (info.message, info.created_by, info.attempts) == ("step 4/4", "ana", 1)
    messages = [message for _, _, _, message in jobs.events(store, job_id)]
    assert messages[0].startswith(f"worker {os.getpid()}") and messages[-1] == "done"
    with pytest.raises(jobs.JobError, match="only a queued or stale job can be run"):
        jobs.run(store, settings, job_id)
    with pytest.raises(jobs.JobError, match="only failed, cancelled or stale"):
        jobs.resume(store, settings, job_id, launch_worker=False)


def test_a_failing_handler_fails_the_job_with_its_error_and_traceback(store: Store, settings: Settings) -> None:
    jobs.register("broken", f"{__name__}:failing_job")
    info = jobs.run(store, settings, jobs.submit(store, "broken", {}))
    assert (info.status, info.error, info.done) == ("failed", "ValueError: the input is broken", 1)
    logged = [(level, message) for _, _, level, message in jobs.events(store, info.id)]
    assert any(
        level == "error" and "Traceback" in message and "the input is broken" in message for level, message in logged
    )


def test_unknown_kinds_are_refused_at_submit(store: Store) -> None:
    with pytest.raises(jobs.JobError, match="unknown job kind 'nope'; known: .*rate.*sleep"):
        jobs.submit(store, "nope", {})


def test_a_queued_job_is_cancelled_at_once(store: Store, settings: Settings) -> None:
    job_id = jobs.submit(store, "sleep", {})
    assert jobs.cancel(store, settings, job_id).state == "cancelled"
    assert jobs.cancel(store, settings, job_id).state == "cancelled"  # idempotent


def test_a_worker_process_reports_into_the_store_and_stops_when_cancelled(store: Store, settings: Settings) -> None:
    fast_jobs(settings)
    job_id = jobs.start(store, settings, "sleep", {"steps": 400, "delay_s": 0.05})
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

    assert jobs.cancel(store, settings, job_id).cancel_requested
    info = jobs.wait(store, settings, job_id, timeout_s=60)
    assert info.status == "cancelled" and info.done < 400
    assert any("cancel requested" in message for _, _, _, message in jobs.events(store, job_id))
    assert (Path(settings.workspace) / "jobs" / f"{job_id}.log").exists()


def test_a_killed_worker_is_seen_stale_and_the_resumed_job_skips_finished_work(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    fast_jobs(settings)
    state_file = tmp_path / "state.txt"
    job_id = jobs.start(store, settings, "sleep", {"steps": 60, "delay_s": 0.05, "state_file": str(state_file)})
    wait_for(lambda: jobs.get(store, settings, job_id).done >= 10, "ten steps")
    os.kill(jobs.get(store, settings, job_id).pid or 0, signal.SIGKILL)
    steps_before_kill = int(state_file.read_text())

    assert jobs.get(store, settings, job_id).status == "running"  # nobody told the store...
    wait_for(lambda: jobs.get(store, settings, job_id).state == "stale", "the heartbeat to go stale")
    assert jobs.wait(store, settings, job_id, timeout_s=5).stale  # waiting ends on a dead worker too

    resumed = jobs.resume(store, settings, job_id)
    assert resumed.state == "queued"
    info = jobs.wait(store, settings, job_id, timeout_s=120)
    assert (info.status, info.attempts, info.done) == ("done", 2, 60)
    assert info.result["resumed_from"] >= steps_before_kill >= 10
    messages = [message for _, _, _, message in jobs.events(store, job_id)]
    assert any(message.startswith("resumed (was stale)") for message in messages)


def test_a_stale_job_can_be_cancelled_and_a_cancelled_one_resumed(store: Store, settings: Settings) -> None:
    fast_jobs(settings)
    job_id = jobs.start(store, settings, "sleep", {"steps": 400, "delay_s": 0.05})
    wait_for(lambda: jobs.get(store, settings, job_id).done >= 1, "the worker to start")
    os.kill(jobs.get(store, settings, job_id).pid or 0, signal.SIGKILL)
    wait_for(lambda: jobs.get(store, settings, job_id).state == "stale", "the heartbeat to go stale")
    assert jobs.cancel(store, settings, job_id).state == "cancelled"
    requeued = jobs.resume(store, settings, job_id, launch_worker=False)
    assert requeued.state == "queued" and not requeued.cancel_requested


def test_a_worker_that_dies_before_claiming_leaves_a_stale_resumable_job(store: Store, settings: Settings) -> None:
    fast_jobs(settings)
    job_id = jobs.submit(store, "sleep", {"steps": 2, "delay_s": 0.01})
    assert not jobs.get(store, settings, job_id).stale  # submitted, never launched: just queued
    broken = Settings(**{**settings.__dict__, "overrides": [*settings.overrides, "no.such.setting=1"]})
    settings.jobs.claim_timeout_s = 2.0
    jobs.launch(store, broken, job_id)  # the worker exits on its bad configuration before claiming
    wait_for(lambda: jobs.get(store, settings, job_id).state == "stale", "the unclaimed job to go stale")
    assert jobs.get(store, settings, job_id).status == "queued"
    jobs.resume(store, settings, job_id, launch_worker=False)
    settings.jobs.claim_timeout_s = 120.0  # the new worker may take a while to start on a busy machine
    jobs.launch(store, settings, job_id)
    assert jobs.wait(store, settings, job_id, timeout_s=120).status == "done"


def test_jobs_cli_lists_shows_cancels_and_resumes(
    sqlite_store: Store, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--workspace", str(settings.workspace)]
    done_id = jobs.submit(sqlite_store, "sleep", {"steps": 2, "delay_s": 0.0}, title="two steps")
    jobs.run(sqlite_store, settings, done_id)
    queued_id = jobs.submit(sqlite_store, "sleep", {}, title="waiting")

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
