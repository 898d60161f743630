"""Trainer callbacks: the metrics log the studio tails, and graceful cancel through a file.

``metrics.jsonl`` gets one JSON object per logged step (and per evaluation): step, loss, eval_loss when
evaluated, learning_rate, epoch, tokens_seen, eta_s, time. ``run.json`` beside it says how many steps the
run has, so a reader can draw progress before the first log line.

Cancel: whoever wants the run to stop creates ``<out>/CANCEL`` (the job handler does, on a cancel request).
At the end of the next optimiser step every process sees it, the trainer saves a checkpoint and stops;
``--resume`` continues from that checkpoint.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from training.sft.files import CANCEL_FILE, METRICS_FILE, RUN_FILE

LOGGED_KEYS = ("loss", "eval_loss", "learning_rate", "grad_norm", "mean_token_accuracy", "eval_mean_token_accuracy")


class MetricsLog(TrainerCallback):
    """Appends what the trainer logs to ``metrics.jsonl`` (main process only), with tokens seen and ETA."""

    def __init__(self, out_dir: Path, extra_run_info: dict[str, Any]) -> None:
        self.out_dir = Path(out_dir)
        self.extra = extra_run_info
        self.started = time.monotonic()
        self.first_step = 0
        self.tokens_seen = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()
        self.first_step = state.global_step  # a resumed run measures its speed from where it restarted
        if state.is_world_process_zero:
            info = {**self.extra, "max_steps": state.max_steps, "resumed_from_step": state.global_step,
                    "num_train_epochs": args.num_train_epochs}
            (self.out_dir / RUN_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "num_tokens" in logs:
            self.tokens_seen = int(logs["num_tokens"])
        if not any(key in logs for key in ("loss", "eval_loss")):
            return  # the final summary (train_loss, train_runtime) goes to result.json instead
        row: dict[str, Any] = {"step": state.global_step, "epoch": round(float(state.epoch or 0.0), 4)}
        row.update({key: float(logs[key]) for key in LOGGED_KEYS if key in logs})
        row["tokens_seen"] = self.tokens_seen or int(getattr(state, "num_input_tokens_seen", 0) or 0)
        row["eta_s"] = self.eta_s(state)
        row["time"] = time.time()
        with open(self.out_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")

    def eta_s(self, state: Any) -> float | None:
        done = state.global_step - self.first_step
        if done <= 0 or not state.max_steps:
            return None
        per_step = (time.monotonic() - self.started) / done
        return round(per_step * (state.max_steps - state.global_step), 1)


class CancelOnFile(TrainerCallback):
    """Stops the run at a step boundary, with a checkpoint, once ``<out>/CANCEL`` exists."""

    def __init__(self, out_dir: Path) -> None:
        self.cancel_file = Path(out_dir) / CANCEL_FILE
        self.cancelled_at: int | None = None

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested():
            control.should_save = True
            control.should_training_stop = True
            self.cancelled_at = state.global_step
        return control

    def requested(self) -> bool:
        """Every process must stop at the same step: with several, they agree (any one seeing the file counts)."""
        seen = self.cancel_file.exists()
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            import torch

            device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
            flag = torch.tensor([1 if seen else 0], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            seen = bool(flag.item())
        return seen
