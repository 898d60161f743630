"""The IQS explanation on the pages: Explore's panel (standing, marked sentence, the better example one
click away), the τ meaning beside Explore's slider and on Rate. Ratings carry a stored mover, so no model
is loaded; the map is written by hand (two clusters) where the cluster part is tested."""

from __future__ import annotations

import pandas as pd
import pytest
from studio_helpers import point_studio_at, studio, toy_records

from curation import explain
from curation.cluster import _write_parquet, cache_path, map_key
from curation.raters.iqs import version_prefix
from curation.store import RatingRow

VERSION = version_prefix() + "bfloat16"  # the shipped weights' version: the panel trusts its stored movers


@pytest.fixture
def studio_env(monkeypatch, settings, sqlite_store):
    point_studio_at(monkeypatch, settings, sqlite_store)
    return settings, sqlite_store


def mover_for(record, score_0_5: float) -> explain.Mover:
    segment = explain.sentences(record.output)[0]
    return explain.Mover(0, len(explain.sentences(record.output)), segment.start, segment.end, segment.text,
                         -5.0, score_0_5, -6.0, score_0_5 - 0.37)


def explained_dataset(settings, store, n: int = 8, mapped: bool = True):
    records = toy_records(n)
    info = store.datasets.create("explained", records, created_by="tests")
    rows = []
    for i, record in enumerate(records):
        mover = mover_for(record, i / 2)
        rows.append(RatingRow(record.id, "iqs", VERSION, "ok", score=i - 10.0, score_0_5=i / 2,
                              explanation=f"IQS {i / 2:.2f} on 0–5. {mover.text()}", raw=mover.as_json()))
    store.ratings.save(rows)
    if mapped:  # clusters: even positions in "evens", odd ones in "odds"; x = position
        frame = pd.DataFrame({"id": [r.id for r in records], "x": [float(i) for i in range(n)], "y": [0.0] * n,
                              "cluster": [i % 2 for i in range(n)],
                              "cluster_name": ["evens" if i % 2 == 0 else "odds" for i in range(n)]})
        _write_parquet(frame, cache_path(settings, "maps", map_key(info.content_hash, settings)), {"clusters": {}})
    return info, records


def open_row(app, row: int):
    app.session_state[app.session_state["explore_table_key"]] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return app.run()


def texts(app) -> list[str]:
    return [t.value for t in app.text]


def test_the_panel_places_the_score_marks_the_sentence_and_opens_the_better_example(studio_env):
    settings, store = studio_env
    _info, records = explained_dataset(settings, store)
    app = open_row(studio("explore"), 2)  # dataset order: record 2, score 1.0, cluster "evens"
    why = next(t for t in texts(app) if "of the dataset" in t)
    assert why.startswith("Bottom 38% of the dataset (6th of 8); 3rd of 4 in cluster 'evens'.")
    assert "removing “Answer 2.” moves it 1.00 → 0.63 (-0.37)" in why
    assert [c.value for c in app.code if "⟦" in c.value] == ["⟦Answer 2.⟧ Answer 2. Answer 2. "]
    assert any("Done better nearby: example " + records[4].id in t for t in texts(app))  # x=4 is nearer than 6
    app.button(key="explore_explain_better").click().run()
    assert f"Example {records[4].id}" in [s.value for s in app.subheader]
    assert not app.exception


def test_without_a_map_the_panel_says_how_to_get_the_cluster_part(studio_env):
    settings, store = studio_env
    explained_dataset(settings, store, mapped=False)
    app = open_row(studio("explore"), 7)
    assert any(t.startswith("Top 13% of the dataset (1st of 8).") for t in texts(app))
    assert any("Compute the map of this dataset" in c.value for c in app.caption)


def test_tau_meaning_beside_the_slider_and_on_rate(studio_env):
    settings, store = studio_env
    explained_dataset(settings, store)
    app = studio("explore")
    assert any("of expert-revised responses score at least" in c.value for c in app.caption)
    rate = studio("rate", person=("lee", "lead"))
    rate.selectbox(key="dataset_rate").select("explained").run()
    assert any("AlpaGasus keeps τ = 4.5" in c.value and "score at least 4.5" in c.value for c in rate.caption)
