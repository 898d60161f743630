"""What a comparison's judgments add up to: pure functions, no store, no I/O.

From the rows of one run (one per item and order): per-item results by the both-orders rule; W/T/L,
WS = 1 + (W - L)/N, WR = W/N, QS = (W + T)/N with bootstrap 95% intervals; capacity (A's total judge
score over B's, %); per category; position consistency and the favoured position; the share of
decisive items won by the longer answer; and agreement between judges on the same items.
Unparsed items are counted and shown, never folded into N as draws.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from curation.judges.rule import ORDERS, item_outcome, outcome_for_a
from curation.store.judgments import JudgmentRow

UNCATEGORISED = "(no category)"


@dataclass(frozen=True)
class ItemResult:
    item_id: str
    category: str | None
    outcome: str  # win | tie | lose (A's, both orders combined) | unparsed | pending
    winners: dict[str, str] = field(default_factory=dict)  # order -> a | b | tie (parsed reviews only)
    score_a: float | None = None  # summed over the orders, when the judge gives scores
    score_b: float | None = None
    len_a: int = 0
    len_b: int = 0


@dataclass(frozen=True)
class Tally:
    win: int = 0
    tie: int = 0
    lose: int = 0
    unparsed: int = 0
    pending: int = 0

    @property
    def n(self) -> int:
        return self.win + self.tie + self.lose

    @property
    def ws(self) -> float | None:
        return None if not self.n else 1 + (self.win - self.lose) / self.n

    @property
    def wr(self) -> float | None:
        return None if not self.n else self.win / self.n

    @property
    def qs(self) -> float | None:
        return None if not self.n else (self.win + self.tie) / self.n

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "win": self.win,
            "tie": self.tie,
            "lose": self.lose,
            "ws": self.ws,
            "wr": self.wr,
            "qs": self.qs,
            "unparsed": self.unparsed,
            "pending": self.pending,
        }


def item_results(rows: Iterable[JudgmentRow], orders: Sequence[str] = ORDERS) -> list[ItemResult]:
    """One result per item, in item order; an item misses nothing only when every order has a review."""
    grouped: dict[str, list[JudgmentRow]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r.position, r.order_shown)):
        grouped[row.item_id].append(row)
    return [_item(item_rows, orders) for item_rows in grouped.values()]


def _item(rows: list[JudgmentRow], orders: Sequence[str]) -> ItemResult:
    first = rows[0]
    parsed = {r.order_shown: r for r in rows if r.status == "ok"}
    statuses = {r.order_shown: r.status for r in rows}
    if any(statuses.get(order) in (None, "error") for order in orders):
        outcome = "pending"
    elif any(status == "unparsed" for status in statuses.values()):
        outcome = "unparsed"
    else:
        outcome = item_outcome(*(outcome_for_a(parsed[order].winner or "tie") for order in orders))
    scored = [r for r in parsed.values() if r.score_a is not None and r.score_b is not None]
    complete_scores = outcome in ("win", "tie", "lose") and len(scored) == len(orders)
    return ItemResult(
        first.item_id,
        first.category,
        outcome,
        {order: r.winner or "tie" for order, r in parsed.items()},
        sum(r.score_a for r in scored) if complete_scores else None,  # type: ignore[misc]
        sum(r.score_b for r in scored) if complete_scores else None,  # type: ignore[misc]
        len(first.answer_a),
        len(first.answer_b),
    )


def tally(items: Iterable[ItemResult]) -> Tally:
    counts = defaultdict(int)
    for item in items:
        counts[item.outcome] += 1
    return Tally(counts["win"], counts["tie"], counts["lose"], counts["unparsed"], counts["pending"])


def bootstrap_ci(
    outcomes: Sequence[str], samples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float] | None]:
    """Percentile intervals of WS, WR and QS over items resampled with replacement (fixed seed)."""
    decided = [o for o in outcomes if o in ("win", "tie", "lose")]
    if not decided or samples < 1:
        return {"ws": None, "wr": None, "qs": None}
    values = np.array([{"win": 1, "tie": 0, "lose": -1}[o] for o in decided])
    rng = np.random.default_rng(seed)
    draws = values[rng.integers(0, len(values), size=(samples, len(values)))]
    n = len(values)
    wins = (draws == 1).sum(axis=1)
    losses = (draws == -1).sum(axis=1)
    stats = {"ws": 1 + (wins - losses) / n, "wr": wins / n, "qs": (n - losses) / n}
    low, high = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    return {name: (float(np.percentile(v, low)), float(np.percentile(v, high))) for name, v in stats.items()}


def capacity(items: Iterable[ItemResult]) -> float | None:
    """A's total judge score divided by B's on the same (fully scored) items, as a percentage."""
    scored = [i for i in items if i.score_a is not None and i.score_b is not None]
    total_b = sum(i.score_b for i in scored)  # type: ignore[misc]
    if not scored or total_b <= 0:
        return None
    return 100.0 * sum(i.score_a for i in scored) / total_b  # type: ignore[misc]


def position_bias(rows: Iterable[JudgmentRow], items: Sequence[ItemResult]) -> dict[str, Any]:
    """Consistency (share of items whose two verdicts name the same model) and which position wins more."""
    both = [i for i in items if len(i.winners) >= 2]
    consistent = sum(1 for i in both if len(set(i.winners.values())) == 1)
    first = second = ties = 0
    for row in rows:
        if row.status != "ok" or row.winner is None:
            continue
        if row.winner == "tie":
            ties += 1
        elif (row.winner == "a") == (row.order_shown == "ab"):
            first += 1
        else:
            second += 1
    decisive = first + second
    first_share = first / decisive if decisive else None
    favours = None
    if first_share is not None:
        favours = "first" if first_share > 0.5 else ("second" if first_share < 0.5 else "neither")
    return {
        "consistency": consistent / len(both) if both else None,
        "consistent_items": consistent,
        "items_with_both_orders": len(both),
        "first_position_wins": first,
        "second_position_wins": second,
        "position_ties": ties,
        "first_position_share": first_share,
        "favours": favours,
    }


def longer_answer_share(items: Iterable[ItemResult]) -> dict[str, Any]:
    """Of the items one model won outright, the share won by the longer answer (equal lengths left out)."""
    decided = [i for i in items if i.outcome in ("win", "lose") and i.len_a != i.len_b]
    longer = sum(1 for i in decided if (i.outcome == "win") == (i.len_a > i.len_b))
    return {"share": longer / len(decided) if decided else None, "longer_won": longer, "decided": len(decided)}


def per_category(items: Sequence[ItemResult]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[ItemResult]] = defaultdict(list)
    for item in items:
        groups[item.category or UNCATEGORISED].append(item)
    return {
        name: {**tally(group).as_dict(), "capacity": capacity(group)}
        for name, group in sorted(groups.items(), key=lambda kv: kv[0].lower())
    }


def summarize(
    rows: Sequence[JudgmentRow], orders: Sequence[str] = ORDERS, samples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The summary of one run, from A's side (the headless contract's summary.json, minus run details)."""
    items = item_results(rows, orders)
    counts = tally(items)
    bias = position_bias(rows, items)
    return {
        **counts.as_dict(),
        "items": len(items),
        "ci95": bootstrap_ci([i.outcome for i in items], samples, seed),
        "capacity": capacity(items),
        "consistency": bias["consistency"],
        "position": bias,
        "longer_answer": longer_answer_share(items),
        "per_category": per_category(items),
    }


