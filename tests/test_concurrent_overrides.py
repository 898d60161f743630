"""Two people overriding the same example at once: both decisions are in the audit log, the later one is in
force, nothing is lost — on SQLite and on PostgreSQL, through two real studio sessions."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from studio_helpers import point_studio_at, rated_dataset, studio


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
    assert any("In force: drop by bob" in t.value for t in ann.text)  # shown as text (user strings)


def test_simultaneous_submissions_from_two_threads_lose_nothing(monkeypatch, settings, store):
    point_studio_at(monkeypatch, settings, store)
    info = rated_dataset(store, n=12)
    record_id = store.datasets.records(info.id)[0].id
    sessions = [fill(session_on_example((name, "annotator")), decision, f"{name} says {decision}")
                for name, decision in (("ann", "keep"), ("bob", "drop"))]
    start = threading.Barrier(len(sessions))

    def submit(app) -> None:
        start.wait(timeout=30)
        app.form_submit_button[0].click().run()

    with ThreadPoolExecutor(len(sessions)) as pool:
        for future in [pool.submit(submit, app) for app in sessions]:
            future.result(timeout=120)  # re-raises anything that went wrong in a session
    assert all(not app.exception for app in sessions)
    history = store.overrides.history(info.id, record_id)
    assert sorted(h.user for h in history) == ["ann", "bob"]
    in_force = store.overrides.in_force(info.id)[record_id]
    assert in_force.entry == history[-1].entry == max(h.entry for h in history)
