"""Train page: choosing a selection and a preset, launching a run and its baselines as the person acting,
the live loss curves (several runs, steps or tokens), the ETA, the exact command, the registry table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from studio_helpers import point_studio_at, studio, table_with

from curation import jobs
from curation.alpaca import render_prompt
from curation.formats import read_file
from curation.select import select_records
from curation.studio_auth import Person
from training.sft import job as train_jobs
from training.sft.tiny import build_tiny_model

POOL = Path(__file__).resolve().parent.parent / "curation" / "data" / "pools" / "alpaca_random_9k.json"


@pytest.fixture
def studio_env(monkeypatch, settings, sqlite_store):
    point_studio_at(monkeypatch, settings, sqlite_store)
    records = read_file(POOL).records[:40]
    info = sqlite_store.datasets.create("alpaca40", records, created_by="tests")
    run = select_records(records, "random", {"size": 12, "seed": 1}, settings, dataset_name="alpaca40")
    sqlite_store.selections.save(info.id, "best12", run.manifest, created_by="tests")
    return sqlite_store


def chart_of(app):
    """The page's plotly figure (plotly 7 sends arrays packed; from_json unpacks them)."""
    import plotly.io

    return plotly.io.from_json(app.get("plotly_chart")[0].proto.spec)


def fake_run(store, settings, name: str, losses: list[float], max_steps: int) -> int:
    """A train job whose output folder already holds a metrics log (as a worker would write it)."""
    request = train_jobs.TrainRequest(dataset_id=1, role="dataset", name=name)
    job_id = jobs.submit(store, settings, "train", {"request": request.__dict__}, title=f"train {name}",
                         by=Person("lea", "lead"))
    out = train_jobs.output_dir(settings, job_id)
    out.mkdir(parents=True)
    store.jobs.set_params(job_id, {"request": request.__dict__, "out_dir": str(out)})
    (out / "run.json").write_text(json.dumps({"max_steps": max_steps}))
    rows = [{"step": i + 1, "loss": loss, "tokens_seen": 100 * (i + 1), "eta_s": 90.0 * (max_steps - i - 1)}
            for i, loss in enumerate(losses)]
    rows.append({"step": len(losses), "eval_loss": losses[-1] + 0.1, "tokens_seen": 100 * len(losses)})
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return job_id


def test_an_annotator_sees_the_plan_but_cannot_launch(studio_env):
    app = studio("train", person=("ann", "annotator"))
    assert app.selectbox(key="train_selection").value == 1
    assert app.button(key="train_launch").disabled and app.button(key="train_baselines").disabled
    assert any("lead" in c.value for c in app.caption)
    command = app.code[0].value
    assert command.startswith("accelerate launch --config_file training/accelerate/ddp_gpu.yaml -m training sft")
    assert "--preset local" in command and "--name best12" in command


def test_curves_of_several_runs_overlay_with_eta_and_the_registry_lists_models(studio_env, settings):
    first = fake_run(studio_env, settings, "best12", [2.0, 1.5, 1.2], max_steps=10)
    second = fake_run(studio_env, settings, "best12 · random 12", [2.1, 1.9], max_steps=10)
    studio_env.models.record(str(train_jobs.output_dir(settings, first)), name="best12", status="done",
                             base_model="smollm2-135m", method="lora", preset="local", final_loss=1.2, eval_loss=1.3,
                             job_id=first, role="selection", n_examples=12, details={"command": "python -m training sft"})
    app = studio("train", person=("lea", "lead"))
    chart = chart_of(app)
    names = [trace.name for trace in chart.data]
    assert names == [f"#{second} best12 · random 12 (dataset) — train", f"#{second} best12 · random 12 (dataset) — eval",
                     f"#{first} best12 (dataset) — train", f"#{first} best12 (dataset) — eval"]
    assert list(chart.data[2].y) == [2.0, 1.5, 1.2] and list(chart.data[2].x) == [1, 2, 3]
    assert any(t.value == f"#{first} best12 (dataset): step 3/10, ETA 10 min 30 s" for t in app.text)
    app.radio(key="train_curves_x").set_value("tokens_seen").run()
    chart = chart_of(app)
    assert list(chart.data[2].x) == [100, 200, 300] and chart.layout.xaxis.title.text == "tokens seen"
    registry = table_with(app, "final loss")
    assert list(registry["name"]) == ["best12"] and list(registry["eval loss"]) == [1.3]


def test_a_lead_launches_the_run_and_both_baselines_with_the_same_preset(studio_env, settings, monkeypatch):
    launched = []
    monkeypatch.setattr(jobs, "launch", lambda store, settings, job_id: launched.append(job_id) or 0)
    app = studio("train", person=("lea", "lead"))
    app.number_input(key="train_epochs_local").set_value(2.0).run()
    app.button(key="train_launch").click().run()
    app.button(key="train_baselines").click().run()
    assert not app.exception
    listed = sorted(jobs.all_jobs(studio_env, settings, kind="train"), key=lambda j: j.id)
    requests = [j.params["request"] for j in listed]
    assert [r["role"] for r in requests] == ["selection", "full pool", "random"]
    assert [r["name"] for r in requests] == ["best12", "best12 · full pool", "best12 · random 12"]
    assert all(r["overrides"] == {"epochs": 2.0} and r["preset"] == "local" for r in requests)
    assert requests[2]["random_size"] == 12 and {j.created_by for j in listed} == {"lea"}
    assert launched == [j.id for j in listed]
    assert all(j.params["out_dir"].endswith(f"run-{j.id}") for j in listed)


@pytest.mark.slow
def test_a_tiny_run_launched_from_the_page_draws_its_curve_and_lands_in_the_registry(studio_env, settings, tmp_path):
    records = read_file(POOL).records[:40]
    base = build_tiny_model(tmp_path / "tiny", [render_prompt(r.instruction, r.input) + r.output for r in records])
    app = studio("train", person=("lea", "lead"))
    app.text_input(key="train_base_local").input(str(base)).run()
    app.number_input(key="train_steps").set_value(4).run()
    app.number_input(key="train_pdb_local").set_value(2).run()
    app.number_input(key="train_gb_local").set_value(2).run()
    app.button(key="train_launch").click().run()
    [job] = jobs.all_jobs(studio_env, settings, kind="train")
    info = jobs.wait(studio_env, settings, job.id, timeout_s=400)
    assert info.status == "done", (info.error, Path(job.params["out_dir"], "train.log").read_text()[-2000:])
    app.run()
    assert list(chart_of(app).data[0].x) == [1, 2, 3, 4]
    registry = table_with(app, "final loss")
    assert list(registry["status"]) == ["done"] and list(registry["steps"]) == [4]
    assert list(registry["role"]) == ["selection"] and list(registry["examples"]) == [12]
