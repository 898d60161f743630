"""The files of a run's output folder and how to read them (no torch: the studio reads these).

``OUT/metrics.jsonl`` one JSON object per logged step; ``OUT/run.json`` written when training starts
(max_steps, command, global batch); ``OUT/result.json`` at the end; ``OUT/CANCEL`` asks the run to stop
with a checkpoint; ``OUT/checkpoints/`` the trainer's checkpoints; ``OUT/adapter/`` or ``OUT/model/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CANCEL_FILE = "CANCEL"
METRICS_FILE = "metrics.jsonl"
RUN_FILE = "run.json"
RESULT_FILE = "result.json"
LOG_FILE = "train.log"


def read_json(path: Path) -> dict[str, Any]:
    """A small JSON file, or {} while it does not exist yet or is being replaced."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def read_metrics(out_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl``; a line being written (no newline yet) is left for the next read."""
    path = Path(out_dir) / METRICS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.endswith("\n") and line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn line from a crash mid-write; the next lines are whole
    return rows
