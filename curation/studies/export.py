"""Every vote of a study as CSV or JSONL: voter, the item, what they chose, which model was shown as A, times."""

from __future__ import annotations

import json

import pandas as pd

from curation.store import Store
from curation.store.studies import StudyError, StudyInfo
from curation.studio_auth import Person, require

FORMATS = ("csv", "jsonl")


def votes_table(store: Store, study: StudyInfo) -> pd.DataFrame:
    """One row per stored answer; ``answer_a_model``/``answer_b_model`` name the shown order (lead only)."""
    votes = store.studies.votes_frame(study.id)
    model_first = votes["model_shown_as"] == "A"
    votes.insert(0, "study", study.name)
    votes["answer_a_model"] = model_first.map({True: study.model, False: study.baseline})
    votes["answer_b_model"] = model_first.map({True: study.baseline, False: study.model})
    for column in ("shown_at", "voted_at"):
        votes[column] = pd.to_datetime(votes[column], utc=True).map(lambda t: t.isoformat())
    return votes[["study", "vote_id", "item_key", "category", "testset", "voter", "choice", "verdict",
                  "model_shown_as", "answer_a_model", "answer_b_model", "is_repeat", "comment", "shown_at", "voted_at"]]


def export_votes(store: Store, person: Person | None, study: StudyInfo, fmt: str = "csv") -> str:
    """The votes as text in ``fmt`` (csv or jsonl); only a lead (they name voters and models)."""
    require(person, "manage_studies", "export a study's votes")
    if fmt not in FORMATS:
        raise StudyError(f"format must be one of {FORMATS}, got {fmt!r}")
    table = votes_table(store, study)
    if fmt == "csv":
        return table.to_csv(index=False)
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in table.to_dict(orient="records"))
