"""Rate page: rater choice, the cost estimate, launching a job as the person acting, the live job list."""

from __future__ import annotations

import os
import signal

import pytest
from studio_helpers import point_studio_at, studio, table_with, toy_records

from curation import jobs
from curation.studio_auth import Person


@pytest.fixture
def studio_env(monkeypatch, settings, sqlite_store):
    point_studio_at(monkeypatch, settings, sqlite_store)
    sqlite_store.datasets.create("tiny", toy_records(3), created_by="tests")
    return sqlite_store


def test_llm_rater_shows_the_dry_run_and_only_a_lead_launches_a_paid_job(studio_env):
    app = studio("rate", person=("ann", "annotator"))
    app.radio(key="rate_rater").set_value("llm").run()
    app.text_input(key="rate_model").input("gpt-4o-mini").run()
    estimate = app.get("text")[0].value
    assert "calls to make: 3" in estimate and "nothing was sent" in estimate and "≤ $" in estimate
    assert app.button(key="rate_launch").disabled
    assert "Only a lead can launch a paid rating job; you are signed in as annotator." in [c.value for c in app.caption]
    lead = studio("rate", person=("lea", "lead"))
    lead.radio(key="rate_rater").set_value("llm").run()
    lead.text_input(key="rate_model").input("gpt-4o-mini").run()
    assert not lead.button(key="rate_launch").disabled


def test_a_bad_dimension_is_one_sentence(studio_env):
    app = studio("rate", person=("lea", "lead"))
    app.radio(key="rate_rater").set_value("llm").run()
    app.text_input(key="rate_dimension").input("x" * 80).run()
    assert not app.exception
    assert "dimension" in app.error[0].value
    assert all(b.disabled for b in app.button if b.key == "rate_launch")  # nothing can be launched


def test_launching_iqs_starts_a_job_carrying_the_person_and_cancel_stops_it(studio_env, settings):
    app = studio("rate", person=("ann", "annotator"))
    assert "costs nothing" in app.markdown[-1].value or any("costs nothing" in m.value for m in app.markdown)
    app.button(key="rate_launch").click().run()
    [job] = jobs.all_jobs(studio_env, settings)
    try:
        assert (job.kind, job.params["dataset"], job.params["rater"], job.created_by) == ("rate", "tiny", "iqs", "ann")
        cancel = app.button(key=f"rate_jobs_cancel_{job.id}")
        cancel.click().run()
        finished = jobs.wait(studio_env, settings, job.id, timeout_s=240)
        assert finished.status in ("cancelled", "done")
        app.run()
        listed = table_with(app, "state")
        assert list(listed["job"]) == [job.id] and list(listed["by"]) == ["ann"]
    finally:
        latest = jobs.get(studio_env, settings, job.id)
        if latest.pid and latest.status == "running":
            os.kill(latest.pid, signal.SIGTERM)


def test_the_job_list_shows_progress_and_failures(studio_env, settings):
    ann = Person("ann", "annotator")
    queued = jobs.submit(studio_env, settings, "rate", {"dataset": "tiny", "rater": "iqs"}, title="rate tiny", by=ann)
    # A worker holding the job (this process, under a lease of its own) reports progress.
    assert studio_env.jobs.claim(queued, "lease-1", os.getpid(), "here", None, jobs._staleness(settings)) == "claimed"
    assert studio_env.jobs.progress(queued, "lease-1", 2, 3, "rated 2/3")
    broken = jobs.submit(studio_env, settings, "rate", {"dataset": "gone", "rater": "iqs"}, title="rate gone", by=ann)
    jobs.run(studio_env, settings, broken)  # fails at once: no such dataset
    app = studio("rate")
    assert [(p.proto.value, p.proto.text) for p in app.get("progress")] == [(66, "2/3 — rated 2/3")]
    finished = table_with(app, "state")
    assert list(finished["state"]) == ["failed"] and "no dataset 'gone'" in finished["message"][0]
    # Without an account the cancel button explains itself instead of acting.
    app.button(key=f"rate_jobs_cancel_{queued}").click().run()
    assert jobs.get(studio_env, settings, queued).status == "running"
    assert "Sign in (sidebar) to cancel jobs." in [w.value for w in app.warning]


def test_an_unpriced_model_or_another_endpoint_needs_a_lead_and_the_job_says_paid(studio_env, settings, monkeypatch):
    monkeypatch.setenv("CURATION__LLM__PRICES", '{"smollm2-local": [0, 0]}')
    app = studio("rate", person=("ann", "annotator"))
    app.radio(key="rate_rater").set_value("llm").run()
    app.text_input(key="rate_model").input("smollm2-local").run()  # listed at [0, 0]: free, the configured endpoint
    assert not app.button(key="rate_launch").disabled
    app.text_input(key="rate_model").input("mystery-model").run()
    assert app.button(key="rate_launch").disabled
    captions = [c.value for c in app.caption]
    assert "Needs a lead: 'mystery-model' has no price in llm.prices, so its cost is unknown." in captions
    assert "cost: unknown" in app.get("text")[0].value
    app.text_input(key="rate_model").input("smollm2-local").run()
    app.text_input(key="rate_base_url").input("http://127.0.0.1:9/v1").run()
    assert app.button(key="rate_launch").disabled
    assert "Needs a lead: http://127.0.0.1:9/v1 is not the configured endpoint." in [c.value for c in app.caption]

    lead = studio("rate", person=("lea", "lead"))
    lead.radio(key="rate_rater").set_value("llm").run()
    lead.text_input(key="rate_model").input("mystery-model").run()
    lead.button(key="rate_launch").click().run()
    [job] = jobs.all_jobs(studio_env, settings)
    assert (job.params["paid"], job.params["model"], job.created_by) == (True, "mystery-model", "lea")
    jobs.cancel(studio_env, settings, job.id, by=Person("lea", "lead"))
    assert jobs.wait(studio_env, settings, job.id, timeout_s=120).status in ("cancelled", "failed", "done")


def test_launching_through_the_library_checks_the_person(studio_env, settings):
    from curation.raters.run import RateRequest, start_rating
    from curation.studio_auth import Forbidden, Person

    paid = RateRequest(rater="llm", dataset="tiny", model="gpt-4o")
    with pytest.raises(Forbidden, match="Only a lead can launch a paid rating job"):
        start_rating(studio_env, settings, paid, Person("ann", "annotator"))
    with pytest.raises(Forbidden, match="Sign in"):
        start_rating(studio_env, settings, RateRequest(rater="iqs", dataset="tiny"), None)
    with pytest.raises(Forbidden):
        start_rating(studio_env, settings, RateRequest(rater="iqs", dataset="tiny"), Person("val", "voter"))
    assert jobs.all_jobs(studio_env, settings) == []
