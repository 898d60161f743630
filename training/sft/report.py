"""What the Train page shows, computed without torch: loss curves of several runs, ETA, the registry table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from training.sft.files import RUN_FILE, read_json, read_metrics

X_AXES = {"step": "optimiser step", "tokens_seen": "tokens seen"}


def metrics_frame(runs: dict[str, str | Path]) -> pd.DataFrame:
    """One row per logged point of every run (label -> output folder): run, step, tokens_seen, loss, eval_loss."""
    rows = []
    for label, out in runs.items():
        for row in read_metrics(Path(out)):
            rows.append({"run": label, "step": row.get("step"), "tokens_seen": row.get("tokens_seen"),
                         "loss": row.get("loss"), "eval_loss": row.get("eval_loss"), "eta_s": row.get("eta_s")})
    return pd.DataFrame(rows, columns=["run", "step", "tokens_seen", "loss", "eval_loss", "eta_s"])


def loss_figure(frame: pd.DataFrame, x: str = "step") -> Any:
    """Training loss as lines, eval loss as dashed lines with markers, one colour per run."""
    import plotly.graph_objects as go

    figure = go.Figure()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    for i, (run, points) in enumerate(frame.groupby("run", sort=False)):
        colour = palette[i % len(palette)]
        train = points.dropna(subset=["loss"])
        figure.add_trace(go.Scatter(x=train[x].tolist(), y=train["loss"].tolist(), mode="lines", name=f"{run} — train",
                                    line={"color": colour}))
        evals = points.dropna(subset=["eval_loss"])
        if len(evals):
            figure.add_trace(go.Scatter(x=evals[x].tolist(), y=evals["eval_loss"].tolist(), mode="lines+markers", name=f"{run} — eval",
                                        line={"color": colour, "dash": "dash"}))
    figure.update_layout(xaxis_title=X_AXES.get(x, x), yaxis_title="loss (response tokens)", height=420,
                         margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h"})
    return figure


def progress_of(out: str | Path) -> dict[str, Any]:
    """Where a run is: step, max_steps, last loss, ETA in seconds (None before the first step)."""
    rows = [row for row in read_metrics(Path(out)) if "loss" in row]
    info = read_json(Path(out) / RUN_FILE)
    last = rows[-1] if rows else {}
    return {"step": last.get("step", 0), "max_steps": info.get("max_steps"), "loss": last.get("loss"),
            "eta_s": last.get("eta_s"), "tokens_seen": last.get("tokens_seen", 0)}


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def registry_frame(models: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "id": m.id, "name": m.name, "role": m.role, "status": m.status, "base model": m.base_model,
                "method": m.method, "preset": m.preset,
                "overrides": ", ".join(f"{k}={v}" for k, v in sorted(m.overrides.items())),
                "examples": m.n_examples, "final loss": m.final_loss, "eval loss": m.eval_loss,
                "tokens": m.tokens_seen, "steps": m.steps, "global batch": m.global_batch,
                "minutes": round(m.duration_s / 60, 1) if m.duration_s else None, "machine": m.machine,
                "job": m.job_id, "data hash": m.data_hash, "weights": m.adapter_path,
            }
            for m in models
        ]
    )
