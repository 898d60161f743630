"""End to end in a real browser: `streamlit run` on loopback, Debian's chromium driven by playwright.

One person's session, as a newcomer would go: the first start builds the demo, they create the first lead
account with the one-time token `./run studio` printed, upload a file (the report names the bad rows), move τ and watch the kept count change, open an
example and override it, lasso points on the map and see them listed, and download the selection.
Screenshots of every step are saved under test-artifacts/e2e/ (git-ignored).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from curation.config import load_settings
from curation.records import Record
from curation.store import FlagRow, RatingRow, Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts" / "e2e"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CATEGORIES = ("brainstorming", "classification", "open_qa", "summarization")
N_GOOD = 48



@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's chromium; skipped where it is missing, except under ./run test, where missing fails."""
    if not CHROMIUM.exists():
        reason = "Debian's chromium is not at /usr/bin/chromium (apt-get install -y chromium; ./run test installs it)"
        if os.environ.get("CURATION_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def upload_rows() -> tuple[list[Record], bytes]:
    """A JSONL file of N_GOOD good rows and two bad ones (invalid JSON, an empty instruction)."""
    records = [Record(f"Write a sentence about topic {i}.", "", f"Topic {i} matters because reason {i}." + " More." * (i % 6),
                      category=CATEGORIES[i % len(CATEGORIES)]) for i in range(N_GOOD)]
    lines = [json.dumps({"instruction": r.instruction, "input": r.input, "output": r.output, "category": r.category})
             for r in records]
    lines[10:10] = ["{this is not json", json.dumps({"instruction": "", "output": "orphan answer"})]
    return records, ("\n".join(lines) + "\n").encode()


class RequestLog(BaseHTTPRequestHandler):
    """A loopback server standing in for an attacker's image host: it only counts the requests it gets."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        RequestLog.seen.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def image_host() -> Iterator[str]:
    RequestLog.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RequestLog)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "workspace"


@pytest.fixture
def studio_url(chromium: Path, workspace: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "CURATION_WORKSPACE": str(workspace), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("DATABASE_URL", None)
    log_path = workspace.parent / "streamlit.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true", "--server.address=127.0.0.1",
             f"--server.port={port}", "--server.fileWatcherType=none", "--browser.gatherUsageStats=false"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            yield wait_until_healthy(server, f"http://127.0.0.1:{port}", log_path)
        finally:
            os.killpg(server.pid, signal.SIGTERM)  # the server's own process group (start_new_session)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


def wait_until_healthy(server: subprocess.Popen, url: str, log_path: Path, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read() == b"ok":
                    return url
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"streamlit did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.3)


@pytest.fixture
def browser_page(chromium: Path, request: pytest.FixtureRequest):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "failure.png").unlink(missing_ok=True)  # only this run's failure, if any
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(90_000)
        failures_before = request.session.testsfailed
        yield page
        if request.session.testsfailed > failures_before:  # the call phase has reported by now
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
        context.close()
        browser.close()


def shot(page, name: str, show=None) -> None:
    """Screenshot of the window (Streamlit scrolls inside it), after scrolling ``show`` into view."""
    if show is not None:
        scroll_into_view(show)
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def scroll_into_view(locator, tries: int = 20) -> None:
    """Scroll to ``locator``, again if a polling fragment's rerun replaced the element in between.

    A fragment redraws its elements on every tick; the element found a moment ago can be detached by the
    time the scroll runs. The locator finds the new one on the next try (between ticks it is stable).
    """
    from playwright.sync_api import Error

    for attempt in range(tries):
        try:
            locator.wait_for(state="attached")
            locator.scroll_into_view_if_needed(timeout=10_000)
            return
        except Error as err:
            if "not attached" not in str(err) or attempt == tries - 1:
                raise


def settle(page) -> None:
    """Wait until Streamlit has finished the current run (its status widget disappears)."""
    page.wait_for_timeout(400)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=90_000)


def sign_in(page, name: str = "lea", password: str = "lead-pass-1") -> None:
    """Sign in through the sidebar form and wait for the studio to say who is signed in."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_label("Name", exact=True).fill(name)
    sidebar.get_by_label("Password", exact=True).fill(password)
    sidebar.get_by_role("button", name="Sign in").click()
    sidebar.get_by_text(f"Signed in as {name}").wait_for()
    settle(page)


def go_to(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=title, level=1).wait_for()
    settle(page)


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text(label, exact=True)).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def wait_for_metric_change(page, label: str, before: int, timeout_s: float = 90) -> int:
    """The metric's new value once it differs from ``before`` and has stopped moving (reruns done).

    Held keys commit the slider in several debounced steps, each a rerun; between two of them the
    status widget is briefly gone, so one quiet moment is not enough: three equal reads in a row are.
    """
    deadline = time.monotonic() + timeout_s
    reads: list[int] = []
    while time.monotonic() < deadline:
        settle(page)
        page.wait_for_timeout(1000)
        reads.append(int(metric(page, label)))
        if reads[-1] != before and len(reads) >= 3 and reads[-3] == reads[-2] == reads[-1]:
            return reads[-1]
    raise AssertionError(f"the '{label}' count stayed at {before} or kept moving: {reads}")


