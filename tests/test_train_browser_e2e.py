"""The Train page in a real browser: a lead launches a tiny run and watches its loss curve grow.

A tiny random-initialised llama (training.sft.tiny) stands in for the base model, so the run is real
(TRL + PEFT in a worker process, metrics.jsonl polled by the page's fragment) and takes seconds. Shares the
server and browser fixtures of tests/test_browser_e2e.py. Screenshots go to test-artifacts/e2e/train-*.png.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from test_browser_e2e import (  # fixtures are used by name
    browser_page,  # noqa: F401
    chromium,  # noqa: F401
    go_to,
    settle,
    shot,
    sign_in,
    studio_url,  # noqa: F401
    workspace,  # noqa: F401
)

from curation.alpaca import render_prompt
from curation.config import load_settings
from curation.formats import read_file
from curation.select import select_records
from curation.store import Store
from training.sft.tiny import build_tiny_model

pytestmark = [pytest.mark.browser, pytest.mark.slow]

POOL = Path(__file__).resolve().parent.parent / "curation" / "data" / "pools" / "alpaca_random_9k.json"
STEPS = 40
POINTS = """() => {
  const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  return plot && plot.data && plot.data.length ? plot.data[0].x.length : 0;
}"""


@pytest.fixture
def tiny_base(workspace: Path, tmp_path: Path) -> Path:  # noqa: F811
    """Before the server starts: a lead, a dataset with a saved selection, and a tiny base model."""
    settings = load_settings(env={"CURATION_WORKSPACE": str(workspace)})
    store = Store.open(settings)
    store.users.create("lea", "lead-pass-1", "lead")
    records = read_file(POOL).records[:40]
    info = store.datasets.create("alpaca40", records, created_by="tests")
    run = select_records(records, "random", {"size": 12, "seed": 1}, settings, dataset_name="alpaca40")
    store.selections.save(info.id, "best12", run.manifest, created_by="tests")
    store.close()
    return build_tiny_model(tmp_path / "tiny", [render_prompt(r.instruction, r.input) + r.output for r in records])


def fill_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    settle(page)


def points_on_chart(page) -> int:
    return int(page.evaluate(POINTS))


def wait_for_points(page, more_than: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = points_on_chart(page)
        if seen > more_than:
            return seen
        page.wait_for_timeout(250)
    raise AssertionError(f"the loss curve did not grow past {more_than} points in {timeout_s:.0f} s")


def trainer_pid(tiny_base: Path) -> int | None:
    """The ``python -m training sft`` process training on the tiny base, found by its command line."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not a process folder
        if b"sft" in argv and str(tiny_base).encode() in argv:
            return int(proc.name)
    return None


def freeze_after_first_metrics(workspace: Path, tiny_base: Path, timeout_s: float) -> int:  # noqa: F811
    """Wait for the run's first metrics line, then SIGSTOP its trainer; returns the trainer's pid."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        logs = [p for p in workspace.rglob("metrics.jsonl") if p.stat().st_size]
        pid = trainer_pid(tiny_base) if logs else None
        if pid is not None:
            os.kill(pid, signal.SIGSTOP)
            return pid
        time.sleep(0.01)
    raise AssertionError(f"no metrics line from a running trainer in {timeout_s:.0f} s")


def test_a_lead_launches_a_tiny_run_and_sees_the_curve_grow(browser_page, studio_url, tiny_base, workspace):  # noqa: F811
    page = browser_page
    page.goto(studio_url)
    settle(page)
    sign_in(page)
    go_to(page, "Train")

    base = page.get_by_label("Base model (Hugging Face name or folder; smollm2-135m is the bundled one)")
    base.fill(str(tiny_base))
    base.press("Enter")
    settle(page)
    page.get_by_text("Overrides (recorded with the run)").click()
    fill_number(page, "Per-device batch", 2)
    fill_number(page, "Global batch", 2)
    fill_number(page, "Stop after N steps (0: the preset's epochs)", STEPS)
    page.get_by_role("button", name="Train", exact=True).click()
    settle(page)

    # The page's fragment polls the run's metrics log: the curve appears, then gains points while it runs.
    # A tiny run can finish between two polls of a loaded machine, so the trainer is frozen (SIGSTOP) as
    # soon as its first metrics line exists: the page must show a partial curve, then see it grow.
    trainer = freeze_after_first_metrics(workspace, tiny_base, timeout_s=400)
    try:
        first = wait_for_points(page, 0, timeout_s=400)
        shot(page, "train-first-points", page.locator('[data-testid="stPlotlyChart"]').first)
    finally:
        os.kill(trainer, signal.SIGCONT)
    assert first < STEPS, "the run had already finished when its curve first appeared: nothing seen growing"
    later = wait_for_points(page, first, timeout_s=300)
    assert first < later <= STEPS
    final = wait_for_points(page, STEPS - 1, timeout_s=400)
    assert final == STEPS
    shot(page, "train-finished", page.locator('[data-testid="stPlotlyChart"]').first)
