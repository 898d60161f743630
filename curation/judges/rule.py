"""Positions to models, and the both-orders Win-Tie-Lose rule of AlpaGasus §4 (METHODS.md §2d).

Every item is judged twice: order ``ab`` shows model A's answer first, order ``ba`` shows it second.
"""

from __future__ import annotations

ORDERS = ("ab", "ba")
OUTCOMES = ("win", "tie", "lose")
_POINTS = {"win": 1, "tie": 0, "lose": -1}


def winner_model(position_winner: str, order: str) -> str:
    """The model ("a", "b" or "tie") behind a position verdict ("1", "2", "tie") in this order."""
    if position_winner == "tie":
        return "tie"
    first, second = ("a", "b") if order == "ab" else ("b", "a")
    return first if position_winner == "1" else second


def outcome_for_a(winner: str) -> str:
    """Model A's outcome ("win", "tie", "lose") of one judgment whose winner is "a", "b" or "tie"."""
    return {"a": "win", "tie": "tie", "b": "lose"}[winner]


def item_outcome(*outcomes: str) -> str:
    """A's result on the item from its outcome in each order.

    Win: wins twice, or wins once and draws once. Tie: draws twice, or wins once and loses once.
    Lose: loses twice, or loses once and draws once. (The sign of wins minus losses.) One outcome
    (published single-order reviews) is taken as it is.
    """
    total = sum(_POINTS[outcome] for outcome in outcomes)
    return "win" if total > 0 else ("lose" if total < 0 else "tie")
