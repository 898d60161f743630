"""IQS explanations: every rating has one; the sentence that moves the score is real and moves it as stated.

The rating and leave-one-out tests use the shipped scorer on real SQLite and PostgreSQL stores; the
standing and sentence-splitting tests are pure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curation import explain
from curation.config import Settings
from curation.raters.run import RateRequest, rate
from curation.records import Record
from curation.store import Store
from curation.studio_auth import Forbidden, cli_person

RECORDS = [
    Record("Give three tips for staying healthy.", "",
           "Eat a balanced diet. Exercise regularly. Sleep well. Buy my course at example.com!"),
    Record("What is the capital of France?", "", "The capital of France is Paris."),
    Record("List two primary colours.", "", "Red\nBlue"),
    Record("Summarise the text.", "The cat sat on the mat all day.",
           "A cat stayed on a mat. It did so all day long. \"Nothing else happened.\" The end (really.)"),
    Record("Say nothing.", "", ""),
]


# ---------------------------------------------------------------- sentences


@pytest.mark.parametrize("record", RECORDS)
def test_sentences_are_spans_of_the_response_in_order(record: Record) -> None:
    found = explain.sentences(record.output)
    assert all(record.output[s.start : s.end] == s.text and s.text == s.text.strip() and s.text for s in found)
    assert [s.start for s in found] == sorted(s.start for s in found)
    # Nothing but separators lies between the pieces: every word of the response is in one sentence.
    assert " ".join(s.text for s in found).split() == record.output.replace("\\n", " ").split()


def test_sentence_boundaries() -> None:
    text = 'One. Two! Three? "Four." Five (six.) seven\nline two\\nline three'
    assert [s.text for s in explain.sentences(text)] == [
        "One.", "Two!", "Three?", '"Four."', "Five (six.)", "seven", "line two", "line three"]
    first = explain.sentences(text)[0]
    assert explain.without(text, first).strip().startswith("Two!")


# ---------------------------------------------------------------- standing in the dataset and the cluster


def test_standing_ranks_in_dataset_and_cluster_and_finds_the_nearest_better_example() -> None:
    ids = np.array(["a", "b", "c", "d", "e", "f"])
    values = np.array([4.0, 3.0, np.nan, 4.5, 4.9, 1.0])
    the_map = pd.DataFrame({
        "id": ids, "x": [0.0, 0.1, 0.2, 5.0, 0.3, 9.0], "y": [0.0] * 6,
        "cluster": [0, 0, 0, 0, 0, 1], "cluster_name": ["recipes"] * 5 + ["maths"],
    })
    place = explain.standing("b", ids, values, the_map)
    assert (place.rank, place.n) == (4, 5)
    assert (place.cluster_name, place.cluster_rank, place.cluster_n) == ("recipes", 4, 4)
    assert (place.better_id, place.better_score) == ("a", 4.0)  # nearer on the map than d and e
    assert place.text() == "Bottom 40% of the dataset (4th of 5); 4th of 4 in cluster 'recipes'."
    top = explain.standing("e", ids, values, the_map)
    assert top.better_id is None and top.text().startswith("Top 20% of the dataset (1st of 5); 1st of 4")
    assert explain.standing("f", ids, values, None) == explain.Standing(5, 5)
    assert explain.standing("c", ids, values, the_map) is None  # not rated


def test_threshold_meaning_comes_from_the_shipped_model_folder() -> None:
    text = explain.threshold_meaning(None, 4.5)
    assert text is not None and "of expert-revised responses score at least 4.5" in text
    expert, original = (int(part.split("%")[0].split()[-1]) for part in text.split(", against "))
    assert expert > original  # the expert side passes more often: the scale means something


# ---------------------------------------------------------------- with the shipped scorer


@pytest.fixture(scope="module")
def scorer():  # type: ignore[no-untyped-def]
    from curation.raters.iqs import BUNDLED_WEIGHTS_DIR

    if not (BUNDLED_WEIGHTS_DIR / "iqs.safetensors").is_file():
        pytest.skip("the IQS weights are not bundled in this checkout")
    return explain._scorer("", "cpu", 64, 256)  # the instance the library uses for default settings


@pytest.mark.slow  # loads torch and the scorer, scores ~20 variants
def test_every_iqs_rating_is_explained_and_the_mover_moves_the_score_as_stated(
    scorer, store: Store, settings: Settings  # type: ignore[no-untyped-def]
) -> None:
    info = store.datasets.create("explained", RECORDS, created_by="tests")
    rate(RateRequest(rater="iqs", dataset=info.name), settings, store)
    stored = store.ratings.stored("iqs", scorer.version, [r.id for r in RECORDS])
    assert set(stored) == {r.id for r in RECORDS}
    for record in RECORDS:
        row = stored[record.id]
        assert row.status == "ok" and row.explanation and f"IQS {row.score_0_5:.2f} on 0–5" in row.explanation

    assert explain.mover_of(stored[RECORDS[0].id].raw) is None
    visitor = explain.explain_example(store, settings, RECORDS[0], scorer.version, person=None)
    assert visitor is not None and explain.mover_of(
        store.ratings.stored("iqs", scorer.version, [RECORDS[0].id])[RECORDS[0].id].raw) is None  # not stored
    lead = cli_person()
    movers = {r.id: explain.explain_example(store, settings, r, scorer.version, lead) for r in RECORDS}
    assert movers[RECORDS[0].id] == visitor
    assert movers[RECORDS[-1].id] is None  # an empty response has no sentence to remove
    for record in RECORDS[:-1]:
        mover = movers[record.id]
        segments = explain.sentences(record.output)
        assert segments[mover.index] == explain.Segment(mover.start, mover.end, mover.sentence)
        alone = scorer.to_0_5(scorer.score([record.instruction] * 2, [record.input] * 2,
                                           [record.output, explain.without(record.output, segments[mover.index])]))
        stated = float(mover.text().rsplit("(", 1)[1].rstrip(").").replace("−", "-"))
        assert stated == pytest.approx(alone[1] - alone[0], abs=0.011)  # the sentence's stated change, rounded
        assert abs(mover.change_0_5) >= max(  # no other sentence moves it more
            abs(v - alone[0]) for v in scorer.to_0_5(scorer.score(
                [record.instruction] * len(segments), [record.input] * len(segments),
                [explain.without(record.output, s) for s in segments]))) - 0.011
        row = store.ratings.stored("iqs", scorer.version, [record.id])[record.id]
        assert explain.mover_of(row.raw) == mover and row.explanation.endswith(mover.text())
        assert row.score == stored[record.id].score  # the score itself is untouched

    with pytest.raises(Forbidden):
        explain.explain_dataset(store, settings, RECORDS, person=None)
    assert explain.explain_dataset(store, settings, RECORDS, lead) == 0  # everything explained already


@pytest.mark.slow  # loads the scorer (rate) and uses the cached one (explain)
def test_explain_command_stores_every_mover_and_prints_explanations(
    scorer, sqlite_store: Store, settings: Settings, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    from curation.cli import main

    sqlite_store.datasets.create("cli-explained", RECORDS[:3], created_by="tests")
    workspace = ["--workspace", str(settings.workspace)]
    assert main([*workspace, "explain", "cli-explained"]) == 1  # not rated yet: says what to run
    assert "rate it first: python -m curation rate --dataset cli-explained" in capsys.readouterr().err
    assert main([*workspace, "rate", "--dataset", "cli-explained"]) == 0
    capsys.readouterr()
    assert main([*workspace, "explain", "cli-explained", "--show", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 explanations computed now, 3 IQS ratings" in out
    rows = sqlite_store.ratings.stored("iqs", scorer.version, [r.id for r in RECORDS[:3]])
    for record in RECORDS[:3]:
        mover = explain.mover_of(rows[record.id].raw)
        assert mover is not None and f"- {record.id}: " in out and mover.text() in out
