"""The human study: a blind A/B vote on two models' answers, three voters per item, beside the LLM judges.

Entry points (each checks the acting person's role first):

- :func:`create_study` — a lead makes a study from two models' answers (see :mod:`curation.studies.inputs`).
- :func:`next_item` — the voter's current item from the server-side queue (None when they are done).
- :func:`submit_vote` — store the voter's answer (A, B, neither or skip); then call :func:`next_item`.
- :func:`results` — majorities, W/T/L, WS/WR/QS with intervals, agreement (:mod:`curation.studies.results`).
- :func:`export_votes` — every vote as CSV or JSONL, with voter, shown order and times.
"""

from __future__ import annotations

import random

from curation.store import Store
from curation.store.studies import Assignment, LeaseLost, StudyError, StudyInfo, VoteReceipt
from curation.studies.export import export_votes
from curation.studies.inputs import (
    Answers,
    Pairing,
    answers_in_store,
    answers_in_workspace,
    pair,
    read_answers,
    read_judgments,
)
from curation.studies.results import StudyResults, results
from curation.studio_auth import Forbidden, Person, require

__all__ = [
    "Answers",
    "Assignment",
    "Forbidden",
    "LeaseLost",
    "StudyError",
    "StudyInfo",
    "StudyResults",
    "VoteReceipt",
    "answers_in_store",
    "answers_in_workspace",
    "create_study",
    "export_votes",
    "next_item",
    "read_answers",
    "read_judgments",
    "results",
    "studies_for",
    "submit_vote",
]


def create_study(store: Store, person: Person | None, name: str, model: Answers, baseline: Answers, *,
                 testsets: list[str] | None = None, sample: int | None = None, seed: int = 0,
                 votes_per_item: int = 3, voters: list[str] | None = None, repeat_share: float = 0.1,
                 lease_s: float = 600.0) -> tuple[StudyInfo, Pairing]:
    """A study of ``model`` against ``baseline`` on the items both answered; W/T/L are from ``model``'s side."""
    lead = require(person, "manage_studies", "create a study")
    name = name.strip()
    if not name:
        raise StudyError("a study needs a name")
    if votes_per_item < 1:
        raise StudyError(f"votes per item must be at least 1, got {votes_per_item}")
    if not 0 <= repeat_share < 1:
        raise StudyError(f"the repeat share must be in [0, 1), got {repeat_share}")
    if lease_s <= 0:
        raise StudyError(f"the reservation lease must be positive, got {lease_s} s")
    if model.model == baseline.model:
        raise StudyError(f"both sides are named '{model.model}'; name the two models differently")
    pairing = pair(model, baseline, testsets, sample, seed)
    meta = {"testsets": testsets or [], "sample": sample, "seed": seed, "filtered_out": pairing.filtered_out,
            "only_model": len(pairing.only_model), "only_baseline": len(pairing.only_baseline)}
    info = store.studies.create(name, model.model, baseline.model, pairing.items, lead.name, votes_per_item,
                                voters, repeat_share, lease_s, meta)
    return info, pairing


def studies_for(store: Store, person: Person | None) -> list[StudyInfo]:
    """The studies this person may vote in (none when they may not vote)."""
    if person is None or not person.may("vote"):
        return []
    return [s for s in store.studies.all() if s.open_to(person.name)]


def _voter(store: Store, person: Person | None, study: StudyInfo) -> Person:
    voter = require(person, "vote", "vote in a study")
    if not study.open_to(voter.name):
        raise Forbidden(f"'{voter.name}' is not among this study's voters; ask its lead to add you")
    return voter


def next_item(store: Store, person: Person | None, study: StudyInfo, rng: random.Random | None = None) -> Assignment | None:
    return store.studies.next_for(study, _voter(store, person, study).name, rng)


def submit_vote(store: Store, person: Person | None, study: StudyInfo, shown: Assignment, choice: str,
                comment: str = "") -> VoteReceipt:
    return store.studies.submit(study, _voter(store, person, study).name, shown, choice, comment.strip())
