"""Job kinds for the tests only (registered through the setting ``jobs.kinds``, never shipped).

Workers import this module as ``job_kinds``: the tests put this folder on the workers' PYTHONPATH.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from curation.jobs import JobContext

TEST_KINDS = {
    "sleep": "job_kinds:sleep_job",
    "broken": "job_kinds:failing_job",
    "slotted": "job_kinds:slotted_job",
}


def sleep_job(context: JobContext) -> dict[str, Any]:
    """A job that only counts: exercises the runner (progress, cancel, kill, resume) without models."""
    steps = int(context.params.get("steps", 10))
    delay = float(context.params.get("delay_s", 0.1))
    state_file = context.params.get("state_file")
    start_at = int(Path(state_file).read_text()) if state_file and Path(state_file).exists() else 0
    for step in range(start_at, steps):
        time.sleep(delay)
        if state_file:
            write_atomically(Path(state_file), str(step + 1))
        context.progress(step + 1, steps, f"step {step + 1}/{steps}")
    return {"steps": steps, "resumed_from": start_at}


def write_atomically(path: Path, text: str) -> None:
    """A reader (the test) sees the old or the new number, never a half-written file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def failing_job(context: JobContext) -> dict[str, Any]:
    context.progress(1, 3, "one step done")
    raise ValueError("the input is broken")


def slotted_job(context: JobContext) -> dict[str, Any]:
    """Appends ``start ID`` and ``end ID`` lines to a shared file, so a test can see runs overlap or not."""
    trace = Path(context.params["trace"])
    with open(trace, "a") as handle:
        handle.write(f"start {context.job_id}\n")
    gate = context.params.get("gate")
    while gate and not Path(gate).exists():  # holds its slot until the test opens the gate
        time.sleep(0.05)
        context.progress(0, 1, "holding the slot")
    for step in range(int(context.params.get("steps", 5))):
        time.sleep(float(context.params.get("delay_s", 0.05)))
        context.progress(step + 1, int(context.params.get("steps", 5)))
    with open(trace, "a") as handle:
        handle.write(f"end {context.job_id}\n")
    return {}


def leaky_job(context: JobContext) -> dict[str, Any]:
    """Fails with the API key (and a key-shaped token) in its log and error, as an echoing endpoint would."""
    key = os.environ.get("OPENAI_API_KEY", "")
    context.log(f"calling with Authorization: Bearer {key}")
    context.progress(1, 2, f"sent key {key}")
    raise ValueError(f"the endpoint said: invalid key {key} (also sk-live{'x' * 20})")
