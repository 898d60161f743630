"""The voting page and the studies page in AppTest: blind voting, a voter sees nothing else, live results."""

from __future__ import annotations

import json

import pytest
from studio_helpers import point_studio_at, studio, table_with

from curation.store import Store
from curation.store.studies import ItemRow
from curation.studies import interface

MODEL, BASELINE = "alpagasus-9k-secret", "alpaca-52k-secret"


@pytest.fixture
def study_env(monkeypatch, settings, sqlite_store):
    point_studio_at(monkeypatch, settings, sqlite_store)
    sqlite_store.datasets.create("mine", [], created_by="someone")  # no demo build: it is not what is tested
    items = [ItemRow(f"q{i}", f"What is {i} + {i}?", "Show *your* work." if i == 0 else "",
                     f"It is {2 * i}, from the curated model.", f"Maybe {2 * i + 1}, from the full model.",
                     category="math") for i in range(4)]
    sqlite_store.studies.create("alpagasus vs alpaca", MODEL, BASELINE, items, created_by="lea", votes_per_item=2,
                                repeat_share=0.0)
    return sqlite_store


def page_text(app) -> str:
    """Everything the page rendered, as text (markdown, text, labels, captions, sidebar)."""
    parts = [str(getattr(e, "value", "")) for e in app.main] + [str(getattr(e, "label", "")) for e in app.main]
    for kind in ("markdown", "text", "caption", "radio", "info", "success", "warning"):
        for element in getattr(app, kind):
            parts += [str(getattr(element, "value", "")), str(getattr(element, "label", "")),
                      " ".join(map(str, getattr(element, "options", [])))]
    parts += [str(getattr(e, "value", "")) for e in app.sidebar]
    return "\n".join(parts)


def test_a_voter_sees_only_the_vote_page_with_the_methods_text_and_no_model_names(study_env):
    app = studio(person=("vic", "voter"))
    assert app.title[0].value == "Vote"
    texts = [t.value for t in app.text]
    assert "What is 0 + 0?\n\nShow *your* work." in texts  # text, not markdown: the asterisks stay
    answers = {"It is 0, from the curated model.", "Maybe 1, from the full model."}
    assert answers <= set(texts)
    assert interface.INTRO in [m.value for m in app.markdown]
    radio = app.radio[0]
    assert radio.label == interface.ASK
    assert list(radio.options) == [
        "1. Answer A is significantly better.", "2. Answer B is significantly better.",
        "3. Neither is significantly better."]
    text = page_text(app)
    assert MODEL not in text and BASELINE not in text and "alpagasus vs alpaca" not in text
    # Vote is the only page a voter's navigation has (the browser test opens another page's address).
    with pytest.raises(ValueError, match=r"Known pages: \['[^',]*pages/vote.py'\]"):
        app.switch_page("pages/data.py")


def test_voting_stores_the_choice_with_the_shown_side_and_moves_on(study_env):
    app = studio(person=("vic", "voter"))
    assert "0 done, 4 to go" in app.get("progress")[0].proto.text
    first_a = app.text[2].value
    app.radio[0].set_value("A")
    app.text_input[0].input("A explains it")
    app.form_submit_button[0].click().run()
    assert not app.exception
    votes = study_env.studies.votes_frame(study_env.studies.get("alpagasus vs alpaca").id)
    assert len(votes) == 1
    vote = votes.iloc[0]
    assert vote["choice"] == "A" and vote["comment"] == "A explains it" and vote["voter"] == "vic"
    assert vote["verdict"] == ("win" if "curated" in first_a else "lose")
    assert "1 done, 3 to go" in app.get("progress")[0].proto.text
    # Skip: stored as a skip, the next question appears.
    app.form_submit_button[1].click().run()
    votes = study_env.studies.votes_frame(study_env.studies.get("alpagasus vs alpaca").id)
    assert votes["choice"].tolist() == ["A", "skip"]


def test_submitting_without_a_choice_asks_for_one(study_env):
    app = studio(person=("vic", "voter"))
    app.form_submit_button[0].click().run()
    assert "Choose one of the three answers" in app.warning[0].value
    assert len(study_env.studies.votes_frame(1)) == 0