def wait_for_metric(page, label: str, expected: int, timeout_s: float = 60) -> None:
    """Poll until the metric shows ``expected``; a wrong value that never turns right fails the test."""
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        settle(page)
        seen = int(metric(page, label))
        if seen == expected:
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"the '{label}' count is {seen}, expected {expected}")


def wait_for_slider_to_rest(thumb, timeout_s: float = 30) -> None:
    """Keys pressed in a burst are applied by the browser over time; wait until the value stops moving."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        now = thumb.get_attribute("aria-valuenow")
        if now == last:
            return
        last = now
        thumb.page.wait_for_timeout(1000)
    raise AssertionError("the slider kept moving")


def test_a_newcomer_imports_rates_overrides_maps_and_exports(studio_url, workspace, browser_page, tmp_path, image_host):
    page = browser_page
    records, content = upload_rows()

    # First start: the demo is built by itself and the first page lists it with sizes.
    page.goto(studio_url)
    page.get_by_role("heading", name="Data", level=1).wait_for()
    # Table cells live in the data grid's accessible (hidden) mirror of its canvas.
    page.get_by_text("car-selected-1k", exact=True).wait_for(state="attached", timeout=120_000)
    settle(page)
    shot(page, "01-first-start-demo-listed")

    # Earlier ratings of these texts exist (ratings are keyed by content): importing the file picks them up.
    store = Store.open(load_settings(env={"CURATION_WORKSPACE": str(workspace)}))
    store.ratings.save([RatingRow(r.id, "iqs", "e2e", "ok", score=i / 10, explanation=f"scored {i / 10:.1f}")
                        for i, r in enumerate(records)])

    # No account yet: create the first lead account with the one-time token `./run studio` prints.
    printed = subprocess.run([sys.executable, "-m", "curation", "users", "setup-token"], cwd=REPO, check=True,
                             env={**os.environ, "CURATION_WORKSPACE": str(workspace)}, capture_output=True, text=True)
    token = printed.stdout.split("in the sidebar: ")[1].split()[0]
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_label("Name", exact=True).fill("lea")
    sidebar.get_by_label("Password", exact=True).fill("lead-pass-1")
    sidebar.get_by_label("One-time setup token", exact=True).fill(token)
    sidebar.get_by_role("button", name="Create lead account").click()
    sidebar.get_by_text("Signed in as").wait_for()
    settle(page)

    # Upload a file: the report names the two bad rows and offers them for download.
    upload = tmp_path / "topics.jsonl"
    upload.write_bytes(content)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(upload))
    page.get_by_text("topics.jsonl").first.wait_for()
    settle(page)
    name_box = page.get_by_label("Dataset name")
    name_box.fill("topics")
    name_box.press("Enter")
    settle(page)
    page.get_by_role("button", name="Validate and import").click()
    page.get_by_text(f"Imported 'topics': {N_GOOD} examples, 2 rejected rows.").wait_for()
    page.get_by_text(f"topics.jsonl: {N_GOOD} loadable, 2 rejected").wait_for()
    with page.expect_download() as rejected:
        page.get_by_role("button", name="Download the 2 rejected rows (CSV)").click()
    rejected_csv = Path(rejected.value.path()).read_text()
    assert "invalid JSON" in rejected_csv and rejected_csv.count("\n") >= 3
    settle(page)
    shot(page, "02-imported-with-report", page.get_by_text("Validation report"))
    assert store.datasets.get("topics").created_by == "lea"

    # Explore: move τ and see the kept count change.
    go_to(page, "Explore")
    page.get_by_text("Kept share per category").wait_for()
    kept_before = int(metric(page, "Kept"))
    thumb = page.get_by_role("slider").first
    thumb.focus()
    for _ in range(40):
        thumb.press("ArrowRight")
    wait_for_slider_to_rest(thumb)
    kept_after = wait_for_metric_change(page, "Kept", kept_before)
    assert kept_after < kept_before
    shot(page, "03-tau-moved")

    # Open an example (by id here: the grid is a canvas) and override it with a reason. Its flag reason and
    # the override reason hold a markdown image pointing at a loopback server: shown as text, never fetched.
    target = records[0]  # score 0.0: dropped by the machine
    image = f"![x]({image_host}/x.png)"
    store.flags.replace(store.datasets.get("topics").id, ["short_output"],
                        [FlagRow(target.id, "short_output", f"quotes {image}")])
    opener = page.get_by_label("…or open an example by id")
    opener.fill(target.id)
    opener.press("Enter")
    page.get_by_text(f"Example {target.id}").wait_for()
    page.get_by_text("scored 0.0").first.wait_for(state="attached")
    form = page.locator('[data-testid="stForm"]').filter(has=page.get_by_text("Record decision"))
    form.get_by_text("keep", exact=True).click()
    form.get_by_label("Reason (required for keep or drop)").fill(f"clear and correct {image}")
    form.get_by_role("button", name="Record decision").click()
    page.get_by_text("Recorded: keep by lea.").wait_for()
    settle(page)
    page.get_by_text(f"In force: keep by lea — clear and correct {image}").wait_for()
    page.get_by_text(f"quotes {image}").first.wait_for(state="attached")
    # Every image on the page has been requested or decided by now (they load as soon as they render).
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
    assert RequestLog.seen == []
    wait_for_metric(page, "Kept", kept_after + 1)
    shot(page, "04-override-recorded", page.get_by_text("Recorded: keep by lea."))
    decision = store.overrides.in_force(store.datasets.get("topics").id)[target.id]
    assert (decision.decision, decision.user) == ("keep", "lea")
    kept_now = kept_after + 1

    # Map: compute it (a background job: embeddings, clusters, UMAP), then lasso points and see them listed.
    go_to(page, "Map")
    page.get_by_text("No map yet for 'topics'").wait_for()
    page.get_by_role("button", name="Compute the map").click()
    page.locator('[data-testid="stPlotlyChart"]').wait_for(timeout=600_000)
    settle(page)
    shot(page, "05-map")
    lasso_the_middle(page)
    page.get_by_text(re.compile(r"\d+ examples selected on the map")).wait_for()
    selected = int(re.search(r"(\d+) examples selected", page.get_by_text(re.compile("examples selected on the map"))
                             .inner_text()).group(1))
    assert 0 < selected <= N_GOOD
    shot(page, "06-lasso-selection", page.get_by_text(re.compile("examples selected on the map")))

    # Export: the Map was looked at last, so CaR is offered; choose the τ from Explore (with the override).
    go_to(page, "Export")
    page.get_by_text("Threshold τ on a rater's score (Explore)").click()
    settle(page)
    wait_for_metric(page, "Kept", kept_now)
    page.get_by_role("button", name="Write the export").click()
    page.get_by_text(re.compile("^Wrote")).wait_for()
    settle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile(r"^Download .*\.zip")).click()
    with zipfile.ZipFile(download.value.path()) as archive:
        names = sorted(archive.namelist())
        manifest = json.loads(archive.read(next(n for n in names if n.endswith(".manifest.json"))))
        rows = archive.read(next(n for n in names if n.endswith(".jsonl"))).decode().splitlines()
    assert len(rows) == kept_now and manifest["counts"]["kept"] == kept_now
    assert manifest["method"] == "threshold" and manifest["exported_by"] == "lea"
    assert any(o["id"] == target.id and o["user"] == "lea" for o in manifest["overrides"])
    shot(page, "07-exported", page.get_by_text(re.compile("^Wrote")))
    store.close()


def lasso_the_middle(page) -> None:
    """Draw a lasso loop over the left part of the plot area (the figure's drag mode is lasso)."""
    area = page.locator('[data-testid="stPlotlyChart"] .nsewdrag').first.bounding_box()
    cx, cy = area["x"] + area["width"] * 0.35, area["y"] + area["height"] / 2
    rx, ry = area["width"] * 0.3, area["height"] * 0.45
    page.mouse.move(cx - rx, cy - ry)
    page.mouse.down()
    for x, y in ((cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry), (cx - rx, cy - ry + 2)):
        page.mouse.move(x, y, steps=12)
    page.mouse.up()


def test_a_page_url_opened_first_still_goes_through_the_app(studio_url, browser_page):
    """The first request of a fresh server names a page: app.py's navigation must serve it anyway."""
    page = browser_page
    page.goto(f"{studio_url}/rate")
    page.get_by_role("heading", name="Rate", level=1).wait_for(timeout=120_000)
    settle(page)
    links = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
    # icon name, title; a signed-out visitor sees the read-only pages (no Vote, no Studies)
    assert [link.split()[-1] for link in links] == ["Data", "Rate", "Explore", "Map", "Export", "Compare", "Train", "Answers"]
    shot(page, "00-page-url-first")
