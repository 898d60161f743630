"""Selection methods: set arithmetic as properties (hypothesis), reasons, overrides, balance, manifests.

Pools are small DataFrames built here; the CaR clusters come in as columns, so no model is loaded.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from curation.config import Settings
from curation.formats import read_file
from curation.records import Record
from curation.select import (
    CODING_GROUP,
    ManifestMismatch,
    SelectionError,
    apply_overrides,
    balance_report,
    export_selection,
    make_pool,
    read_manifest,
    rebuild_from_manifest,
    rebuild_saved,
    select_car,
    select_quota,
    select_random,
    select_records,
    select_threshold,
    threshold_counts,
)
from curation.store import RatingRow, Store

SCORES = st.one_of(st.none(), st.sampled_from([1.0, 2.5, 3.0, 4.5, 5.0]), st.floats(0, 5, allow_nan=False))
ROWS = st.lists(
    st.tuples(SCORES, st.integers(0, 4), st.sampled_from(["open_qa", "brainstorming", "coding", None])), max_size=60
)


# The machine is shared: no per-example deadline, and a modest number of examples per property.
PROPERTY = hsettings(deadline=None, max_examples=60)


def pool_of(rows: list[tuple[float | None, int, str | None]]) -> pd.DataFrame:
    ids = [hashlib.sha256(str(i).encode()).hexdigest()[:16] for i in range(len(rows))]
    return pd.DataFrame(
        {
            "id": ids,
            "score": [np.nan if s is None else s for s, _, _ in rows],
            "cluster": [c for _, c, _ in rows],
            "cluster_name": [f"topic {c}" for _, c, _ in rows],
            "category": [g for _, _, g in rows],
        }
    )


def ranked_ids(frame: pd.DataFrame) -> list[str]:
    """Scored ids best first, ties by id: the order every method promises."""
    scored = frame[frame["score"].notna()]
    return scored.sort_values(["score", "id"], ascending=[False, True])["id"].tolist()


def kept(selection: pd.DataFrame) -> set[str]:
    return set(selection.loc[selection["keep"], "id"])


# --- threshold ------------------------------------------------------------------------------------


@PROPERTY
@given(ROWS, st.floats(0, 5, allow_nan=False))
def test_threshold_keeps_exactly_the_scores_at_or_above_tau(rows, tau):
    pool = pool_of(rows)
    selection = select_threshold(pool, tau)
    assert selection["id"].tolist() == pool["id"].tolist()
    expected = {i for i, s in zip(pool["id"], pool["score"]) if not math.isnan(s) and s >= tau}
    assert kept(selection) == expected
    assert threshold_counts(pool["score"].to_numpy(), tau)["kept"] == len(expected)
    for reason, score, keep in zip(selection["reason"], pool["score"], selection["keep"]):
        if math.isnan(score):
            assert reason == "no score: dropped"
        else:
            assert reason.startswith("score ") and (" ≥ τ " in reason) == keep and (" < τ " in reason) == (not keep)


def test_threshold_reasons_read_like_the_issue_and_never_contradict_themselves():
    pool = pd.DataFrame({"id": ["a", "b", "c", "d"], "score": [3.5, 4.5, 4.4999, np.nan]})
    reasons = select_threshold(pool, 4.5)["reason"].tolist()
    assert reasons[:2] == ["score 3.5 < τ 4.5", "score 4.5 ≥ τ 4.5"]
    assert reasons[2] == "score 4.4999 < τ 4.5"  # not "4.5 < τ 4.5"
    assert reasons[3] == "no score: dropped"


def test_threshold_counts_give_the_histogram_a_slider_redraws():
    counts = threshold_counts(np.array([1.0, 2.0, 4.0, 5.0, np.nan]), 3.0, bins=4)
    assert (counts["kept"], counts["dropped"], counts["unscored"]) == (2, 3, 1)
    assert counts["histogram"].sum() == 4 and len(counts["edges"]) == 5


# --- CaR ------------------------------------------------------------------------------------------


@PROPERTY
@given(ROWS, st.integers(0, 70), st.integers(0, 4))
def test_car_keeps_the_union_of_the_top_n1_and_each_clusters_top_n2(rows, n1, n2):
    pool = pool_of(rows)
    selection = select_car(pool, n1, n2)
    assert len(selection) == len(pool) and selection["id"].is_unique
    top = set(ranked_ids(pool)[:n1])
    per_cluster = set()
    for _, group in pool.groupby("cluster"):
        per_cluster |= set(ranked_ids(group)[:n2])
    assert top <= kept(selection), "every top-n1 example is kept"
    assert per_cluster <= kept(selection), "every cluster's top-n2 is kept"
    assert kept(selection) == top | per_cluster, "nothing else is kept, and each example once"
    assert selection["keep"].sum() == len(top | per_cluster) <= n1 + n2 * pool["cluster"].nunique()


@PROPERTY
@given(ROWS, st.integers(0, 30), st.integers(0, 3), st.randoms())
def test_car_does_not_depend_on_row_order(rows, n1, n2, rnd):
    pool = pool_of(rows)
    shuffled = pool.sample(frac=1.0, random_state=rnd.randint(0, 2**31))
    assert kept(select_car(pool, n1, n2)) == kept(select_car(shuffled, n1, n2))


def test_car_reasons_name_the_rank_and_the_cluster():
    pool = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "score": [5.0, 4.0, 3.0, np.nan],
            "cluster": [17, 17, 17, 3],
            "cluster_name": ["python function list"] * 3 + ["poems"],
        }
    )
    selection = select_car(pool, n1=1, n2=2).set_index("id")
    assert selection.loc["a", "reason"] == "top-1 by score (5) and top-1 of cluster 17 'python function list'"
    assert selection.loc["b", "reason"] == "top-2 of cluster 17 'python function list'"
    assert selection.loc["c", "reason"].startswith("rank 3 by score (3), not in the top 1; rank 3 of cluster 17")
    assert selection.loc["d", "reason"] == "no score: dropped"
    assert selection["cluster"].tolist() == [17, 17, 17, 3]


def test_car_without_clusters_says_what_to_do():
    with pytest.raises(SelectionError, match="compute the clusters"):
        select_car(pd.DataFrame({"id": ["a"], "score": [1.0]}), 1, 1)


# --- random ---------------------------------------------------------------------------------------


@PROPERTY
@given(ROWS, st.integers(0, 80), st.integers(0, 2**32 - 1), st.randoms())
def test_random_draws_exactly_size_and_the_same_sample_for_a_seed(rows, size, seed, rnd):
    pool = pool_of(rows)
    selection = select_random(pool, size, seed)
    assert selection["keep"].sum() == min(size, len(pool))
    assert kept(select_random(pool, size, seed)) == kept(selection)
    shuffled = pool.sample(frac=1.0, random_state=rnd.randint(0, 2**31))
    assert kept(select_random(shuffled, size, seed)) == kept(selection)
    assert all(f"(seed {seed})" in r for r in selection["reason"])


def test_different_seeds_draw_different_samples():
    pool = pool_of([(1.0, 0, None)] * 200)
    assert kept(select_random(pool, 50, 1)) != kept(select_random(pool, 50, 2))


# --- quota ----------------------------------------------------------------------------------------


@PROPERTY
@given(ROWS, st.integers(0, 10), st.integers(0, 10))
def test_quota_keeps_the_best_of_each_category_up_to_its_quota(rows, q_open, q_coding):
    pool = pool_of(rows)
    selection = select_quota(pool, {"open_qa": q_open, "coding": q_coding})
    for category, quota in (("open_qa", q_open), ("coding", q_coding)):
        group = pool[pool["category"] == category]
        assert kept(selection) & set(group["id"]) == set(ranked_ids(group)[:quota])
    unlisted = pool[~pool["category"].isin(["open_qa", "coding"])]
    assert set(unlisted["id"]) <= kept(selection)


def test_quota_default_and_random_draw():
    pool = pool_of([(float(i % 5), 0, "a" if i < 30 else "b") for i in range(50)])
    selection = select_quota(pool, {"a": 3}, default=5, by="random", seed=7)
    assert selection.groupby("category")["keep"].sum().to_dict() == {"a": 3, "b": 5}
    assert kept(selection) == kept(select_quota(pool, {"a": 3}, default=5, by="random", seed=7))
    assert "random draw (seed 7)" in selection["reason"].iloc[0]


# --- overrides and balance ------------------------------------------------------------------------


def test_overrides_apply_last_and_say_who_decided_and_why():
    pool = pd.DataFrame({"id": ["a", "b", "c"], "score": [5.0, 1.0, 3.0]})
    selection = apply_overrides(
        select_threshold(pool, 3.0),
        {
            "a": {"decision": "drop", "user": "bob", "reason": "wrong answer"},
            "b": {"decision": "keep", "user": "alice", "reason": "rare skill"},
        },
    ).set_index("id")
    assert selection.loc["a", "keep"] == False and selection.loc["a", "reason"] == "dropped by bob: wrong answer"
    assert selection.loc["b", "keep"] == True and selection.loc["b", "reason"] == "kept by alice: rare skill"
    assert selection.loc["c", "reason"] == "score 3 ≥ τ 3" and selection.loc["c", "decided_by"] == ""
    assert selection.loc["a", "machine_keep"] == True and selection.loc["a", "machine_reason"] == "score 5 ≥ τ 3"


def test_balance_report_shows_a_starved_skill_like_alpagasus_coding():
    # 1000 examples, 18% kept overall; 100 coding examples of which 12% kept (AlpaGasus appendix E).
    texts = ["Write a Python function"] * 40 + ["Fix this Java code"] * 30 + ["C++ pointers"] * 20 + ["a C# class"] * 10
    texts += ["Write a JavaScript poem"] + ["Describe a sunset"] * 899
    keep = np.zeros(1000, bool)
    keep[[0, 1, 2, 3, 4, 40, 41, 42, 70, 71, 90, 91]] = True  # 12 coding examples kept
    keep[100:268] = True  # 168 others: 180 kept in all
    selection = pd.DataFrame({"id": [str(i) for i in range(1000)], "keep": keep, "reason": ""})
    categories = ["coding"] * 100 + ["general_qa"] * 900
    report = balance_report(selection, categories, texts).set_index("group")
    assert report.loc["all examples", "kept_ratio"] == pytest.approx(0.18)
    assert report.loc[CODING_GROUP, ["total", "kept"]].tolist() == [100, 12]
    assert report.loc["Java", "total"] == 30, "JavaScript is not Java"
    assert report.loc["C++", "total"] == 20 and report.loc["C#", "total"] == 10 and report.loc["Python", "total"] == 40
    assert report.loc[CODING_GROUP, "note"] == "starved: keeps 12% (loses 88%) against 18% overall"
    assert report.loc["coding", "vs_overall"] == pytest.approx(0.12 / 0.18)
    assert report.loc["general_qa", "note"] == ""


# --- records, manifests, export and rebuild --------------------------------------------------------


def rated_records(n: int = 40) -> tuple[list[Record], np.ndarray]:
    records = [
        Record(
            f"Question {i} about {'python' if i % 4 == 0 else 'cooking'}", "", f"Answer {i}", category=["a", "b"][i % 2]
        )
        for i in range(n)
    ]
    scores = np.array([(i * 37 % 11) / 2 for i in range(n)], float)
    scores[3] = np.nan
    return records, scores


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_export_writes_kept_rows_with_reasons_and_a_manifest_that_rebuilds_them(
    tmp_path: Path, settings: Settings, suffix: str
):
    records, scores = rated_records()
    run = select_records(records, "threshold", {"tau": 3.0}, settings, scores, dataset_name="toy")
    out = tmp_path / f"kept{suffix}"
    exported = export_selection(records, run.selection, out, run.manifest)
    back = read_file(out).records
    assert [r.id for r in back] == run.kept_ids and exported.rows == len(run.kept_ids) > 0
    assert all(r.meta["keep"] is True and r.meta["reason"].startswith("score ") for r in back)
    manifest = read_manifest(exported.manifest_path)
    assert manifest["method"] == "threshold" and manifest["params"] == {"tau": 3.0}
    assert manifest["counts"] == {"total": 40, "kept": len(run.kept_ids), "dropped": 40 - len(run.kept_ids)}
    assert manifest["export"]["file"] == out.name and manifest["dataset"]["n"] == 40
    rebuilt = rebuild_from_manifest(manifest, records, settings, scores)
    assert rebuilt.kept_ids == run.kept_ids


def test_export_all_rows_includes_the_dropped_ones_with_their_reasons(tmp_path: Path, settings: Settings):
    records, scores = rated_records()
    run = select_records(records, "random", {"size": 5, "seed": 3}, settings, scores)
    exported = export_selection(records, run.selection, tmp_path / "all.jsonl", run.manifest, include_dropped=True)
    rows = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert exported.rows == 40 and sum(r["keep"] for r in rows) == 5
    assert {r["reason"] for r in rows} == {
        "drawn in random sample of 5 (seed 3)",
        "not drawn in random sample of 5 (seed 3)",
    }
    assert read_manifest(exported.manifest_path)["seed"] == 3


def test_rebuild_refuses_other_data_or_other_scores(settings: Settings):
    records, scores = rated_records()
    run = select_records(records, "quota", {"quotas": {"a": 4}}, settings, scores)
    with pytest.raises(ManifestMismatch, match="not the data the selection was made from"):
        rebuild_from_manifest(run.manifest, records[:-1], settings, scores[:-1])
    changed = scores.copy()
    changed[0] += 1
    with pytest.raises(ManifestMismatch, match="scores differ"):
        rebuild_from_manifest(run.manifest, records, settings, changed)
    tampered = dict(run.manifest, kept_hash="0" * 32)
    with pytest.raises(ManifestMismatch, match="not the same ones"):
        rebuild_from_manifest(tampered, records, settings, scores)


def test_a_rebuild_replays_the_overrides_recorded_in_the_manifest(settings: Settings):
    records, scores = rated_records()
    decision = {"decision": "keep", "user": "alice", "reason": "keeps a rare skill"}
    run = select_records(records, "threshold", {"tau": 4.0}, settings, scores, overrides={records[3].id: decision})
    assert records[3].id in run.kept_ids and run.manifest["overrides"][0]["user"] == "alice"
    assert rebuild_from_manifest(run.manifest, records, settings, scores).kept_ids == run.kept_ids


def test_a_saved_selection_is_listed_and_rebuilt_from_the_store(store: Store, settings: Settings):
    records, scores = rated_records()
    info = store.datasets.create("toy", records)
    store.ratings.save([RatingRow(r.id, "llm", "v1", "ok", float(s)) for r, s in zip(records, scores) if not math.isnan(s)])
    store.overrides.add(info.id, records[0].id, "drop", "bob", "duplicate of another")
    from curation.select import scores_from_store

    stored_scores, source = scores_from_store(store, info.id, records, "llm")
    assert source.rater_version == "v1" and np.array_equal(np.isnan(stored_scores), np.isnan(scores))
    run = select_records(
        records, "threshold", {"tau": 2.0}, settings, stored_scores, source, store.overrides.in_force(info.id), "toy"
    )
    saved = store.selections.save(info.id, "tau-2", run.manifest, created_by="bob")
    assert [s.name for s in store.selections.all(info.id)] == ["tau-2"] and saved.n_kept == len(run.kept_ids)
    again = store.selections.find(info.id, "tau-2")
    assert again.method == "threshold" and again.manifest["rater"]["rater"] == "llm"
    rebuilt = rebuild_from_manifest(again.manifest, store.datasets.records(info.id), settings, stored_scores)
    assert rebuilt.kept_ids == run.kept_ids and records[0].id not in rebuilt.kept_ids
    assert rebuild_saved(store, settings, saved.id).kept_ids == run.kept_ids
    with pytest.raises(LookupError, match="saved: tau-2"):
        store.selections.find(info.id, "other")


def test_make_pool_rejects_misaligned_scores():
    records, scores = rated_records(5)
    with pytest.raises(SelectionError, match="4 scores for 5 records"):
        make_pool(records, scores[:4])


@hsettings(deadline=None, max_examples=25)
@given(st.sampled_from(["threshold", "random", "quota"]), st.integers(0, 2**16))
def test_every_method_gives_one_row_per_example_with_a_reason(method, seed):
    records, scores = rated_records(30)
    params = {
        "threshold": {"tau": 2.5},
        "random": {"size": 10, "seed": seed},
        "quota": {"quotas": {"b": 3}, "seed": seed},
    }
    run = select_records(records, method, params[method], Settings(), scores)
    assert run.selection["id"].tolist() == [r.id for r in records]
    assert run.selection["reason"].map(lambda r: isinstance(r, str) and len(r) > 0).all()
