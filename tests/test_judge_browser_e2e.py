"""End to end in a real browser: a lead launches a judge run on Compare against a loopback judge endpoint
and watches the per-category chart appear as the verdicts arrive. Screenshots under test-artifacts/e2e/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from judge_server import JudgeServer
from test_browser_e2e import browser_page, chromium, go_to, settle, shot, sign_in, studio_url, workspace  # noqa: F401

from curation.config import load_settings
from curation.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CATEGORIES = ("writing", "math", "coding")


@pytest.fixture
def judge_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[JudgeServer]:
    with JudgeServer(delay_s=0.05) as server:
        # The studio and its job workers read these from the environment (set before the server starts).
        monkeypatch.setenv("CURATION__JUDGE__BASE_URL", server.base_url)
        monkeypatch.setenv("CURATION__JUDGE__MODEL", "loopback-judge")
        yield server


@pytest.fixture
def prepared(workspace: Path, judge_endpoint: JudgeServer) -> Path:  # noqa: F811
    store = Store.open(load_settings(env={"CURATION_WORKSPACE": str(workspace)}))
    store.users.create("lea", "lead-pass-1", role="lead")
    store.close()
    for model, offset in (("curated", 3), ("full", 0)):
        folder = workspace / "answers" / model
        folder.mkdir(parents=True)
        rows = [{"id": str(i), "instruction": f"Question {i}?", "input": "", "category": CATEGORIES[i % 3],
                 "output": f"@score={min(10, 4 + offset + i % 3)} answer {i}"} for i in range(12)]
        (folder / "vicuna80.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return workspace


def test_a_lead_launches_a_judge_run_and_sees_the_category_chart(prepared, judge_endpoint, request, browser_page):  # noqa: F811
    url = request.getfixturevalue("studio_url")  # started after the environment above is set
    page = browser_page
    page.goto(url)
    page.get_by_role("heading", name="Data", level=1).wait_for()
    settle(page)
    sign_in(page)

    go_to(page, "Compare")
    page.get_by_text("Before you launch").wait_for()
    page.get_by_text("24 calls to make").wait_for()
    shot(page, "judge-01-cost")
    page.get_by_role("button", name="Judge 1 comparison").click()

    # The results fragment polls the store: the per-category chart appears once verdicts are in.
    # (.first: while the fragment reruns, the old chart can still be in the page beside the new one)
    chart_title = page.get_by_text("curated vs full per category — vicuna80").first
    chart_title.wait_for(timeout=180_000)
    settle(page)
    for category in CATEGORIES:
        page.locator(".js-plotly-plot").get_by_text(category, exact=True).first.wait_for()
    shot(page, "judge-02-category-chart", chart_title)
    assert judge_endpoint.calls() == 24
