"""Fine-tuning as a studio job and under accelerate: cancel -> checkpoint, resume -> same step, 2 processes.

Real processes throughout: the job's worker (``python -m curation jobs run``), the trainer it starts
(``python -m training sft``), and ``accelerate launch`` with two CPU processes talking gloo.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from waiting import wait_for

from curation import jobs
from curation.alpaca import render_prompt
from curation.config import Settings, set_value
from curation.formats import read_file
from curation.select import select_records
from curation.store import Store
from curation.studio_auth import Forbidden, Person
from training.sft import job as train_jobs
from training.sft.files import read_json, read_metrics
from training.sft.tiny import build_tiny_model

REPO = Path(__file__).resolve().parent.parent
POOL = REPO / "curation" / "data" / "pools" / "alpaca_random_9k.json"
LEAD = Person("lena", "lead")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    records = read_file(POOL).records[:64]
    build_tiny_model(folder / "model", [render_prompt(r.instruction, r.input) + r.output for r in records])
    data = folder / "train.jsonl"
    data.write_text("".join(json.dumps({"instruction": r.instruction, "input": r.input, "output": r.output}) + "\n"
                            for r in records), encoding="utf-8")
    return folder / "model", data


def fast_jobs(settings: Settings) -> Settings:
    for key, value in (("jobs.heartbeat_s", "0.2"), ("jobs.stale_after_s", "30"), ("jobs.poll_s", "0.1")):
        set_value(settings, key, value, origin="test")
        settings.overrides.append(f"{key}={value}")
    return settings


def loss_steps(out: Path) -> list[int]:
    return [row["step"] for row in read_metrics(out) if "loss" in row]


@pytest.mark.slow
def test_cancel_saves_a_checkpoint_and_resume_continues_at_the_saved_step(
    sqlite_store: Store, settings: Settings, tiny: tuple[Path, Path]
) -> None:
    settings = fast_jobs(settings)
    request = train_jobs.TrainRequest(file=str(tiny[1]), role="file", base_model=str(tiny[0]), max_steps=30,
                                      overrides={"per_device_batch": 2, "global_batch": 2, "max_length": 160})
    job_id = train_jobs.start_training(sqlite_store, settings, LEAD, request)
    out = train_jobs.output_dir(settings, job_id)
    running = lambda: jobs.get(sqlite_store, settings, job_id).status in ("queued", "running")
    wait_for(lambda: len(loss_steps(out)) >= 3 or not running(), "three logged steps", timeout_s=240)
    assert running(), (out / "train.log").read_text()[-2000:]
    wait_for(lambda: jobs.get(sqlite_store, settings, job_id).done >= 1, "progress in the job row", timeout_s=240)
    jobs.cancel(sqlite_store, settings, job_id, by=LEAD)
    info = jobs.wait(sqlite_store, settings, job_id, timeout_s=240)
    assert info.status == "cancelled", (info.status, info.error, (out / "train.log").read_text()[-2000:])
    stopped = loss_steps(out)[-1]
    assert stopped < 30
    assert (out / "checkpoints" / f"checkpoint-{stopped}").is_dir()
    [model] = sqlite_store.models.all()
    assert (model.status, model.steps, model.job_id) == ("cancelled", stopped, job_id)

    jobs.resume(sqlite_store, settings, job_id, by=LEAD)
    info = jobs.wait(sqlite_store, settings, job_id, timeout_s=400)
    assert info.status == "done", (info.error, (out / "train.log").read_text()[-2000:])
    assert read_json(out / "run.json")["resumed_from_step"] == stopped
    steps = loss_steps(out)
    assert steps == list(range(1, 31))  # each step logged once: the resumed run started after the checkpoint
    [model] = sqlite_store.models.all()
    assert (model.status, model.steps, model.job_id) == ("done", 30, job_id)
    assert info.result["model_id"] == model.id and info.result["steps"] == 30
    assert (info.done, info.total) == (30, 30)
    assert "python -m training sft --data" in info.result["command"]
    assert Path(model.adapter_path, "adapter_config.json").exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_accelerate_launch_with_two_cpu_processes_trains_with_the_presets_global_batch(
    tmp_path: Path, tiny: tuple[Path, Path]
) -> None:
    out = tmp_path / "run"
    workspace = tmp_path / "workspace"
    env = {**os.environ, "CURATION_WORKSPACE": str(workspace), "PYTHONPATH": str(REPO)}
    env.pop("DATABASE_URL", None)
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [str(accelerate), "launch", "--config_file", str(REPO / "training/accelerate/cpu_2proc.yaml"),
               "--main_process_port", str(free_port()), "-m", "training", "sft", "--data", str(tiny[1]),
               "--base-model", str(tiny[0]), "--out", str(out), "--max-steps", "3", "--per-device-batch", "2",
               "--max-length", "160"]
    done = subprocess.run(command, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = read_json(out / "result.json")
    # The local preset's global batch is 16: 2 processes x 2 examples x 4 accumulation steps.
    assert (result["world_size"], result["global_batch"], result["steps"]) == (2, 16, 3)
    assert loss_steps(out) == [1, 2, 3]
    store = Store(f"sqlite:///{(workspace / 'studio.db').resolve()}")
    [model] = store.models.all()
    assert (model.status, model.global_batch, model.steps) == ("done", 16, 3)
    assert "2 process(es)" in model.machine
    store.close()


def test_only_a_lead_may_train_and_a_file_needs_the_server_path_right(sqlite_store: Store, settings: Settings) -> None:
    request = train_jobs.TrainRequest(file="/etc/hosts", role="file")
    with pytest.raises(Forbidden):
        train_jobs.start_training(sqlite_store, settings, Person("ann", "annotator"), request)
    with pytest.raises(Forbidden):
        train_jobs.start_training(sqlite_store, settings, None, request)
    assert jobs.all_jobs(sqlite_store, settings) == []


def test_baselines_are_the_full_pool_and_a_random_subset_of_the_selections_size(store: Store, settings: Settings,
                                                                                  tmp_path: Path) -> None:
    records = read_file(POOL).records[:40]
    info = store.datasets.create("alpaca40", records, created_by="tests")
    run = select_records(records, "random", {"size": 12, "seed": 5}, settings, dataset_name="alpaca40")
    saved = store.selections.save(info.id, "best12", run.manifest)
    full, random = train_jobs.baselines(store, saved.id, "local")
    assert (full.role, random.role, random.random_size) == ("full pool", "random", 12)
    assert full.name == "best12 · full pool" and random.name == "best12 · random 12"

    written = train_jobs.write_training_file(store, settings, train_jobs.plan(store, random), tmp_path / "r")
    manifest = json.loads(written.with_name(written.name + ".manifest.json").read_text())
    kept = read_file(written).records
    assert len(kept) == 12 and manifest["method"] == "random" and manifest["params"]["size"] == 12
    assert manifest["params"]["seed"] == 42  # the preset's seed, not the selection's
    assert read_file(train_jobs.write_training_file(store, settings, full, tmp_path / "f")).records == records
    chosen = train_jobs.TrainRequest(selection_id=saved.id, role="selection")
    written = train_jobs.write_training_file(store, settings, train_jobs.plan(store, chosen), tmp_path / "s")
    assert {r.id for r in read_file(written).records} == set(run.kept_ids)

    command = train_jobs.command_for(train_jobs.plan(store, chosen), "data.jsonl", "out", launcher="accelerate")
    assert command[:4] == ["accelerate", "launch", "--config_file", "training/accelerate/ddp_gpu.yaml"]
    assert command[-4:] == ["--role", "selection", "--name", "best12"]


def test_the_registry_creates_one_row_per_output_folder_and_updates_it(store: Store) -> None:
    first = store.models.record("/runs/a", name="a", status="running", base_model="smollm2-135m", method="lora",
                                preset="local", overrides={"epochs": 2}, job_id=7)
    again = store.models.record("/runs/a", status="done", final_loss=1.25, eval_loss=1.5, steps=10, tokens_seen=1234,
                                adapter_path="/runs/a/adapter")
    assert again.id == first.id and len(store.models.all()) == 1
    got = store.models.get(first.id)
    assert (got.status, got.final_loss, got.eval_loss, got.tokens_seen, got.overrides) == ("done", 1.25, 1.5, 1234, {"epochs": 2})
    assert got.is_adapter and got.finished_at is not None and got.base_model == "smollm2-135m"
    assert store.models.for_job(7).id == first.id and store.models.for_job(8) is None
    with pytest.raises(LookupError, match="no trained model 99"):
        store.models.get(99)
    with pytest.raises(ValueError, match="unknown model registry field"):
        store.models.record("/runs/a", colour="red")

