"""One τ step in a real browser on 52,000 rated rows: arrow key on the slider -> the Kept count changes.

    .venv/bin/python benchmarks/tau_browser.py [--rows 52000] [--steps 15]

Starts `streamlit run app.py` on loopback on a fresh workspace holding one dataset of ``--rows`` rated
examples, opens Explore in chromium (playwright, the flags of tests/test_browser_e2e.py) and times, per
step, from pressing ArrowRight on the τ slider to the moment the "Kept" metric on screen shows another
number. Two rows, same run, same server: the studio as shipped (τ's section is an st.fragment, the rest of
the page keeps its render) and the baseline `?tau_rerun=page` (the whole page reruns per step, as before).
Floor: median ≤ 150 ms for the fragment. Prints the CPU model and the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from tau_slider import make_store  # the same 52k workspace as the server-side benchmark)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KEPT_JS = """() => {
  const box = [...document.querySelectorAll('[data-testid="stMetric"]')]
    .find(m => m.querySelector('[data-testid="stMetricLabel"]')?.innerText.trim() === 'Kept');
  return box ? box.querySelector('[data-testid="stMetricValue"]').innerText.trim() : null;
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_studio(workspace: Path, port: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "CURATION_WORKSPACE": str(workspace), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("DATABASE_URL", None)
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true", "--server.address=127.0.0.1",
             f"--server.port={port}", "--server.fileWatcherType=none", "--browser.gatherUsageStats=false"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                if answer.read() == b"ok":
                    return server
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not start: {log_path.read_text()[-2000:]}")


def settle(page) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=600_000)


def step_times(page, url: str, steps: int) -> list[float]:
    """Seconds from ArrowRight on the τ slider to a new Kept number on screen, one per step."""
    page.goto(url)
    page.get_by_text("Kept share per category").wait_for(timeout=600_000)
    settle(page)
    thumb = page.get_by_role("slider").first
    thumb.focus()
    thumb.press("ArrowLeft")  # warm-up step (first fragment run, first figure)
    settle(page)
    samples = []
    for _ in range(steps):
        before = page.evaluate(KEPT_JS)
        started = time.perf_counter()
        thumb.press("ArrowRight")
        page.wait_for_function(f"() => ({KEPT_JS})() !== {before!r}", polling="raf", timeout=60_000)
        samples.append(time.perf_counter() - started)
        settle(page)  # the run has finished before the next step
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=52_000)
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder) / "workspace"
        store, _ = make_store(args.rows, workspace)
        store.close()
        port = free_port()
        server = start_studio(workspace, port, Path(folder) / "streamlit.log")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(600_000)
                base = f"http://127.0.0.1:{port}/explore"
                rows = [("τ section as an st.fragment (the studio)", step_times(page, base, args.steps)),
                        ("whole page reruns (?tau_rerun=page, the baseline)", step_times(page, base + "?tau_rerun=page",
                                                                                        args.steps))]
                browser.close()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    model = next((line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], check=False, capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")), "?")
    load = os.getloadavg()
    print(f"\n### τ step in chromium, {args.rows:,} rated rows ({model}; {os.cpu_count()} CPUs; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})\n")
    print("| arrow key -> Kept changes on screen | median ms | min ms | max ms | steps |")
    print("|---|---:|---:|---:|---:|")
    for name, samples in rows:
        ms = [s * 1000 for s in samples]
        print(f"| {name} | {statistics.median(ms):.0f} | {min(ms):.0f} | {max(ms):.0f} | {len(ms)} |")
    print("\nFloor: median ≤ 150 ms for the fragment.")


if __name__ == "__main__":
    main()