def test_a_voter_not_listed_is_told_so(study_env):
    study_env.studies.update(study_env.studies.get("alpagasus vs alpaca").id, voters=["zoe"])
    app = studio(person=("vic", "voter"))
    assert "No study is open to you yet" in app.info[0].value
    assert not app.radio


def test_a_signed_out_visitor_and_an_annotator_do_not_see_studies(study_env):
    app = studio()
    assert app.title[0].value == "Data"
    annotator = studio("vote", person=("ann", "annotator"))
    assert annotator.title[0].value == "Vote"
    # Not in an annotator's navigation; and the page itself refuses anyone who may not manage studies.
    annotator.switch_page("pages/study_results.py")
    annotator.run()
    assert "Only a lead can run human studies" in annotator.info[0].value
    assert not annotator.metric and MODEL not in page_text(annotator)


def vote_everything(store: Store, voters=("ann", "bob")) -> None:
    study = store.studies.get("alpagasus vs alpaca")
    for voter in voters:
        while (shown := store.studies.next_for(study, voter)) is not None:
            store.studies.submit(study, voter, shown, shown.model_shown_as)


def test_the_lead_sees_results_and_they_update(study_env):
    app = studio("study_results", person=("lea", "lead"))
    assert app.title[0].value == "Studies"
    assert "0 of 8 votes" in app.get("progress")[0].proto.text
    vote_everything(study_env)
    app.run()
    assert "8 of 8 votes; 4 of 4 items complete" in app.get("progress")[0].proto.text
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["W"], metrics["T"], metrics["L"], metrics["WS"]) == ("4", "0", "0", "2.000")
    assert table_with(app, "majority")["majority"].tolist() == ["win"] * 4
    assert set(table_with(app, "agreement")["voter"]) == {"ann", "bob"}
    assert any(MODEL in c.value for c in app.caption)
    assert [b.label for b in app.get("download_button")] == ["Download all votes (CSV)", "Download all votes (JSONL)"]


def write_workspace_answers(workspace, model: str, testset: str, n: int) -> None:
    folder = workspace / "answers" / model
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{testset}.jsonl").write_text("".join(
        json.dumps({"id": f"{testset}-{i}", "instruction": f"Q{i}?", "input": "", "output": f"{model} {i}",
                    "category": "c"}) + "\n" for i in range(n)))


def test_the_lead_creates_a_study_from_workspace_answer_files(study_env, settings):
    for model in ("curated", "full"):
        write_workspace_answers(settings.workspace, model, "vicuna", 5)
        write_workspace_answers(settings.workspace, model, "koala", 3)
    app = studio("study_results", person=("lea", "lead"))
    assert app.selectbox(key="study_workspace_model").value == "curated"
    assert app.selectbox(key="study_workspace_baseline").value == "full"
    app.multiselect(key="study_workspace_testsets").set_value(["vicuna"]).run()
    app.text_input(key="study_name").input("from workspace")
    app.number_input(key="study_votes").set_value(2)
    app.button(key="FormSubmitter:new_study-Create the study").click().run()
    assert not app.exception
    assert "Created 'from workspace': 5 items × 2 votes." in app.success[0].value
    created = study_env.studies.get("from workspace")
    assert (created.model, created.baseline, created.votes_per_item) == ("curated", "full", 2)
    assert set(study_env.studies.items_frame(created.id)["testset"]) == {"vicuna"}


def test_the_lead_creates_a_study_from_the_answers_store(study_env):
    from curation.answers.items import answer_items
    from curation.store.answers import AnswerRow

    items = answer_items(study_env, ["koala180"])[:3]
    for model in ("curated", "full"):
        study_env.answers.save([AnswerRow(model, "koala180", i.item_id, "d", f"{model} says", "stop") for i in items])
    app = studio("study_results", person=("lea", "lead"))
    assert app.radio(key="study_source").value == "store"
    assert app.multiselect(key="study_store_testsets").value == ["koala180"]
    app.text_input(key="study_name").input("koala study")
    app.button(key="FormSubmitter:new_study-Create the study").click().run()
    assert "Created 'koala study': 3 items × 3 votes." in app.success[0].value