def agreement(results: Mapping[str, Sequence[ItemResult]]) -> list[dict[str, Any]]:
    """Item-level agreement of every two judges (runs) on the items both decided: share equal and Cohen's κ."""
    rows = []
    for (name_1, items_1), (name_2, items_2) in combinations(results.items(), 2):
        first = {i.item_id: i.outcome for i in items_1 if i.outcome in ("win", "tie", "lose")}
        second = {i.item_id: i.outcome for i in items_2 if i.outcome in ("win", "tie", "lose")}
        common = sorted(set(first) & set(second))
        pairs = [(first[k], second[k]) for k in common]
        rows.append({"judge_1": name_1, "judge_2": name_2, "items": len(pairs), **_agreement(pairs)})
    return rows


def _agreement(pairs: list[tuple[str, str]]) -> dict[str, float | None]:
    if not pairs:
        return {"agreement": None, "kappa": None}
    n = len(pairs)
    observed = sum(1 for a, b in pairs if a == b) / n
    expected = sum(
        (sum(1 for a, _ in pairs if a == label) / n) * (sum(1 for _, b in pairs if b == label) / n)
        for label in ("win", "tie", "lose")
    )
    kappa = None if expected >= 1 else (observed - expected) / (1 - expected)
    return {"agreement": observed, "kappa": kappa}
