"""The one selection service: the verdict rules exist once, every rater is thresholded on the 0–5 scale."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from curation import explore
from curation.config import Settings
from curation.records import Record
from curation.select import (
    SelectionError,
    apply_overrides,
    balance_of,
    balance_report,
    kept_at,
    override_masks,
    select_dataset,
    select_threshold,
)
from curation.store import RatingRow, Store

PROPERTY = hsettings(deadline=None, max_examples=60)
SCORES = st.lists(st.one_of(st.none(), st.floats(0, 5, allow_nan=False)), max_size=40)
DECISIONS = st.lists(st.sampled_from([None, "keep", "drop"]), max_size=40)


def ids_for(n: int) -> np.ndarray:
    return np.array([hashlib.sha256(str(i).encode()).hexdigest()[:16] for i in range(n)], dtype=object)


@PROPERTY
@given(SCORES, DECISIONS, st.floats(0, 5, allow_nan=False))
def test_the_slider_mask_and_the_full_selection_give_the_same_verdict(scores, decisions, tau):
    values = np.array([np.nan if s is None else s for s in scores], dtype=float)
    ids = ids_for(len(values))
    overrides = {ids[i]: {"decision": d, "user": "ann", "reason": "r"} for i, d in enumerate(decisions[: len(ids)]) if d}
    full = apply_overrides(select_threshold(pd.DataFrame({"id": ids, "score": values}), tau), overrides)
    assert kept_at(values, tau, ids, overrides).tolist() == full["keep"].tolist()
    summary = explore.summarize_tau(scores_of(ids, values), tau, *override_masks(ids, overrides))
    assert summary.kept_mask.tolist() == full["keep"].tolist()


def scores_of(ids: np.ndarray, values: np.ndarray) -> explore.Scores:
    return explore.Scores(ids=ids, values=values, category_codes=np.zeros(len(ids), np.int64), categories=("x",),
                          edges=np.linspace(0, 5, 11), field="score_0_5")


def iqs_like(store: Store, n: int = 20) -> tuple[int, list[Record]]:
    """Raw IQS-like scores -9.5 … 9.5 whose 0–5 calibration is (raw + 10) / 4 (monotone, like the scorer's)."""
    records = [Record(f"Question {i}", "", f"Answer {i}", category="qa") for i in range(n)]
    info = store.datasets.create("iqs-like", records, created_by="tests")
    raw = np.linspace(-9.5, 9.5, n)
    store.ratings.save([RatingRow(r.id, "iqs", "v1", "ok", score=float(s), score_0_5=float((s + 10) / 4))
                        for r, s in zip(records, raw)])
    return info.id, records


def test_tau_is_on_the_0_5_scale_by_default_and_raw_on_request(store: Store, settings: Settings):
    iqs_like(store)
    on_0_5 = select_dataset(store, settings, "iqs-like", "threshold", {"tau": 4.5}, rater="iqs")
    assert on_0_5.manifest["rater"]["field"] == "score_0_5"
    # (raw + 10) / 4 >= 4.5 <=> raw >= 8: two of -9.5, -8.5 … 9.5; on raw scores 4.5 … 9.5 are six.
    assert int(on_0_5.selection["keep"].sum()) == 2
    raw = select_dataset(store, settings, "iqs-like", "threshold", {"tau": 4.5}, rater="iqs", scale="raw")
    assert raw.manifest["rater"]["field"] == "score" and int(raw.selection["keep"].sum()) == 6
    with pytest.raises(SelectionError, match="needs scores"):
        select_dataset(store, settings, "iqs-like", "threshold", {"tau": 4.5})


def test_a_rater_without_a_0_5_score_is_thresholded_on_its_own(store: Store, settings: Settings):
    records = [Record(f"Question {i}", "", f"Answer {i}") for i in range(6)]
    store.datasets.create("llm-only", records, created_by="tests")
    store.ratings.save([RatingRow(r.id, "llm", "v1", "ok", score=float(i)) for i, r in enumerate(records)])
    chosen = select_dataset(store, settings, "llm-only", "threshold", {"tau": 4.5}, rater="llm")
    assert chosen.manifest["rater"]["field"] == "score" and chosen.selection["keep"].sum() == 1


def test_overrides_in_force_come_last_and_the_balance_report_is_one(store: Store, settings: Settings):
    dataset_id, records = iqs_like(store)
    store.overrides.add(dataset_id, records[0].id, "keep", "ann", "a rare skill")
    chosen = select_dataset(store, settings, "iqs-like", "threshold", {"tau": 4.5}, rater="iqs")
    assert chosen.selection.loc[0, "keep"] and chosen.selection.loc[0, "reason"] == "kept by ann: a rare skill"
    ignored = select_dataset(store, settings, "iqs-like", "threshold", {"tau": 4.5}, rater="iqs", use_overrides=False)
    assert not ignored.selection.loc[0, "keep"]
    expected = balance_report(chosen.selection, [r.category for r in records], [r.instruction for r in records])
    pd.testing.assert_frame_equal(balance_of(chosen.selection, chosen.records), expected)


def test_explore_scores_sit_on_the_0_5_scale_with_fixed_bounds(store: Store):
    dataset_id, _ = iqs_like(store)
    examples = store.datasets.frame(dataset_id, with_text=False).reset_index(drop=True)
    scores = explore.align_scores(examples, store.ratings.frame(dataset_id))
    assert scores.field == "score_0_5" and scores.tau_range() == (0.0, 5.0) and scores.scale_label == "the 0–5 scale"
    raw = explore.align_scores(examples, store.ratings.frame(dataset_id), scale="raw")
    assert raw.field == "score" and raw.tau_range() == (-9.5, 9.5)
    table = explore.example_table(store.datasets.frame(dataset_id, with_text=True).reset_index(drop=True),
                                  store.ratings.frame(dataset_id), pd.DataFrame(columns=["id", "name"]))
    assert table["iqs (v1)"].max() == pytest.approx(4.875)
