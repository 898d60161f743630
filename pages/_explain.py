"""Why IQS scored an example so: the panel Explore and Map show beside an open example. Not a page.

Everything is computed by :mod:`curation.explain`; this only renders. The response's text is user text, so
the sentence that moves the score is marked inside ``st.code`` (plain text, never HTML or markdown).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from curation import explain, select
from curation.records import Record
from pages import _studio as studio

MARK_OPEN, MARK_CLOSE = "⟦", "⟧"


def latest_iqs_rating(record_id: str) -> dict | None:
    rows = [r for r in studio.store().ratings.for_record(record_id) if r["rater"] == explain.IQS_RATER and r["status"] == "ok"]
    return max(rows, key=lambda r: r["created_at"]) if rows else None


def iqs_panel(info, record: Record, open_better: Callable[[str], None], key: str) -> None:
    """Where the score sits, the sentence that moves it (marked), and the better neighbour one click away."""
    rating = latest_iqs_rating(record.id)
    if rating is None:
        return
    store = studio.store()
    st.markdown("**Why IQS scored it so**")
    lines = [rating["explanation"] or f"IQS {rating['score_0_5']:.2f} on 0–5."]
    scores = studio.scores(store.url, info.id, info.created_at, studio.ratings_version(), explain.IQS_RATER,
                           rating["rater_version"], select.DEFAULT_SCALE)
    place = explain.standing(record.id, scores.ids, scores.values, studio.dataset_map(info, studio.map_marker(info)))
    if place is not None:
        lines.insert(0, place.text())
    mover = explain.mover_of(rating["raw"])
    if mover is None:
        with st.spinner("Scoring the response without each of its sentences…"):
            mover = explain.explain_example(store, studio.settings(), record, rating["rater_version"], studio.person())
        if mover is not None:
            lines[-1] = f"{lines[-1]} {mover.text()}"
        else:
            lines.append("(The installed IQS scorer is another version than this rating's, so the sentence that "
                         "moves the score is not computed: re-rate the dataset to get it.)")
    st.text(" ".join(lines))  # user sentences are quoted in it: text, never markdown
    if mover is not None and mover.end <= len(record.output) and record.output[mover.start:mover.end] == mover.sentence:
        st.caption(f"The response, the sentence that moves the score most marked {MARK_OPEN} {MARK_CLOSE} "
                   f"({mover.change_0_5:+.2f} points when removed):")
        out = record.output
        st.code(out[: mover.start] + MARK_OPEN + mover.sentence + MARK_CLOSE + out[mover.end :], language=None,
                wrap_lines=True)
    better_example(place, open_better, key)
    meaning = explain.threshold_meaning(studio.settings().iqs.weights or None)
    if meaning:
        st.caption(meaning)


def better_example(place: explain.Standing | None, open_better: Callable[[str], None], key: str) -> None:
    if place is None or place.cluster_name is None:
        st.caption("Compute the map of this dataset to see its rank in its cluster and a better example nearby.")
        return
    if place.better_id is None:
        st.caption("Nothing in its cluster scores higher.")
        return
    left, right = st.columns([3, 1])
    left.text(f"Done better nearby: example {place.better_id} ({place.better_score:.2f}), the nearest higher-scored "
              f"example of cluster '{place.cluster_name}' on the map.")
    if right.button("Open it", key=f"{key}_better"):
        open_better(place.better_id)
