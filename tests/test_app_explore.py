"""Explore page: τ slider with counts and per-category shares, the example table, one example, overrides."""

from __future__ import annotations

import pytest
from studio_helpers import flag_first, point_studio_at, rated_dataset, studio, table_with, toy_records

from curation import jobs
from curation.studio_auth import Person


@pytest.fixture
def studio_env(monkeypatch, settings, sqlite_store):
    point_studio_at(monkeypatch, settings, sqlite_store)
    return sqlite_store


def metrics(app) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def open_row(app, row: int):
    app.session_state[app.session_state["explore_table_key"]] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return app.run()


def decision(app):
    return next(r for r in app.radio if str(r.key).startswith("override_decision_"))


def test_moving_tau_updates_kept_and_dropped_counts_and_category_shares(studio_env):
    rated_dataset(studio_env, n=60, rated=50)  # scores 0.0 … 4.9, ten unrated
    app = studio("explore")
    tau = app.slider(key=next(k for k in app.session_state if str(k).startswith("tau_")))
    tau.set_value(4.0).run()
    assert metrics(app)["Kept"] == "10" and metrics(app)["Dropped"] == "50"
    assert metrics(app)["Not rated (dropped)"] == "10"
    tau.set_value(2.5).run()
    assert metrics(app)["Kept"] == "25"
    shares = table_with(app, "kept_share")
    assert shares["examples"].sum() == 60 and shares["kept"].sum() == 25
    # Export follows what is on screen, and coming back to Explore finds τ where it was left.
    assert app.session_state["studio_selection"]["tau"] == pytest.approx(2.5)
    app.switch_page("pages/data.py").run()
    app.switch_page("pages/explore.py").run()
    assert metrics(app)["Kept"] == "25"


def test_no_ratings_says_what_to_do_and_offers_the_rating_job(studio_env, settings):
    studio_env.datasets.create("plain", toy_records(5), created_by="tests")
    app = studio("explore", person=("ann", "annotator"))
    assert "No ratings for 'plain' yet" in app.info[0].value
    assert not app.slider
    # The examples are browsable all the same.
    assert len(table_with(app, "instruction")) == 5
    app.button(key="explore_rate_iqs").click().run()
    [job] = jobs.all_jobs(studio_env, settings)
    jobs.cancel(studio_env, settings, job.id, by=Person("ann", "annotator"))
    assert (job.kind, job.params["dataset"], job.created_by) == ("rate", "plain", "ann")
    assert jobs.wait(studio_env, settings, job.id, timeout_s=240).status in ("cancelled", "done")


def test_search_and_filters_narrow_the_table(studio_env):
    info = rated_dataset(studio_env, n=30)
    flagged = flag_first(studio_env, info, 2)
    app = studio("explore")
    app.text_input(key="explore_search").input("instruction number 7").run()
    assert list(table_with(app, "instruction")["instruction"].str[:21]) == ["Instruction number 7:"]
    app.text_input(key="explore_search").input("").run()
    app.selectbox(key="explore_show").select("flagged").run()
    shown = table_with(app, "flags")
    assert sorted(shown["id"]) == sorted(flagged) and set(shown["flags"]) == {"short_output"}
    app.selectbox(key="explore_show").select("all").run()
    app.selectbox(key="explore_sort").select("iqs (test-1)").run()
    assert table_with(app, "iqs (test-1)")["iqs (test-1)"].iloc[0] == pytest.approx(2.9)


def test_an_example_shows_texts_scores_explanations_and_flags(studio_env):
    info = rated_dataset(studio_env, n=10)
    flag_first(studio_env, info, 1)
    app = open_row(studio("explore"), 0)
    record = studio_env.datasets.records(info.id)[0]
    assert f"Example {record.id}" in [s.value for s in app.subheader]
    assert [c.value for c in app.code][:1] == [record.instruction]
    ratings = table_with(app, "explanation")
    assert list(ratings["explanation"]) == ["iqs says 0"]
    flags = table_with(app, "flag")
    assert flags.to_dict("records") == [{"flag": "short_output", "reason": "the output has 2 words"}]


def test_an_override_needs_an_account_and_a_reason_and_records_the_person(studio_env):
    info = rated_dataset(studio_env, n=10)
    record_id = studio_env.datasets.records(info.id)[0].id  # score 0.0: dropped by any τ above it
    viewer = open_row(studio("explore"), 0)
    assert viewer.form_submit_button[0].disabled
    app = open_row(studio("explore", person=("ann", "annotator")), 0)
    decision(app).set_value("keep")
    app.form_submit_button[0].click().run()
    assert "Say why in the reason field" in app.warning[0].value
    assert studio_env.overrides.history(info.id) == []
    decision(app).set_value("keep")
    app.text_input(key="override_reason").input("a fine answer the scorer misjudged")
    app.form_submit_button[0].click().run()
    assert not app.exception
    [entry] = studio_env.overrides.history(info.id, record_id)
    assert (entry.decision, entry.user, entry.reason) == ("keep", "ann", "a fine answer the scorer misjudged")
    assert "Recorded: keep by ann." in app.info[0].value
    assert metrics(app)["Overrides changing the verdict"] == "1"
    assert table_with(app, "who")["who"].tolist() == ["ann"]


