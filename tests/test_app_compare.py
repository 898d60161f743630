"""Compare page: answer files -> cost -> launch as a lead -> a judge job against a loopback judge -> the
tallies and charts; imported published reviews as runs; the items behind a bar with both reviews."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from judge_server import JudgeServer
from studio_helpers import point_studio_at, studio, table_with

from curation import jobs
from curation.judges import report
from curation.judges.imports import import_bundled_reviews
from curation.studio_auth import Person


@pytest.fixture
def judge_server() -> Iterator[JudgeServer]:
    with JudgeServer() as server:
        yield server


@pytest.fixture
def studio_env(monkeypatch, settings, sqlite_store, judge_server):
    point_studio_at(monkeypatch, settings, sqlite_store)
    monkeypatch.setenv("CURATION__JUDGE__BASE_URL", judge_server.base_url)
    monkeypatch.setenv("CURATION__JUDGE__MODEL", "local-judge")
    for model, scores in (("curated", (9, 8, 7)), ("full", (5, 8, 3))):
        folder = settings.workspace / "answers" / model
        folder.mkdir(parents=True)
        lines = [{"id": str(i), "instruction": f"Question {i}?", "input": "", "output": f"@score={s} answer {i}",
                  "category": ("writing", "math", "math")[i]} for i, s in enumerate(scores)]
        (folder / "vicuna80.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return sqlite_store


def test_an_annotator_sees_the_cost_but_cannot_launch(studio_env):
    app = studio("compare", person=("ann", "annotator"))
    costs = table_with(app, "calls")
    assert list(costs["calls"]) == [6]
    assert any("6 calls to make" in t.value for t in app.text)
    assert app.button(key="compare_launch").disabled
    assert "Only a lead can run a judge; you are signed in as annotator." in [c.value for c in app.caption]


def test_a_lead_launches_and_the_results_fill_in(studio_env, settings):
    app = studio("compare", person=("lea", "lead"))
    assert not app.button(key="compare_launch").disabled
    app.button(key="compare_launch").click().run()
    [job] = jobs.all_jobs(studio_env, settings, kind="judge")
    assert job.created_by == "lea" and job.params["paid"] is True
    assert jobs.wait(studio_env, settings, job.id, timeout_s=180).status == "done"
    app.run()
    assert not app.exception
    table = table_with(app, "WS")
    row = table.iloc[0]
    assert (row["A"], row["B"], row["W"], row["T"], row["L"]) == ("curated", "full", 2, 1, 0)
    assert row["WS"] == pytest.approx(1 + 2 / 3)
    assert len(app.get("plotly_chart")) >= 2  # per test set and per category
    app.selectbox(key="compare_outcome").set_value("win").run()
    items = table_with(app, "result for A")
    assert sorted(items["id"]) == ["0", "2"]


def test_published_reviews_are_imported_and_shown(studio_env, settings):
    voter_free = studio("compare", person=("lea", "lead"))
    voter_free.button(key="compare_import").click().run()
    assert not voter_free.exception
    table = table_with(voter_free, "WS")
    assert set(table["test set"]) == {"vicuna80", "wizardlm218"} and set(table["source"]) == {"import"}
    assert list(table.sort_values("test set")["W"]) == [44, 102]  # the published tallies


def test_the_items_behind_a_bar_and_both_reviews(sqlite_store):
    runs = import_bundled_reviews(sqlite_store, Person("lea", "lead"))
    vicuna = report.load_report(sqlite_store, next(r.id for r in runs if r.testset == "vicuna80"), samples=0)
    categories = list(report.category_counts(vicuna))
    assert "coding" in categories and len(categories) == 9
    # A click on the "lose" segment of the coding bar arrives as curve 2, point at coding's index.
    event = {"selection": {"points": [{"curve_number": 2, "point_index": categories.index("coding")}]}}
    assert report.picked_bar(event, categories) == ("coding", "lose")
    assert report.picked_bar(None, categories) is None
    behind = report.items_behind(vicuna, "coding", "lose")
    assert len(behind) == vicuna.summary["per_category"]["coding"]["lose"] > 0
    detail = report.item_detail(vicuna, behind.iloc[0]["id"])
    assert [r["order"] for r in detail["reviews"]] == ["A shown first", "B shown first"]
    assert all(r["review"] for r in detail["reviews"]) and detail["answer_a"] and detail["answer_b"]
    assert report.capacity_figure(vicuna) is not None


def test_answer_files_are_checked_when_added(tmp_path: Path, settings):
    from curation.judges.answer_files import answer_sets, save_answer_file
    from curation.judges.pairs import PairingError

    lead = Person("lea", "lead")
    good = b'{"id": "1", "instruction": "Q", "output": "A"}\n'
    save_answer_file(settings.workspace, lead, "model-x", "vicuna80", good)
    assert list(answer_sets(settings.workspace)) == ["model-x"]
    with pytest.raises(PairingError, match=":2: invalid JSON"):
        save_answer_file(settings.workspace, lead, "model-x", "koala180", good + b"{broken\n")
    with pytest.raises(PairingError, match="model name"):
        save_answer_file(settings.workspace, lead, "../escape", "vicuna80", good)
    assert list(answer_sets(settings.workspace)["model-x"]) == ["vicuna80"]


def test_the_bundled_answers_can_be_judged(settings):
    from curation.judges.answer_files import BUNDLED_MODELS, add_bundled_answers, answer_sets
    from curation.judges.pairs import pair_answers, read_answers

    add_bundled_answers(settings.workspace, Person("lea", "lead"))
    sets = answer_sets(settings.workspace)
    assert set(sets) == set(BUNDLED_MODELS) and set(sets["alpaca-7b"]) == {"vicuna80", "wizardlm218"}
    pairs = pair_answers(read_answers(sets[BUNDLED_MODELS[0]]["wizardlm218"]), read_answers(sets["alpaca-7b"]["wizardlm218"]))
    assert len(pairs) == 218 and len({p.category for p in pairs}) == 29


def test_stored_answers_are_offered_and_costed(monkeypatch, settings, sqlite_store):
    from curation.store.answers import AnswerRow

    point_studio_at(monkeypatch, settings, sqlite_store)
    sqlite_store.answers.save([AnswerRow(m, "vicuna80", str(i), "d1", f"{m} answer {i}", "stop")
                               for m in ("sft-curated", "sft-full") for i in range(1, 4)])
    app = studio("compare", person=("lea", "lead"))
    assert app.selectbox(key="compare_model_a").options[:2] == ["sft-curated", "sft-full"]
    app.selectbox(key="compare_model_a").set_value("sft-curated").run()
    app.selectbox(key="compare_model_b").set_value("sft-full").run()
    assert list(table_with(app, "calls")["calls"]) == [6]
    assert not app.button(key="compare_launch").disabled
