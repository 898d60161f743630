"""Numbers of a human study: majorities, W/T/L and WS/WR/QS with bootstrap intervals, agreement.

Verdicts are always from the study model's side: ``win``, ``tie`` (the voter chose "Neither") or
``lose``. Pure functions on pandas frames; nothing here touches the store.

W/T/L, WS/WR/QS and their bootstrap intervals are the judges' (curation.judges.stats: Tally,
bootstrap_ci), so humans and LLM judges are scored by one set of formulas (METHODS.md §2e).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from curation.judges.stats import Tally, bootstrap_ci

VERDICTS = ("win", "tie", "lose")


def count_wtl(verdicts: Iterable[str]) -> Tally:
    """W/T/L of item verdicts (win/tie/lose from the study model's side) as the judges count them."""
    listed = list(verdicts)
    return Tally(listed.count("win"), listed.count("tie"), listed.count("lose"))


def scores(wtl: Tally) -> dict[str, float]:
    """WS = 1 + (W − L)/N, WR = W/N, QS = (W + T)/N (METHODS.md §2e); NaN for an empty set."""
    nan = float("nan")
    return {"WS": nan if wtl.ws is None else wtl.ws, "WR": nan if wtl.wr is None else wtl.wr,
            "QS": nan if wtl.qs is None else wtl.qs}


def bootstrap_scores(verdicts: Iterable[str], n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """WS, WR, QS with the judges' percentile bootstrap interval over items: columns score, value, low, high."""
    listed = list(verdicts)
    point = scores(count_wtl(listed))
    intervals = bootstrap_ci(listed, samples=n_boot, seed=seed, level=level)
    rows = []
    for name in ("WS", "WR", "QS"):
        low, high = intervals[name.lower()] or (point[name], point[name])
        rows.append({"score": name, "value": point[name], "low": low, "high": high})
    return pd.DataFrame(rows)


def majority(verdicts: Iterable[str]) -> str:
    """The verdict most voters gave; a tie between the most common verdicts counts as "tie" (Neither)."""
    counts = pd.Series(list(verdicts)).value_counts()
    if counts.empty:
        return ""
    top = counts[counts == counts.max()]
    return str(top.index[0]) if len(top) == 1 else "tie"


def counted(votes: pd.DataFrame) -> pd.DataFrame:
    """The votes that count: first-time answers, not skips (repeats only measure self-consistency)."""
    return votes[(~votes["is_repeat"].astype(bool)) & (votes["choice"] != "skip")]


def item_majorities(votes: pd.DataFrame) -> pd.DataFrame:
    """Per item: category, votes for win/tie/lose, number of votes and the majority verdict."""
    first = counted(votes)
    table = (first.pivot_table(index=["item_key", "category"], columns="verdict", values="voter", aggfunc="count",
                               fill_value=0).reindex(columns=list(VERDICTS), fill_value=0).reset_index())
    table.columns.name = None
    table["votes"] = table[list(VERDICTS)].sum(axis=1).astype(int)
    table["majority"] = [majority(_expand(row)) for row in table[list(VERDICTS)].itertuples(index=False)]
    return table


def _expand(row: tuple[int, int, int]) -> list[str]:
    return [v for v, n in zip(VERDICTS, row, strict=True) for _ in range(int(n))]


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' κ of an items × categories matrix of rater counts (every item rated by the same number)."""
    counts = np.asarray(counts, dtype=float)
    if counts.shape[0] == 0:
        return float("nan")
    raters = counts.sum(axis=1)
    if not np.all(raters == raters[0]) or raters[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (at least 2) of ratings on every item")
    n = raters[0]
    per_item = ((counts**2).sum(axis=1) - n) / (n * (n - 1))
    shares = counts.sum(axis=0) / counts.sum()
    expected = float((shares**2).sum())
    if expected == 1.0:
        return float("nan")  # every rating in one category: agreement beyond chance is undefined
    return float((per_item.mean() - expected) / (1 - expected))


def study_kappa(majorities: pd.DataFrame, votes_per_item: int) -> tuple[float, int]:
    """Fleiss' κ over the items that have their full number of votes; (κ, items used)."""
    full = majorities[majorities["votes"] == votes_per_item]
    if len(full) == 0 or votes_per_item < 2:
        return float("nan"), 0
    return fleiss_kappa(full[list(VERDICTS)].to_numpy()), len(full)


def voter_agreement(votes: pd.DataFrame, majorities: pd.DataFrame) -> pd.DataFrame:
    """Per voter: counted votes, and the share that equal the item's majority."""
    joined = counted(votes).merge(majorities[["item_key", "majority"]], on="item_key")
    joined["agrees"] = joined["verdict"] == joined["majority"]
    return joined.groupby("voter").agg(votes=("agrees", "size"), agreement=("agrees", "mean")).reset_index()


def self_consistency(votes: pd.DataFrame) -> pd.DataFrame:
    """Per voter: hidden repeats answered, and the share answered with the same verdict as the first time."""
    answered = votes[votes["choice"] != "skip"]
    first = answered[~answered["is_repeat"].astype(bool)][["voter", "item_key", "verdict"]]
    again = answered[answered["is_repeat"].astype(bool)][["voter", "item_key", "verdict"]]
    pairs = first.merge(again, on=["voter", "item_key"], suffixes=("_first", "_repeat"))
    pairs["same"] = pairs["verdict_first"] == pairs["verdict_repeat"]
    out = pairs.groupby("voter").agg(repeats=("same", "size"), consistency=("same", "mean")).reset_index()
    return out


def position_preference(votes: pd.DataFrame) -> pd.DataFrame:
    """Per voter (and "all"): how often they chose A, B and Neither; ``A share`` of A/B choices (0.5 = none)."""
    answered = votes[votes["choice"].isin(["A", "B", "neither"])]
    rows = [_position_row("all", answered)]
    rows += [_position_row(str(voter), group) for voter, group in answered.groupby("voter")]
    return pd.DataFrame(rows)


def _position_row(voter: str, group: pd.DataFrame) -> dict[str, object]:
    a, b = int((group["choice"] == "A").sum()), int((group["choice"] == "B").sum())
    return {"voter": voter, "answers": len(group), "A": a, "B": b, "neither": len(group) - a - b,
            "A share": a / (a + b) if a + b else float("nan")}


def judge_agreement(majorities: pd.DataFrame, judges: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """Per judge: items judged by both, agreement with the human majority with ties, and without ties.

    "Without ties" keeps the items where neither the humans nor the judge said tie (the AlpaGasus way of
    checking that a judge picks the same winner).
    """
    human = dict(zip(majorities["item_key"], majorities["majority"], strict=True))
    rows = []
    for judge, verdicts in judges.items():
        both = [(human[k], v) for k, v in verdicts.items() if human.get(k)]
        decided = [(h, v) for h, v in both if h != "tie" and v != "tie"]
        rows.append({"judge": judge, "items": len(both),
                     "agreement (with ties)": _share(h == v for h, v in both),
                     "items without ties": len(decided),
                     "agreement (without ties)": _share(h == v for h, v in decided)})
    return pd.DataFrame(rows, columns=["judge", "items", "agreement (with ties)", "items without ties",
                                       "agreement (without ties)"])


def _share(flags: Iterable[bool]) -> float:
    listed = list(flags)
    return sum(listed) / len(listed) if listed else float("nan")