def test_ratings_written_meanwhile_show_on_the_next_rerun(studio_env):
    from curation.store import RatingRow

    info = rated_dataset(studio_env, n=20, rated=10)
    records = studio_env.datasets.records(info.id)
    studio_env.ratings.save([RatingRow(records[10].id, "iqs", "test-1", "error", raw="timeout")])
    app = studio("explore")
    assert metrics(app)["Not rated (dropped)"] == "10"
    # A worker re-rates the error in place (same row id, same count, a new time) ...
    studio_env.ratings.save([RatingRow(records[10].id, "iqs", "test-1", "ok", score=9.0, score_0_5=4.9)])
    app.run()
    assert metrics(app)["Not rated (dropped)"] == "9"
    # ... and rates one more (a new row).
    studio_env.ratings.save([RatingRow(records[11].id, "iqs", "test-1", "ok", score=9.5, score_0_5=4.95)])
    app.run()
    assert metrics(app)["Not rated (dropped)"] == "8"


def test_tau_slider_says_its_scale_and_switches_to_raw_scores(studio_env):
    rated_dataset(studio_env, n=20)
    app = studio("explore")
    [slider] = [s for s in app.slider if str(s.key).startswith("tau_")]
    assert "0–5 scale" in slider.label and (slider.min, slider.max) == (0.0, 5.0)
    app.toggle(key="explore_raw_scale").set_value(True).run()
    [raw] = [s for s in app.slider if str(s.key).startswith("tau_")]
    assert "raw scale" in raw.label and raw.max == pytest.approx(1.9)
    assert app.session_state["studio_selection"]["field"] == "score"


def test_a_new_filter_unchecks_the_row_and_the_open_example_stays_with_its_dataset(studio_env):
    info = rated_dataset(studio_env, n=30)
    other = rated_dataset(studio_env, "other", n=12, seed=5)
    flagged = flag_first(studio_env, info, 2)
    app = studio("explore")
    app.selectbox(key="dataset_explore").select("toy").run()
    first = studio_env.datasets.records(info.id)[0].id
    open_row(app, 0)
    assert f"Example {first}" in [s.value for s in app.subheader]
    app.selectbox(key="explore_show").select("flagged").run()
    # Another set of rows: no row is checked (row 0 is now another example), the open one stays open.
    shown = table_with(app, "flags")
    assert sorted(shown["id"]) == sorted(flagged)
    assert app.session_state[app.session_state["explore_table_key"]]["selection"]["rows"] == []
    assert f"Example {first}" in [s.value for s in app.subheader]
    app.selectbox(key="dataset_explore").select("other").run()
    assert not app.warning, [w.value for w in app.warning]  # no "No example … in 'other'"
    assert not [s.value for s in app.subheader if s.value.startswith("Example ")]
    app.selectbox(key="dataset_explore").select("toy").run()
    assert f"Example {first}" in [s.value for s in app.subheader]
    assert other.name == "other"


def test_after_recording_a_drop_the_radio_shows_drop(studio_env):
    info = rated_dataset(studio_env, n=10)
    app = open_row(studio("explore", person=("ann", "annotator")), 3)
    decision(app).set_value("drop")
    app.text_input(key="override_reason").input("off topic")
    app.form_submit_button[0].click().run()
    assert [e.decision for e in studio_env.overrides.history(info.id)] == ["drop"]
    assert decision(app).value == "drop"
    app.run()
    assert decision(app).value == "drop"


def tau_slider(app):
    return app.slider(key=next(k for k in app.session_state if str(k).startswith("tau_")
                               and k in [s.key for s in app.slider]))


def test_tau_belongs_to_the_dataset_and_rater_and_every_page_names_it(studio_env):
    rated_dataset(studio_env, "first", n=40)
    rated_dataset(studio_env, "second", n=20, seed=3)
    app = studio("explore")
    app.selectbox(key="dataset_explore").select("first").run()
    tau_slider(app).set_value(3.0).run()
    assert metrics(app)["Kept"] == "10"
    app.selectbox(key="dataset_explore").select("second").run()
    assert tau_slider(app).value == pytest.approx(0.95)  # its own median, not first's τ
    tau_slider(app).set_value(1.5).run()
    app.selectbox(key="dataset_explore").select("first").run()
    assert tau_slider(app).value == pytest.approx(3.0) and metrics(app)["Kept"] == "10"
    assert any("τ in force for first with iqs (test-1): 3" in c.value for c in app.caption)
    app.switch_page("pages/export.py").run()
    assert app.number_input(key="export_tau").value == pytest.approx(3.0)
    assert any("τ in force for first with iqs (test-1): 3" in c.value for c in app.caption)
    app.selectbox(key="dataset_export").select("second").run()
    assert app.number_input(key="export_tau").value == pytest.approx(1.5)
    app.number_input(key="export_tau").set_value(2.0).run()  # changed on Export: Explore follows
    app.switch_page("pages/explore.py").run()
    assert tau_slider(app).value == pytest.approx(2.0)
