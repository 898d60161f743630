"""A study's results for its lead: every number of the results page and of `study results`, from the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from curation.judges.rule import ORDERS
from curation.judges.stats import Tally, item_results
from curation.store import Store
from curation.store.studies import StudyInfo
from curation.studies import stats

FLIP = {"win": "lose", "tie": "tie", "lose": "win"}


@dataclass(frozen=True)
class StudyResults:
    study: StudyInfo
    votes: pd.DataFrame  # every stored answer (skips and repeats marked)
    items: pd.DataFrame  # per item: category, win/tie/lose votes, votes, majority
    wtl: Tally  # over items with at least one counted vote
    overall: pd.DataFrame  # WS, WR, QS: value, low, high
    per_category: pd.DataFrame
    kappa: float
    kappa_items: int
    voters: pd.DataFrame  # per voter: votes, agreement with majority, repeats, consistency, A share
    position: pd.DataFrame
    judges: pd.DataFrame

    @property
    def counted_votes(self) -> int:
        return int(self.items["votes"].sum()) if len(self.items) else 0

    @property
    def complete_items(self) -> int:
        return int((self.items["votes"] >= self.study.votes_per_item).sum()) if len(self.items) else 0


def results(store: Store, study: StudyInfo, judges: Mapping[str, Mapping[str, str]] | None = None,
            n_boot: int = 2000) -> StudyResults:
    """Majority per item (ties as "Neither"), W/T/L from the study model's side, κ, per-voter checks."""
    judges = {**judges_in_store(store, study), **(judges or {})}
    votes = store.studies.votes_frame(study.id)
    items = stats.item_majorities(votes)
    verdicts = items["majority"].tolist()
    kappa, kappa_items = stats.study_kappa(items, study.votes_per_item)
    return StudyResults(
        study=study, votes=votes, items=items, wtl=stats.count_wtl(verdicts),
        overall=stats.bootstrap_scores(verdicts, n_boot=n_boot),
        per_category=per_category(items, n_boot), kappa=kappa, kappa_items=kappa_items,
        voters=voter_table(votes, items), position=stats.position_preference(votes),
        judges=stats.judge_agreement(items, judges),
    )


def judges_in_store(store: Store, study: StudyInfo) -> dict[str, dict[str, str]]:
    """Every judge run of the same two models (either way round): its both-orders verdicts by item id,
    turned to the study model's side. Only items of the study count (the agreement table says how many)."""
    found: dict[str, dict[str, str]] = {}
    for run in store.judgments.runs():
        if {run.model_a, run.model_b} != {study.model, study.baseline}:
            continue
        flip = run.model_a != study.model
        orders = run.params.get("orders") or list(ORDERS)
        verdicts = {i.item_id: (FLIP[i.outcome] if flip else i.outcome)
                    for i in item_results(store.judgments.rows(run.id), orders) if i.outcome in FLIP}
        if verdicts:
            found[f"#{run.id} {run.testset} · {run.judge} ({run.judge_model})"] = verdicts
    return found


def per_category(items: pd.DataFrame, n_boot: int = 2000) -> pd.DataFrame:
    rows = []
    for category, group in items.groupby("category"):
        verdicts = group["majority"].tolist()
        wtl = stats.count_wtl(verdicts)
        ci = stats.bootstrap_scores(verdicts, n_boot=n_boot).set_index("score")
        rows.append({"category": category or "(none)", "items": wtl.n, "W": wtl.win, "T": wtl.tie, "L": wtl.lose,
                     "WS": ci.at["WS", "value"], "WS low": ci.at["WS", "low"], "WS high": ci.at["WS", "high"],
                     "WR": ci.at["WR", "value"], "QS": ci.at["QS", "value"]})
    return pd.DataFrame(rows, columns=["category", "items", "W", "T", "L", "WS", "WS low", "WS high", "WR", "QS"])


def voter_table(votes: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    agreement = stats.voter_agreement(votes, items)
    consistency = stats.self_consistency(votes)
    position = stats.position_preference(votes)
    position = position[position["voter"] != "all"][["voter", "A share"]]
    skips = votes[votes["choice"] == "skip"].groupby("voter").size().rename("skips").reset_index()
    table = agreement.merge(consistency, on="voter", how="outer").merge(position, on="voter", how="outer")
    table = table.merge(skips, on="voter", how="outer")
    table["skips"] = table["skips"].fillna(0).astype(int)
    table["repeats"] = table["repeats"].fillna(0).astype(int)
    table["votes"] = table["votes"].fillna(0).astype(int)
    return table[["voter", "votes", "agreement", "repeats", "consistency", "A share", "skips"]]
