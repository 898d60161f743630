"""One supervised fine-tuning run on TRL's SFTTrainer (+ PEFT LoRA unless full fine-tuning).

:func:`train` is the whole run: resolve the preset and base model, read and tokenize the data, build the
trainer, check the loss mask, train (resuming from the last checkpoint when asked), save the adapter or
the model, write ``result.json`` and record the model in the registry. Under ``accelerate launch`` every
process runs it; only the main one writes files and registry rows.
"""

from __future__ import annotations

import json
import platform
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.sft import base_model as bases
from training.sft.callbacks import CancelOnFile, MetricsLog
from training.sft.data import (
    LossMaskError,
    TrainingData,
    check_loss_mask,
    load_training_data,
    response_free_ids,
    tokenize_records,
)
from training.sft.device import Device, detect
from training.sft.files import CANCEL_FILE, METRICS_FILE, RESULT_FILE, read_metrics
from training.sft.presets import Preset, get_preset

CANCELLED_EXIT = 3


@dataclass
class RunConfig:
    data: str
    out_dir: str
    base_model: str = ""  # empty: the preset's
    preset: str = "local"
    overrides: dict[str, Any] = field(default_factory=dict)
    max_steps: int = -1
    resume: bool = False
    register: bool = True
    job_id: int | None = None
    role: str = ""
    name: str = ""
    created_by: str = "cli"
    command: str = ""


@dataclass
class RunResult:
    status: str  # done | cancelled
    out_dir: str
    weights_path: str
    final_loss: float | None
    eval_loss: float | None
    steps: int
    tokens_seen: int
    duration_s: float
    global_batch: int
    world_size: int
    model_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train(config: RunConfig) -> RunResult:
    from curation.config import load_settings

    settings = load_settings()
    preset = get_preset(config.preset, config.overrides)
    device = detect(preset.bf16)
    out = Path(config.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = load_training_data(config.data)
    base_name = config.base_model or preset.base_model or settings.train.base_model
    base_path = bases.resolve_base_model(base_name, settings.cache_dir)
    registry = _Registry(settings, config, device, out) if config.register else None
    started = time.monotonic()
    if registry:
        registry.started(data, preset, base_name, base_path)
    try:
        result = _train(config, preset, device, out, data, base_path, registry)
    except BaseException as err:
        if registry:
            registry.failed(err, time.monotonic() - started)
        raise
    return result


def _train(config: RunConfig, preset: Preset, device: Device, out: Path, data: TrainingData, base_path: str,
           registry: _Registry | None) -> RunResult:
    from trl import SFTTrainer

    tokenizer = bases.load_tokenizer(base_path)
    train_set, eval_set = split(tokenize_records(data.records, tokenizer, preset.max_length), preset)
    no_response = response_free_ids(train_set)
    if no_response and device.is_main:
        print(f"note: {len(no_response)} of {len(train_set)} examples have no response token within "
              f"{preset.max_length} tokens (first: {no_response[0]}); they stay but carry no loss", flush=True)
    args = sft_config(preset, device, out, config.max_steps, has_eval=len(eval_set) > 0)
    model = bases.load_model(base_path, dtype=_base_dtype(preset, device))
    cancel = CancelOnFile(out)
    run_info = {"command": config.command, "preset": preset.name, "global_batch": preset.global_batch,
                "world_size": device.world_size, "examples": len(train_set), "eval_examples": len(eval_set)}
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set if len(eval_set) else None,
        processing_class=tokenizer,
        peft_config=lora_config(preset) if preset.lora else None,
        callbacks=[MetricsLog(out, run_info), cancel],
    )
    agree_on_loss_mask(trainer, preset.max_length)
    checkpoint = last_checkpoint(out) if config.resume else None
    if device.is_main:
        _prepare_out_dir(out, checkpoint)
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=checkpoint)
    duration = time.monotonic() - started
    status = "cancelled" if cancel.cancelled_at is not None else "done"
    weights = "" if status == "cancelled" else save_weights(trainer, tokenizer, out, preset)
    result = _result(trainer, status, out, weights, duration, preset, device)
    if device.is_main:
        if registry:
            result.model_id = registry.finished(result)
        (out / RESULT_FILE).write_text(json.dumps({**result.to_dict(), **run_info, "data_hash": data.data_hash,
                                                   "base_model_path": base_path}, indent=2) + "\n", encoding="utf-8")
    return result


def _base_dtype(preset: Preset, device: Device) -> Any:
    import torch

    return torch.bfloat16 if preset.lora and preset.bf16_base_weights and device.bf16 else torch.float32


def split(dataset: Any, preset: Preset) -> tuple[Any, Any]:
    """A held-out slice for eval loss (eval_fraction, at most eval_max); none for tiny sets (< 20 examples)."""
    n_eval = min(preset.eval_max, round(len(dataset) * preset.eval_fraction))
    if len(dataset) < 20 or n_eval < 1:
        return dataset, dataset.select([])
    parts = dataset.train_test_split(test_size=n_eval, seed=preset.seed, shuffle=True)
    return parts["train"], parts["test"]


