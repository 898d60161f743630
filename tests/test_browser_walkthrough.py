"""The walk-through of issue 16 in a real browser, the steps that once showed stale state, checked on screen.

Import two files one after the other and see both in the datasets table; filter Explore's table, then open
a row and see that row's example; export twice and see two files whose manifests differ in time; lasso
points on the map and drop them all with one reason. Shares the server and browser fixtures of
tests/test_browser_e2e.py. Screenshots go to test-artifacts/e2e/walk-*.png (git-ignored).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from test_browser_e2e import (  # fixtures are used by name
    browser_page,  # noqa: F401
    chromium,  # noqa: F401
    go_to,
    lasso_the_middle,
    settle,
    shot,
    sign_in,
    studio_url,  # noqa: F401
    workspace,  # noqa: F401
)

from curation.cluster import build_map
from curation.config import load_settings
from curation.records import Record
from curation.store import FlagRow, RatingRow, Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N = 40
CATEGORIES = ("brainstorming", "classification", "open_qa", "summarization")


@pytest.fixture
def prepared(workspace: Path) -> tuple[Store, list[Record]]:  # noqa: F811
    """Before the server starts: a lead account and a rated, flagged, mapped dataset 'walk'."""
    settings = load_settings(env={"CURATION_WORKSPACE": str(workspace)})
    store = Store.open(settings)
    store.users.create("lea", "lead-pass-1", "lead")
    records = [Record(f"Walk question {i}: describe place {i}.", "", f"Place {i} is " + "nice. " * (1 + i % 5),
                      category=CATEGORIES[i % len(CATEGORIES)]) for i in range(N)]
    info = store.datasets.create("walk", records, created_by="tests")
    store.ratings.save([RatingRow(r.id, "iqs", "walk", "ok", score=i / 10, score_0_5=i / 8, explanation="e")
                        for i, r in enumerate(records)])
    # Flag every third example from the 5th on: the "flagged" filter then starts on another row than "all".
    store.flags.replace(info.id, ["short_output"], [FlagRow(r.id, "short_output", "short")
                                                    for r in records[5::3]])
    build_map(records, settings)  # the map job's cache: the Map page opens at once
    yield store, records
    store.close()


def import_file(page, tmp_path: Path, name: str, output: str) -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_text(json.dumps({"instruction": f"Say {output}", "input": "", "output": output}) + "\n")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    page.get_by_text(f"{name}.jsonl").first.wait_for()
    settle(page)
    box = page.get_by_label("Dataset name")
    box.fill(name)
    box.press("Enter")
    settle(page)
    page.get_by_role("button", name="Validate and import").click()
    page.get_by_text(f"Imported '{name}': 1 examples, 0 rejected rows.").wait_for()
    settle(page)


def in_datasets_table(page, name: str) -> None:
    """Wait for ``name`` in the datasets table (the grid's accessible mirror of its canvas)."""
    page.locator('[data-testid="stDataFrame"]').first.get_by_text(name, exact=True).wait_for(state="attached")


def click_first_row(page) -> None:
    """Tick the first row of Explore's examples table (the row-marker column of the canvas grid)."""
    grid = page.locator('[data-testid="stDataFrame"]').filter(has=page.locator('[role="columnheader"]',
                                                                                has_text="instruction")).first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + 35 + 17)


def choose(page, box, option, timeout_s: float = 120) -> None:
    """Open a selectbox and click an option. A rerun that lands just after the click redraws the box
    closed (seen on a loaded machine), so the box is opened again until its option shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    deadline = time.monotonic() + timeout_s
    while True:
        box.click()
        try:
            option.wait_for(timeout=5_000)
        except PlaywrightTimeout:
            if time.monotonic() > deadline:
                raise
            page.keyboard.press("Escape")
            settle(page)
            continue
        option.click()
        return


def test_the_walk_through_that_once_went_stale(prepared, studio_url, browser_page, workspace, tmp_path):  # noqa: F811
    store, records = prepared
    page = browser_page
    page.goto(studio_url)
    page.get_by_role("heading", name="Data", level=1).wait_for(timeout=120_000)
    settle(page)
    sign_in(page)

    # Import twice: each new dataset is in the table at once, not one import later.
    import_file(page, tmp_path, "first", "one")
    in_datasets_table(page, "first")
    import_file(page, tmp_path, "second", "two")
    for name in ("walk", "first", "second"):
        in_datasets_table(page, name)
    shot(page, "walk-01-two-imports")

    # Explore: filter to the flagged examples, then open the first row: its example, not the unfiltered row 0's.
    go_to(page, "Explore")
    choose(page, page.locator('[data-testid="stSelectbox"]').filter(has_text="Dataset").first,
           page.get_by_role("option", name=re.compile(r"^walk")))
    settle(page)
    page.get_by_text("Kept share per category").wait_for()
    choose(page, page.locator('[data-testid="stSelectbox"]').filter(has_text="Show"),
           page.get_by_role("option", name="flagged", exact=True))
    settle(page)
    page.get_by_text(re.compile(r"^12 examples match")).wait_for()
    click_first_row(page)
    settle(page)
    first_flagged = records[5]
    page.get_by_text(f"Example {first_flagged.id}").wait_for()
    assert page.get_by_text(f"Example {records[0].id}").count() == 0
    shot(page, "walk-02-filtered-row-opened", page.get_by_text(f"Example {first_flagged.id}"))

    # Export twice: two files, two manifests, the second one's time on screen.
    go_to(page, "Export")
    written: list[str] = []
    for _ in range(2):
        page.get_by_role("button", name="Write the export").click()
        written.append(new_export_message(page, written[-1] if written else ""))
        page.wait_for_timeout(1100)  # created_at has seconds: the next export is at least a second later
    assert written[0] != written[1]
    manifests = sorted((workspace / "exports").glob("walk-*.manifest.json"))
    assert len(manifests) == 2
    times = [json.loads(m.read_text())["created_at"] for m in manifests]
    assert times[0] != times[1]
    shot(page, "walk-03-second-export")

    # Map: lasso some points and drop them all with one reason; every row is in the audit.
    go_to(page, "Map")
    page.locator('[data-testid="stPlotlyChart"]').wait_for(timeout=120_000)
    settle(page)
    lasso_the_middle(page)
    listed = page.get_by_text(re.compile(r"\d+ examples selected on the map"))
    listed.wait_for()
    selected = int(re.search(r"(\d+) examples selected", listed.inner_text()).group(1))
    assert selected > 0
    form = page.locator('[data-testid="stForm"]').filter(has=page.get_by_text("Record for all"))
    form.get_by_text("drop", exact=True).click()
    form.get_by_label(re.compile("^Reason")).fill("walk-through: off the path")
    form.get_by_role("button", name=re.compile("^Record for all")).click()
    page.get_by_text(f"Recorded 'drop' for {selected} examples by lea.").wait_for()
    settle(page)
    shot(page, "walk-04-lasso-dropped", page.get_by_text("Recorded 'drop'"))
    info = store.datasets.get("walk")
    dropped = [e for e in store.overrides.history(info.id) if e.reason == "walk-through: off the path"]
    assert len(dropped) == selected and {(e.decision, e.user) for e in dropped} == {("drop", "lea")}


def new_export_message(page, before: str, timeout_s: float = 90) -> str:
    """The "Wrote N rows to …" line once it names another file than ``before``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        settle(page)
        message = page.get_by_text(re.compile(r"^Wrote \d+ rows to "))
        if message.count():
            text = message.first.inner_text()
            if text != before:
                return text
        page.wait_for_timeout(300)
    raise AssertionError(f"no new export message after {before!r}")
