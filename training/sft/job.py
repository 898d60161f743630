"""Fine-tuning as a studio background job (kind ``train``): launch, follow, cancel, resume.

:func:`start_training` (what the Train page and scripts call) checks that the person may train, plans the
run (data source, preset, base model, overrides, output folder) and submits a ``train`` job. The job's
handler, :func:`train_job`, runs in the detached worker: it writes the training file once (a saved
selection's export with its manifest, the full pool, or a random subset of the selection's size), then
starts ``python -m training sft …`` as a child process (like LLaMA-Factory's runner), tails its
``metrics.jsonl`` into the job's progress, turns a cancel request into ``OUT/CANCEL`` (the trainer saves
a checkpoint and stops) and, when resumed, passes ``--resume`` so the run continues from that checkpoint.
Nothing here imports torch: the studio process stays light.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.sft.files import CANCEL_FILE, LOG_FILE, RESULT_FILE, RUN_FILE, read_json, read_metrics
from training.sft.presets import get_preset

KIND = "train"
DATA_FILE = "data.jsonl"
CANCELLED_EXIT = 3
ROLES = ("selection", "full pool", "random", "dataset", "file")


@dataclass
class TrainRequest:
    """What to train: exactly one of selection_id, dataset_id or file; role says which baseline, if any."""

    selection_id: int | None = None
    dataset_id: int | None = None
    file: str = ""
    role: str = "selection"
    random_size: int | None = None  # for role "random": the selection's size
    preset: str = "local"
    base_model: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    max_steps: int = -1
    name: str = ""

    def describe(self) -> str:
        what = (f"selection {self.selection_id}" if self.selection_id else f"dataset {self.dataset_id}"
                if self.dataset_id else Path(self.file).name)
        return f"{self.name or what} · {self.role} · {self.preset}"


def plan(store: Any, request: TrainRequest) -> TrainRequest:
    """Fill in the name and, for a random baseline, the selection's size; refuse what cannot run."""
    get_preset(request.preset, request.overrides)  # unknown preset or field: say so now, not in the worker
    if request.role not in ROLES:
        raise ValueError(f"unknown role '{request.role}'; choose one of {', '.join(ROLES)}")
    if sum(bool(x) for x in (request.selection_id, request.dataset_id, request.file)) != 1:
        raise ValueError("name exactly one thing to train on: a saved selection, a dataset or a file")
    name = request.name
    if request.selection_id:
        saved = store.selections.get(request.selection_id)
        name = name or saved.name
        if request.role == "random" and request.random_size is None:
            request.random_size = saved.n_kept
    elif request.dataset_id:
        name = name or store.datasets.get(request.dataset_id).name
    request.name = name or Path(request.file).stem
    return request


def baselines(store: Any, selection_id: int, preset: str, base_model: str = "", overrides: dict[str, Any] | None = None,
              max_steps: int = -1) -> list[TrainRequest]:
    """The papers' comparison for a saved selection: the full pool and a random subset of the same size."""
    saved = store.selections.get(selection_id)
    common = {"preset": preset, "base_model": base_model, "overrides": dict(overrides or {}), "max_steps": max_steps}
    return [
        TrainRequest(selection_id=selection_id, role="full pool", name=f"{saved.name} · full pool", **common),
        TrainRequest(selection_id=selection_id, role="random", random_size=saved.n_kept,
                     name=f"{saved.name} · random {saved.n_kept}", **common),
    ]


def start_training(store: Any, settings: Any, person: Any, request: TrainRequest, launch: bool = True) -> int:
    """Check the person may train (and read a server path, for a file), plan, submit and launch the job."""
    from curation import jobs
    from curation.studio_auth import require

    require(person, "train", "train a model")
    if request.file:
        require(person, "read_server_path", f"train on the server file {request.file}")
    request = plan(store, request)
    params = {"request": asdict(request), "created_by": person.name}
    job_id = jobs.submit(store, settings, KIND, params, title=f"train {request.describe()}", by=person)
    out = output_dir(settings, job_id)
    store.jobs.set_params(job_id, {**params, "out_dir": str(out)})  # the folder is known only once it has its id
    if launch:
        jobs.launch(store, settings, job_id)
    return job_id


def output_dir(settings: Any, job_id: int) -> Path:
    root = Path(settings.train.output_dir) if settings.train.output_dir else settings.workspace / "models"
    return (root / f"run-{job_id}").resolve()


def command_for(request: TrainRequest, data_file: str, out_dir: str, launcher: str = "python") -> list[str]:
    """The CLI command of a run; ``launcher="accelerate"`` gives the one for several GPUs (DDP config)."""
    head = ["python", "-m", "training"] if launcher == "python" else [
        "accelerate", "launch", "--config_file", "training/accelerate/ddp_gpu.yaml", "-m", "training"]
    command = [*head, "sft", "--data", data_file, "--out", out_dir, "--preset", request.preset]
    if request.base_model:
        command += ["--base-model", request.base_model]
    if request.max_steps and request.max_steps > 0:
        command += ["--max-steps", str(request.max_steps)]
    for key, value in sorted(request.overrides.items()):
        command += ["--set", f"{key}={value}"]
    command += ["--role", request.role, "--name", request.name]
    return command


