"""The study's numbers against hand-computed examples: majority, W/T/L scores, Fleiss' κ, consistency."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from curation.studies import stats


def votes(rows: list[tuple[str, str, str, str, bool]]) -> pd.DataFrame:
    """(item, voter, choice, verdict, is_repeat) rows as the store returns them."""
    return pd.DataFrame([{"item_key": i, "category": "c", "voter": v, "choice": c, "verdict": d, "is_repeat": r,
                          "model_shown_as": "A"} for i, v, c, d, r in rows])


@pytest.mark.parametrize(("verdicts", "expected"), [
    (["win", "win", "lose"], "win"),
    (["win", "tie", "lose"], "tie"),  # three different votes: Neither
    (["win", "lose"], "tie"),  # an even split: Neither
    (["lose", "lose", "tie"], "lose"),
    (["tie", "tie", "win"], "tie"),
])
def test_majority_breaks_ties_as_neither(verdicts, expected):
    assert stats.majority(verdicts) == expected


def test_scores_follow_methods_2e():
    wtl = stats.count_wtl(["win"] * 5 + ["tie"] * 3 + ["lose"] * 2)
    assert (wtl.win, wtl.tie, wtl.lose, wtl.n) == (5, 3, 2, 10)
    assert stats.scores(wtl) == pytest.approx({"WS": 1.3, "WR": 0.5, "QS": 0.8})


def test_bootstrap_interval_brackets_the_value_and_is_seeded():
    verdicts = ["win"] * 30 + ["tie"] * 10 + ["lose"] * 20
    table = stats.bootstrap_scores(verdicts, n_boot=500, seed=1).set_index("score")
    for score in ("WS", "WR", "QS"):
        assert table.at[score, "low"] <= table.at[score, "value"] <= table.at[score, "high"]
        assert table.at[score, "low"] < table.at[score, "high"]
    assert table.equals(stats.bootstrap_scores(verdicts, n_boot=500, seed=1).set_index("score"))


def test_fleiss_kappa_of_a_hand_computed_example():
    # 4 items, 3 raters, categories (win, tie, lose):
    # P_i = 1, 1/3, 1, 0 -> P̄ = 7/12; p = (6/12, 5/12, 1/12) -> P̄e = 62/144; κ = (7/12 - 62/144)/(1 - 62/144) = 11/41
    counts = np.array([[3, 0, 0], [2, 1, 0], [0, 3, 0], [1, 1, 1]])
    assert stats.fleiss_kappa(counts) == pytest.approx(11 / 41)


def test_fleiss_kappa_of_the_textbook_example():
    # Fleiss (1971) as reproduced on Wikipedia: 10 items, 14 raters, 5 categories, κ = 0.210.
    counts = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                       [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert stats.fleiss_kappa(counts) == pytest.approx(0.210, abs=0.001)


def test_fleiss_kappa_refuses_unequal_rater_counts():
    with pytest.raises(ValueError, match="same number"):
        stats.fleiss_kappa(np.array([[3, 0, 0], [1, 1, 0]]))


def test_item_majorities_and_voter_agreement_use_first_time_votes_only():
    frame = votes([
        ("q1", "ann", "A", "win", False), ("q1", "bob", "A", "win", False), ("q1", "cid", "B", "lose", False),
        ("q2", "ann", "neither", "tie", False), ("q2", "bob", "B", "lose", False), ("q2", "cid", "A", "win", False),
        ("q3", "ann", "skip", "skip", False), ("q3", "bob", "B", "lose", False),
        ("q1", "ann", "B", "lose", True),  # ann's hidden repeat: not a fourth vote on q1
    ])
    items = stats.item_majorities(frame).set_index("item_key")
    assert items["majority"].to_dict() == {"q1": "win", "q2": "tie", "q3": "lose"}
    assert items["votes"].to_dict() == {"q1": 3, "q2": 3, "q3": 1}
    kappa, used = stats.study_kappa(items.reset_index(), 3)
    assert used == 2 and math.isfinite(kappa)
    agreement = stats.voter_agreement(frame, items.reset_index()).set_index("voter")
    assert agreement.loc["ann"].tolist() == [2, 1.0]  # q1 win = win, q2 tie = tie
    assert agreement.loc["cid"].tolist() == [2, 0.0]
    assert agreement.loc["bob"]["agreement"] == pytest.approx(2 / 3)


def test_self_consistency_compares_a_repeat_with_the_first_answer():
    frame = votes([
        ("q1", "ann", "A", "win", False), ("q1", "ann", "B", "win", True),  # other side, same verdict: consistent
        ("q2", "ann", "A", "win", False), ("q2", "ann", "neither", "tie", True),  # changed her mind
        ("q1", "bob", "A", "win", False), ("q1", "bob", "A", "win", True),
    ])
    table = stats.self_consistency(frame).set_index("voter")
    assert table.loc["ann"].tolist() == [2, 0.5]
    assert table.loc["bob"].tolist() == [1, 1.0]


def test_position_preference_counts_the_shown_side():
    frame = votes([("q1", "ann", "A", "win", False), ("q2", "ann", "A", "lose", False),
                   ("q3", "ann", "B", "win", False), ("q4", "ann", "neither", "tie", False)])
    row = stats.position_preference(frame).set_index("voter").loc["ann"]
    assert (row["A"], row["B"], row["neither"]) == (2, 1, 1)
    assert row["A share"] == pytest.approx(2 / 3)


def test_judge_agreement_with_and_without_ties():
    items = pd.DataFrame({"item_key": ["q1", "q2", "q3", "q4"], "majority": ["win", "tie", "lose", "win"]})
    judges = {"gpt-4": {"q1": "win", "q2": "tie", "q3": "win", "q4": "tie", "q9": "win"}}
    row = stats.judge_agreement(items, judges).iloc[0]
    assert row["items"] == 4  # q9 has no human votes
    assert row["agreement (with ties)"] == pytest.approx(2 / 4)
    assert row["items without ties"] == 2 and row["agreement (without ties)"] == pytest.approx(1 / 2)
