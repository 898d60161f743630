"""The evaluate loop: a trained model and its baseline answer a test set, then the judge compares them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from judge_server import JudgeServer

from curation.config import Settings
from curation.judges.evaluate import EvaluateError, EvaluateRequest, find_baseline, run_evaluation, start_evaluation
from curation.store import Store
from curation.studio_auth import Forbidden, Person


@pytest.fixture
def server() -> Iterator[JudgeServer]:
    with JudgeServer() as running:
        yield running


def register(store: Store, name: str, role: str, status: str = "done", preset: str = "alpaca-7b") -> int:
    return store.models.record(f"/runs/{name}", name=name, role=role, status=status, preset=preset,
                               base_model="tiny").id


def test_the_baseline_is_the_same_presets_full_pool_model(sqlite_store: Store) -> None:
    curated = register(sqlite_store, "curated", "selection")
    register(sqlite_store, "random", "random")
    full = register(sqlite_store, "full", "full pool")
    register(sqlite_store, "other-preset", "full pool", preset="alpaca-13b")
    register(sqlite_store, "unfinished", "full pool", status="running")
    assert find_baseline(sqlite_store, sqlite_store.models.get(curated)).id == full


def test_evaluate_answers_then_judges_and_a_rerun_asks_nothing(settings: Settings, sqlite_store: Store,
                                                               server: JudgeServer) -> None:
    curated = register(sqlite_store, "curated", "selection")
    register(sqlite_store, "full", "full pool")
    request = EvaluateRequest(model=curated, testsets=["vicuna80"], limit=3, answer_base_url=server.base_url,
                              judge_model="local-judge", judge_base_url=server.base_url)
    result = run_evaluation(request, settings, sqlite_store)
    [run] = result["runs"]
    assert (run["testset"], run["n"], run["pending"]) == ("vicuna80", 3, 0)
    info = sqlite_store.judgments.run(run["run_id"])
    assert (info.model_a, info.model_b) == ("curated", "full (full pool)")
    calls = server.calls()
    assert run_evaluation(request, settings, sqlite_store)["runs"][0]["n"] == 3 and server.calls() == calls


def test_evaluate_needs_a_lead_and_a_baseline(settings: Settings, sqlite_store: Store) -> None:
    curated = register(sqlite_store, "curated", "selection")
    request = EvaluateRequest(model=curated)
    with pytest.raises(Forbidden):
        start_evaluation(sqlite_store, settings, request, Person("ann", "annotator"))
    with pytest.raises(EvaluateError, match="train the baselines first"):
        start_evaluation(sqlite_store, settings, request, Person("lea", "lead"))


def test_the_train_page_evaluates_a_model_against_its_baseline(monkeypatch, settings: Settings,
                                                                sqlite_store: Store) -> None:
    from studio_helpers import point_studio_at, studio

    from curation import jobs

    point_studio_at(monkeypatch, settings, sqlite_store)
    curated = register(sqlite_store, "curated", "selection")
    full = register(sqlite_store, "full", "full pool")
    annotator = studio("train", person=("ann", "annotator"))
    annotator.selectbox(key="train_eval_model").set_value(curated).run()
    assert annotator.button(key="train_evaluate").disabled
    lead = studio("train", person=("lea", "lead"))
    lead.selectbox(key="train_eval_model").set_value(curated).run()
    assert any(f"Baseline: #{full} full (full pool)" in t.value for t in lead.text)
    lead.multiselect(key="train_eval_testsets").set_value(["vicuna80", "koala180"]).run()
    lead.button(key="train_evaluate").click().run()
    [job] = jobs.all_jobs(sqlite_store, settings, kind="evaluate")
    jobs.cancel(sqlite_store, settings, job.id, by=Person("lea", "lead"))  # its models are registry rows only
    assert (job.params["model"], job.params["baseline"], job.params["testsets"]) == (curated, full, ["vicuna80", "koala180"])
    assert job.created_by == "lea"
