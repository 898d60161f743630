"""The both-orders rule (all nine combinations) and the scores of METHODS.md §2e on hand-computed examples."""

from __future__ import annotations

import pytest

from curation.judges.rule import item_outcome, outcome_for_a, winner_model
from curation.judges.stats import (
    ItemResult,
    Tally,
    agreement,
    bootstrap_ci,
    capacity,
    item_results,
    longer_answer_share,
    position_bias,
    summarize,
    tally,
)
from curation.store import JudgmentRow


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("win", "win", "win"),
        ("win", "tie", "win"),
        ("tie", "win", "win"),
        ("tie", "tie", "tie"),
        ("win", "lose", "tie"),
        ("lose", "win", "tie"),
        ("lose", "lose", "lose"),
        ("lose", "tie", "lose"),
        ("tie", "lose", "lose"),
    ],
)
def test_both_orders_rule(first: str, second: str, expected: str) -> None:
    assert item_outcome(first, second) == expected


def test_positions_become_models_by_order() -> None:
    assert winner_model("1", "ab") == "a" and winner_model("2", "ab") == "b"
    assert winner_model("1", "ba") == "b" and winner_model("2", "ba") == "a"
    assert winner_model("tie", "ba") == "tie"
    assert [outcome_for_a(w) for w in ("a", "tie", "b")] == ["win", "tie", "lose"]


def test_ws_wr_qs_by_hand() -> None:
    # W=3, T=1, L=1: WS = 1 + (3-1)/5 = 1.4; WR = 3/5; QS = (3+1)/5.
    counts = Tally(win=3, tie=1, lose=1, unparsed=2)
    assert counts.n == 5
    assert counts.ws == pytest.approx(1.4)
    assert counts.wr == pytest.approx(0.6)
    assert counts.qs == pytest.approx(0.8)
    assert Tally(lose=4).ws == 0.0 and Tally(win=4).ws == 2.0 and Tally().ws is None


def row(item: str, order: str, winner: str | None, status: str = "ok", position: int = 0, **extra) -> JudgmentRow:
    values = {"category": "cat", "instruction": "q", "input": "", "answer_a": "a", "answer_b": "bb", **extra}
    return JudgmentRow(item, order, position, status=status, winner=winner, **values)


def test_unparsed_and_missing_reviews_are_counted_not_drawn() -> None:
    rows = [
        row("1", "ab", "a"), row("1", "ba", "a"),
        row("2", "ab", "a"), row("2", "ba", None, status="unparsed", raw="prose"),
        row("3", "ab", "b"), row("3", "ba", None, status="error"),
        row("4", "ab", "b"),
    ]
    results = {r.item_id: r.outcome for r in item_results(rows)}
    assert results == {"1": "win", "2": "unparsed", "3": "pending", "4": "pending"}
    counts = tally(item_results(rows))
    assert (counts.n, counts.win, counts.tie, counts.unparsed, counts.pending) == (1, 1, 0, 1, 2)


def test_a_single_order_import_uses_its_one_review() -> None:
    rows = [row("1", "ab", "b"), row("2", "ab", "tie")]
    assert [r.outcome for r in item_results(rows, orders=("ab",))] == ["lose", "tie"]


def test_capacity_is_total_score_over_total_score() -> None:
    rows = [
        row("1", "ab", "a", score_a=8, score_b=6), row("1", "ba", "a", score_a=9, score_b=7),
        row("2", "ab", "b", score_a=3, score_b=7, position=1), row("2", "ba", "tie", score_a=5, score_b=5, position=1),
    ]
    # A: 8+9+3+5 = 25, B: 6+7+7+5 = 25 -> 100 %.
    assert capacity(item_results(rows)) == pytest.approx(100.0)
    assert capacity(item_results(rows[:2])) == pytest.approx(100 * 17 / 13)


def test_position_bias_and_consistency() -> None:
    rows = [
        row("1", "ab", "a"), row("1", "ba", "a"),  # consistent: A both times (first, then second position)
        row("2", "ab", "a", position=1), row("2", "ba", "b", position=1),  # first position won twice
        row("3", "ab", "b", position=2), row("3", "ba", "b", position=2),  # consistent
        row("4", "ab", "tie", position=3), row("4", "ba", "a", position=3),
    ]
    bias = position_bias(rows, item_results(rows))
    assert bias["consistency"] == pytest.approx(2 / 4)
    # first-position wins: 1ab, 2ab, 2ba, 3ba = 4; second: 1ba, 3ab, 4ba = 3; one tie.
    assert (bias["first_position_wins"], bias["second_position_wins"], bias["position_ties"]) == (4, 3, 1)
    assert bias["favours"] == "first"


def test_longer_answer_share() -> None:
    items = [
        ItemResult("1", None, "win", len_a=100, len_b=10),  # longer won
        ItemResult("2", None, "lose", len_a=100, len_b=10),  # shorter (B) won
        ItemResult("3", None, "lose", len_a=5, len_b=10),  # longer (B) won
        ItemResult("4", None, "tie", len_a=5, len_b=10),  # not decisive
        ItemResult("5", None, "win", len_a=7, len_b=7),  # equal length: left out
    ]
    assert longer_answer_share(items) == {"share": pytest.approx(2 / 3), "longer_won": 2, "decided": 3}


def test_bootstrap_interval_holds_the_estimate_and_is_repeatable() -> None:
    outcomes = ["win"] * 30 + ["tie"] * 10 + ["lose"] * 20 + ["unparsed"] * 3
    first = bootstrap_ci(outcomes, samples=500, seed=1)
    assert first == bootstrap_ci(outcomes, samples=500, seed=1)
    low, high = first["ws"]
    assert low < 1 + (30 - 20) / 60 < high
    assert bootstrap_ci(["win"] * 5)["ws"] == (2.0, 2.0)
    assert bootstrap_ci(["unparsed"])["ws"] is None


def test_agreement_between_judges() -> None:
    first = [ItemResult(str(i), None, o) for i, o in enumerate(["win", "win", "tie", "lose"])]
    second = [ItemResult(str(i), None, o) for i, o in enumerate(["win", "lose", "tie", "lose", "win"])]
    [pair] = agreement({"vicuna": first, "zheng": second})
    assert pair["items"] == 4 and pair["agreement"] == pytest.approx(0.75)
    # p_o = .75; p_e = (.5*.25) + (.25*.25) + (.25*.5) = .3125; kappa = (.75-.3125)/(1-.3125)
    assert pair["kappa"] == pytest.approx((0.75 - 0.3125) / 0.6875)


def test_summary_per_category() -> None:
    rows = [
        row("1", "ab", "a", category="math"), row("1", "ba", "a", category="math"),
        row("2", "ab", "b", category="math", position=1), row("2", "ba", "b", category="math", position=1),
        row("3", "ab", "tie", category="writing", position=2), row("3", "ba", "tie", category="writing", position=2),
    ]
    summary = summarize(rows, samples=50)
    assert (summary["n"], summary["win"], summary["tie"], summary["lose"]) == (3, 1, 1, 1)
    assert summary["per_category"]["math"]["ws"] == pytest.approx(1.0)
    assert summary["per_category"]["writing"]["qs"] == pytest.approx(1.0)
    assert summary["consistency"] == pytest.approx(1.0)
