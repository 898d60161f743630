"""The Answers page: every model's answer to an item side by side, truncation marked, filters, launching."""

from __future__ import annotations

from pathlib import Path

import pytest
from studio_helpers import point_studio_at, studio, table_with

from curation import jobs
from curation.answers import import_answers
from curation.config import Settings
from curation.demo import build_demo
from curation.store import AnswerRow, Store
from curation.studio_auth import Person

DATA = Path(__file__).resolve().parent / "data" / "answers"


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store) -> Store:
    point_studio_at(monkeypatch, settings, store)
    build_demo(store, settings)
    lead = Person("lena", "lead")
    for column, model in (("Answer1", "cherry-5pct"), ("Answer2", "alpaca-7b")):
        import_answers(DATA / "cherry_vicuna_wrap.json", store, lead, "vicuna80", model=model, column=column)
    store.answers.save([AnswerRow("tiny-local", "vicuna80", "1", "d1", "Time management is <b>key</b> and", "truncated",
                                  completion_tokens=8, decoding={"temperature": 0.0})])
    return store


def texts(app) -> list[str]:
    return [t.value for t in app.text]


def test_an_item_shows_every_models_answer_and_marks_truncation(answered: Store) -> None:
    app = studio("answers")
    app.selectbox(key="answers_testset").set_value("vicuna80").run()
    app.selectbox(key="answers_item").set_value("1").run()
    shown = texts(app)
    assert "How can I improve my time management skills?" in shown
    for model in ("cherry-5pct", "alpaca-7b", "tiny-local"):
        assert model in shown
    first = answered.answers.of("cherry-5pct", "vicuna80")[0].output
    assert first in shown
    assert "Time management is <b>key</b> and" in shown  # shown as text, never as HTML
    assert any("Truncated: cut at 8 new tokens" in w.value for w in app.warning)
    sets = table_with(app, "truncated")
    assert dict(zip(sets["model"], sets["truncated"])) == {"alpaca-7b": 0, "cherry-5pct": 0, "tiny-local": 1}


def test_the_category_filter_limits_the_items(answered: Store) -> None:
    app = studio("answers")
    app.selectbox(key="answers_testset").set_value("vicuna80").run()
    app.selectbox(key="answers_category").set_value("coding").run()
    options = app.selectbox(key="answers_item").options
    coding = [i.item_id for i in answered.testsets.items("vicuna80") if i.category == "coding"]
    assert len(options) == len(coding) == 7
    assert all(option.split(" — ")[0] in coding for option in options)
    app.selectbox(key="answers_item").set_value(coding[0]).run()
    assert any("No model has answered this item yet" in i.value for i in app.info)


def test_a_lead_launches_generation_and_an_annotator_cannot(answered: Store, settings: Settings) -> None:
    annotator = studio("answers", person=("ann", "annotator"))
    assert not [b for b in annotator.button if b.key == "gen_launch"]
    assert any("Only a lead can generate answers" in c.value for c in annotator.caption)

    app = studio("answers", person=("lena", "lead"))
    app.selectbox(key="answers_testset").set_value("vicuna80").run()
    app.text_input(key="gen_model").set_value("no-such-model-folder-xyz").run()
    app.number_input(key="gen_limit").set_value(2).run()
    app.button(key="gen_launch").click().run()
    assert not app.exception, [e.message for e in app.exception]
    launched = jobs.all_jobs(answered, settings, kind="generate")
    assert len(launched) == 1
    job = launched[0]
    assert job.created_by == "lena" and job.params["testsets"] == ["vicuna80"] and job.params["limit"] == 2
    assert job.params["model"] == "no-such-model-folder-xyz" and "paid" not in job.params
    # The worker fails on the unknown model and says why; the page's job panel shows it.
    info = jobs.wait(answered, settings, job.id, timeout_s=300)
    assert info.status == "failed" and "no-such-model-folder-xyz" in (info.error or "")
