"""LLM rater throughput against a loopback endpoint that adds a fixed latency to every call.

    .venv/bin/python benchmarks/llm_throughput.py [--n 1000] [--delay 0.2] [--concurrency 16] [--sequential-n N]

Each row is a full ``rate()`` run on a fresh SQLite workspace (prompt building, the real openai client,
retry bookkeeping, every call and rating committed as it completes, the output file written):
- sequential baseline: concurrency 1, the same records and endpoint, measured in the same run
  (``--sequential-n`` measures it on fewer records and scales linearly; the table says so);
- bounded concurrency (default 16);
- re-run of the finished job: answered from the store, no call made.
Floor: 1,000 ratings in ≤ 20 s at concurrency 16 with 200 ms per call.
The endpoint runs in its own process (tests/llm_fault_server.py) so it does not share the client's GIL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from curation.config import load_settings
from curation.raters.run import RateRequest, rate
from curation.store import Store


def start_endpoint(delay_s: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "llm_fault_server.py"), "--delay", str(delay_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def write_input(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            row = {
                "instruction": f"Explain idea number {i} in two sentences.",
                "input": "",
                "output": f"Idea {i} is " + "fine. " * 20,
            }
            handle.write(json.dumps(row) + "\n")
    return path


def timed_run(base_url: str, input_path: Path, n_label: str, concurrency: int, workspace: Path) -> tuple[float, object]:
    settings = load_settings(env={"CURATION_WORKSPACE": str(workspace)}, overrides=["llm.model=bench-model"])
    store = Store.open(settings)
    request = RateRequest(
        rater="llm",
        input=str(input_path),
        out=str(workspace / f"out-{n_label}.jsonl"),
        base_url=base_url,
        concurrency=concurrency,
    )
    started = time.perf_counter()
    summary = rate(request, settings, store)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed, summary


def cpu_model() -> str:
    """``lscpu``'s model name (where the numbers were measured)."""
    try:
        listing = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in listing.splitlines() if line.startswith("Model name")), "?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds the endpoint adds to every call")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--sequential-n", type=int, default=0, help="records for the sequential baseline (default: --n)"
    )
    args = parser.parse_args()
    sequential_n = args.sequential_n or args.n
    process, base_url = start_endpoint(args.delay)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            full = write_input(root / "in.jsonl", args.n)
            seq_input = full if sequential_n == args.n else write_input(root / "seq.jsonl", sequential_n)

            seconds, summary = timed_run(base_url, seq_input, "seq", 1, root / "sequential")
            scaled = seconds * args.n / sequential_n
            label = (
                "measured"
                if sequential_n == args.n
                else f"measured on {sequential_n}, scaled x{args.n / sequential_n:g}"
            )
            rows.append(("sequential (concurrency 1)", summary, scaled, label))

            seconds, summary = timed_run(base_url, full, "par", args.concurrency, root / "concurrent")
            rows.append((f"concurrency {args.concurrency}", summary, seconds, "measured"))

            seconds, summary = timed_run(base_url, full, "par", args.concurrency, root / "concurrent")
            rows.append(("re-run of the finished job", summary, seconds, "measured"))
    finally:
        process.terminate()
        process.wait(timeout=10)

    baseline = rows[0][2]
    print(
        f"\n{args.n} ratings, endpoint adds {args.delay * 1000:.0f} ms per call; load average {os.getloadavg()[0]:.2f}; "
        f"CPU {cpu_model()} x {os.cpu_count()}\n"
    )
    print("| run | calls made | ok | seconds | ratings/s | speed-up vs sequential | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, summary, seconds, note in rows:
        print(
            f"| {name} | {summary.calls} | {summary.ok} | {seconds:.1f} | {args.n / seconds:.0f} | "  # type: ignore[attr-defined]
            f"{baseline / seconds:.1f}x | {note} |"
        )
    ideal = args.n * args.delay / args.concurrency
    print(
        f"\nIdeal at concurrency {args.concurrency}: {ideal:.1f} s (n x delay / concurrency). Floor: ≤ 20 s for 1,000."
    )


if __name__ == "__main__":
    main()
