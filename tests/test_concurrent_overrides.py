"""Two people overriding the same example at once: both decisions are in the audit log, the later one is in
force, nothing is lost — on SQLite and on PostgreSQL, through two real studio sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from studio_helpers import point_studio_at, rated_dataset, studio

REPO = Path(__file__).resolve().parent.parent


def session_on_example(person: tuple[str, str], row: int = 0):
    app = studio("explore", person=person)
    app.session_state[app.session_state["explore_table_key"]] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return app.run()


def fill(app, decision: str, reason: str):
    next(r for r in app.radio if str(r.key).startswith("override_decision_")).set_value(decision)
    app.text_input(key="override_reason").input(reason)
    return app


def test_two_sessions_that_saw_the_same_state_both_land_and_the_later_wins(monkeypatch, settings, store):
    point_studio_at(monkeypatch, settings, store)
    info = rated_dataset(store, n=12)
    record_id = store.datasets.records(info.id)[0].id
    ann = fill(session_on_example(("ann", "annotator")), "keep", "clear and correct")
    bob = fill(session_on_example(("bob", "annotator")), "drop", "the answer is off-topic")
    # Both looked at the example before either decided; ann submits first, then bob.
    ann.form_submit_button[0].click().run()
    bob.form_submit_button[0].click().run()
    assert not ann.exception and not bob.exception
    history = store.overrides.history(info.id, record_id)
    assert [(h.user, h.decision, h.reason) for h in history] == [
        ("ann", "keep", "clear and correct"), ("bob", "drop", "the answer is off-topic")]
    in_force = store.overrides.in_force(info.id)[record_id]
    assert (in_force.user, in_force.decision) == ("bob", "drop")
    # bob is told that ann decided meanwhile and that both are kept.
    assert "Meanwhile ann recorded 'keep'" in bob.info[0].value
    # ann, reloading, sees bob's decision in force and both entries in the history.
    ann.run()
    assert any("In force: drop by bob" in t.value for t in ann.text)  # as text: reasons are user strings


def test_simultaneous_submissions_from_two_sessions_lose_nothing(settings, store, tmp_path):
    """Each session in a process of its own: AppTest swaps process-global state in and out on every run
    (the runtime instance, the ``global.appTest`` option, the pages manager), so two sessions run in two
    threads of one process interfere, and one could end without handling its click (issue 9's flake:
    the store had not lost an override; one was never submitted). Processes share only the database."""
    info = rated_dataset(store, n=12)
    record_id = store.datasets.records(info.id)[0].id
    go = tmp_path / "go"
    env = {**os.environ, "CURATION_WORKSPACE": str(settings.workspace), "PYTHONPATH": str(REPO)}
    env.pop("CURATION_CONFIG", None)
    env.pop("DATABASE_URL", None)
    if store.url.startswith("postgresql"):
        env["DATABASE_URL"] = settings.database_url
    people = (("ann", "keep"), ("bob", "drop"))
    sessions = [
        subprocess.Popen([sys.executable, __file__, name, decision, str(tmp_path / f"{name}.ready"), str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        for name, decision in people
    ]
    deadline = time.monotonic() + 300
    while not all((tmp_path / f"{name}.ready").exists() for name, _ in people):
        assert all(s.poll() is None for s in sessions), [s.communicate() for s in sessions]
        assert time.monotonic() < deadline, "the sessions did not open in time"
        time.sleep(0.05)
    go.touch()  # both submit now
    for (name, decision), session in zip(people, sessions, strict=True):
        out, err = session.communicate(timeout=300)
        assert session.returncode == 0, err[-3000:]
        seen = json.loads(out.strip().splitlines()[-1])
        assert not seen["exception"] and any(f"Recorded: {decision} by {name}." in i for i in seen["info"]), seen
    history = store.overrides.history(info.id, record_id)
    assert sorted(h.user for h in history) == ["ann", "bob"]
    in_force = store.overrides.in_force(info.id)[record_id]
    assert in_force.entry == history[-1].entry == max(h.entry for h in history)


def _one_session(name: str, decision: str, ready: Path, go: Path) -> None:
    """The child process: open a session on the example, say so, wait for the start, submit, report."""
    app = fill(session_on_example((name, "annotator")), decision, f"{name} says {decision}")
    ready.touch()
    deadline = time.monotonic() + 300
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("no start signal")
        time.sleep(0.001)
    app.form_submit_button[0].click().run()
    print(json.dumps({"exception": [e.message for e in app.exception], "info": [i.value for i in app.info]}))


if __name__ == "__main__":
    _one_session(sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