def sft_config(preset: Preset, device: Device, out: Path, max_steps: int, has_eval: bool) -> Any:
    from trl import SFTConfig

    cpu = device.kind == "cpu"
    return SFTConfig(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=preset.epochs,
        max_steps=max_steps if max_steps and max_steps > 0 else -1,
        per_device_train_batch_size=preset.per_device_batch,
        per_device_eval_batch_size=preset.per_device_batch,
        gradient_accumulation_steps=preset.gradient_accumulation(device.world_size),
        learning_rate=preset.learning_rate,
        lr_scheduler_type=preset.scheduler,
        warmup_steps=preset.warmup_ratio,  # a value below 1 is a fraction of the steps (transformers 5)
        weight_decay=preset.weight_decay,
        bf16=device.bf16,
        use_cpu=cpu,
        ddp_backend="gloo" if cpu and device.world_size > 1 else None,
        # SFTTrainer turns checkpointing on; on a CPU it only recomputes activations (slower, little memory gained).
        gradient_checkpointing=not cpu,
        train_sampling_strategy="group_by_length" if preset.group_by_length else "random",
        length_column_name="length",
        pad_to_multiple_of=preset.max_length if preset.pad_to_max_length else "auto",
        max_length=None,  # cut in training.sft.data, so no example is dropped silently
        dataset_kwargs={"skip_prepare_dataset": True},
        remove_unused_columns=False,
        logging_steps=1,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=0.25,
        save_strategy="steps",
        save_steps=0.25,
        save_total_limit=2,
        report_to="none",
        seed=preset.seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )


def lora_config(preset: Preset) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=preset.lora_r, lora_alpha=preset.lora_alpha, lora_dropout=preset.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def agree_on_loss_mask(trainer: Any, max_length: int) -> None:
    """Check every batch this process will train on; with several processes, all refuse if one must."""
    problem = ""
    try:
        check_loss_mask(trainer.get_train_dataloader(), max_length)
    except LossMaskError as err:
        problem = str(err)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        verdicts: list[str] = [""] * dist.get_world_size()
        dist.all_gather_object(verdicts, problem)
        problem = next((v for v in verdicts if v), "")
    if problem:
        raise LossMaskError(problem)


def last_checkpoint(out: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = out / "checkpoints"
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def _prepare_out_dir(out: Path, checkpoint: str | None) -> None:
    """A fresh run starts a fresh log; a resumed one keeps the lines up to its checkpoint's step."""
    (out / CANCEL_FILE).unlink(missing_ok=True)
    metrics = out / METRICS_FILE
    if checkpoint is None:
        metrics.unlink(missing_ok=True)
        return
    step = int(Path(checkpoint).name.rsplit("-", 1)[-1])
    kept = [row for row in read_metrics(out) if row.get("step", 0) <= step]
    metrics.write_text("".join(json.dumps(row) + "\n" for row in kept), encoding="utf-8")


def save_weights(trainer: Any, tokenizer: Any, out: Path, preset: Preset) -> str:
    """``adapter/`` (PEFT) or ``model/`` (full weights), each with the tokenizer beside it."""
    target = out / ("adapter" if preset.lora else "model")
    trainer.save_model(str(target))
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(str(target))
    return str(target)


def _result(trainer: Any, status: str, out: Path, weights: str, duration: float, preset: Preset, device: Device) -> RunResult:
    history = trainer.state.log_history
    losses = [row["loss"] for row in history if "loss" in row]
    eval_losses = [row["eval_loss"] for row in history if "eval_loss" in row]
    tokens = max([int(row["num_tokens"]) for row in history if "num_tokens" in row] or [0])
    return RunResult(
        status=status,
        out_dir=str(out),
        weights_path=weights,
        final_loss=float(losses[-1]) if losses else None,
        eval_loss=float(eval_losses[-1]) if eval_losses else None,
        steps=int(trainer.state.global_step),
        tokens_seen=tokens,
        duration_s=round(duration, 1),
        global_batch=(trainer.args.per_device_train_batch_size * trainer.args.gradient_accumulation_steps
                      * trainer.args.world_size),
        world_size=int(trainer.args.world_size),
    )


def machine(device: Device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    where = "cuda" if device.kind == "cuda" else f"cpu, {device.threads} thread(s) per process"
    return f"{socket.gethostname()}: {cpu} ({where}, {device.world_size} process(es), bf16={device.bf16})"


class _Registry:
    """The run's row in the model registry (main process only; a resumed run updates the same row)."""

    def __init__(self, settings: Any, config: RunConfig, device: Device, out: Path) -> None:
        self.settings, self.config, self.device, self.out = settings, config, device, str(out)

    def _record(self, **values: Any) -> int | None:
        if not self.device.is_main:
            return None
        from curation.store import Store

        store = Store.open(self.settings)
        try:
            return store.models.record(self.out, **values).id
        finally:
            store.close()

    def started(self, data: TrainingData, preset: Preset, base_name: str, base_path: str) -> None:
        self._record(
            name=self.config.name or Path(self.out).name, status="running", base_model=base_name,
            base_model_path=base_path, method="lora" if preset.lora else "full", data_source=data.source,
            data_hash=data.data_hash, role=self.config.role or ("selection" if data.manifest else "file"),
            n_examples=len(data.records), preset=preset.name, overrides=dict(self.config.overrides),
            machine=machine(self.device), job_id=self.config.job_id, created_by=self.config.created_by,
            details={"command": self.config.command, "data_file": str(Path(self.config.data).resolve()),
                     "notes": data.notes},
        )

    def finished(self, result: RunResult) -> int | None:
        return self._record(
            status=result.status, adapter_path=result.weights_path, final_loss=result.final_loss,
            eval_loss=result.eval_loss, duration_s=result.duration_s, tokens_seen=result.tokens_seen,
            steps=result.steps, global_batch=result.global_batch
        )

    def failed(self, err: BaseException, duration: float) -> None:
        try:
            self._record(status="failed", duration_s=round(duration, 1),
                         details={"command": self.config.command, "error": f"{type(err).__name__}: {err}"})
        except Exception as registry_err:  # noqa: BLE001 - the run's own error matters more; say both
            print(f"warning: the registry row could not be marked failed: {registry_err}", flush=True)