def shell_command(command: list[str]) -> str:
    return shlex.join(command)


# --- the handler (runs in the job's worker) ---------------------------------------------------------


def train_job(ctx: Any) -> dict[str, Any]:
    request = TrainRequest(**ctx.params["request"])
    out = Path(ctx.params["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    data_file = write_training_file(ctx.store, ctx.settings, request, out)
    resume = _has_checkpoint(out)
    command = command_for(request, str(data_file), str(out))
    command = [sys.executable, *command[1:], "--job-id", str(ctx.job_id), "--user", ctx.params.get("created_by", "")]
    if resume:
        command.append("--resume")
    ctx.log(("resuming: " if resume else "running: ") + shell_command(command))
    code = _run_and_follow(ctx, command, out)
    if code == CANCELLED_EXIT:
        from curation.jobs import JobCancelled

        raise JobCancelled()
    if code != 0:
        raise RuntimeError(f"training exited with code {code}: {_tail(out / LOG_FILE)}")
    result = read_json(out / RESULT_FILE)
    model = ctx.store.models.for_job(ctx.job_id)
    return {**result, "model_id": model.id if model else None, "command": shell_command(command_for(request, str(data_file), str(out)))}


def write_training_file(store: Any, settings: Any, request: TrainRequest, out: Path) -> Path:
    """The examples to train on, written once into the run's folder (a resumed job reuses them)."""
    if request.file:
        return Path(request.file)
    target = out / DATA_FILE
    if target.exists():
        return target
    from curation.formats import write_records
    from curation.select import export_selection, rebuild_saved, select_records

    partial = out / (DATA_FILE + ".partial.jsonl")
    if request.selection_id and request.role == "selection":
        saved = store.selections.get(request.selection_id)
        run = rebuild_saved(store, settings, request.selection_id)
        export_selection(store.datasets.records(saved.dataset_id), run.selection, partial, run.manifest, fmt="jsonl")
    else:
        dataset_id = request.dataset_id or store.selections.get(request.selection_id).dataset_id
        info = store.datasets.get(dataset_id)
        records = store.datasets.records(dataset_id)
        if request.role == "random":
            seed = get_preset(request.preset, request.overrides).seed
            run = select_records(records, "random", {"size": request.random_size, "seed": seed}, settings,
                                 dataset_name=info.name)
            export_selection(records, run.selection, partial, run.manifest, fmt="jsonl")
        else:
            write_records(records, partial, "jsonl")
    manifest = partial.with_name(partial.name + ".manifest.json")
    if manifest.exists():
        manifest.replace(target.with_name(target.name + ".manifest.json"))
    partial.replace(target)
    return target


def _has_checkpoint(out: Path) -> bool:
    folder = out / "checkpoints"
    return folder.is_dir() and any(p.name.startswith("checkpoint-") for p in folder.iterdir())


def _run_and_follow(ctx: Any, command: list[str], out: Path) -> int:
    """Run the trainer, mirror its metrics into the job's progress, pass a cancel request on as a file."""
    from curation.config import REPO_DIR

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_DIR), env.get("PYTHONPATH", "")]))
    env["DATABASE_URL"] = ctx.store.url
    env["CURATION_WORKSPACE"] = str(Path(ctx.settings.workspace).resolve())
    (out / CANCEL_FILE).unlink(missing_ok=True)
    with open(out / LOG_FILE, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   cwd=REPO_DIR)
        cancel_sent = False
        while process.poll() is None:
            if ctx.cancelled():
                if not cancel_sent:
                    (out / CANCEL_FILE).write_text("cancel requested\n")
                    ctx.log("cancel requested: the trainer saves a checkpoint at the end of this step and stops")
                    cancel_sent = True
            else:
                _report_unless_cancelled(ctx, out)
            time.sleep(min(1.0, ctx.settings.jobs.poll_s))
    if not cancel_sent:
        _report_unless_cancelled(ctx, out)
    return process.returncode


def _report_unless_cancelled(ctx: Any, out: Path) -> None:
    from curation.jobs import JobCancelled

    try:
        _report(ctx, out)
    except JobCancelled:
        pass  # seen on the next turn of the loop, which passes it on to the trainer


def _report(ctx: Any, out: Path) -> None:
    rows = [row for row in read_metrics(out) if "loss" in row]
    total = int(read_json(out / RUN_FILE).get("max_steps") or 0)
    if not rows:
        ctx.progress(0, max(total, 1), "loading the model and data")
        return
    last = rows[-1]
    eta = f", about {last['eta_s'] / 60:.1f} min left" if last.get("eta_s") is not None else ""
    done = min(int(last["step"]), total) if total else int(last["step"])
    ctx.progress(done, max(total, done, 1), f"step {last['step']}/{total or '?'}: loss {last['loss']:.4f}{eta}")


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    errors = [line for line in text if line.startswith("error:")]
    return errors[-1] if errors else " | ".join(text[-lines:])
