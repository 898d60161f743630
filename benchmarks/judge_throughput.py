"""Pairwise judge throughput: 252 items x 2 orders against a loopback judge that adds a fixed latency per call.

    .venv/bin/python benchmarks/judge_throughput.py [--n 252] [--delay 0.2] [--concurrency 16] [--sequential-n 40]

Each row is a full ``run_comparison`` on a fresh SQLite workspace (both answer files read and paired, the
Vicuna prompt built per item and order, the real openai client, every review parsed and committed as it
arrives, judgments.jsonl and summary.json written, bootstrap intervals computed):
- sequential baseline: concurrency 1, measured in the same run on ``--sequential-n`` items and scaled
  linearly to ``--n`` (the table says so);
- bounded concurrency (default 16) on all items;
- re-run of the finished comparison: every review is in the store, no call is made.
Floor: 252 items x 2 orders in ≤ 10 s at 16 in flight with 200 ms per call; the re-run makes 0 calls.
The endpoint (tests/judge_server.py) runs in its own process so it does not share the client's GIL.
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
from curation.judges.run import JudgeRequest, run_comparison
from curation.store import Store
from curation.testsets import BUILTIN_DIR, read_testset


def cpu_model() -> str:
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown (no lscpu)"
    return next((line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith("Model name")), "unknown")


def start_endpoint(delay_s: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "judge_server.py"), "--delay", str(delay_s)], stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def write_answers(folder: Path, n: int) -> tuple[Path, Path]:
    """Self-Instruct-252's questions with two made-up answers each (A is the longer one)."""
    items = read_testset(BUILTIN_DIR / "selfinstruct252.jsonl", "motivation_app")[:n]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, words in (("A", 12), ("B", 8)):
        path = folder / f"{name}.jsonl"
        with open(path, "w", encoding="utf-8") as handle:
            for i, item in enumerate(items):
                output = f"Answer {i} from {name}: " + "detail " * (words + i % 7)
                row = {"id": item.item_id, "instruction": item.question, "input": "", "output": output,
                       "category": item.category}
                handle.write(json.dumps(row) + "\n")
        paths.append(path)
    return paths[0], paths[1]


def timed_run(base_url: str, a: Path, b: Path, concurrency: int, workspace: Path) -> tuple[float, dict]:
    settings = load_settings(env={"CURATION_WORKSPACE": str(workspace)}, overrides=["judge.model=bench-judge"])
    store = Store.open(settings)
    request = JudgeRequest(judge="vicuna", a=str(a), b=str(b), base_url=base_url, concurrency=concurrency,
                           out=str(workspace / "out"))
    started = time.perf_counter()
    summary = run_comparison(request, settings, store)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=252)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds the endpoint adds to every call")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sequential-n", type=int, default=40, help="items for the sequential baseline (0: all)")
    args = parser.parse_args()
    sequential_n = min(args.sequential_n or args.n, args.n)
    process, base_url = start_endpoint(args.delay)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            a, b = write_answers(root / "full", args.n)
            seq_a, seq_b = (a, b) if sequential_n == args.n else write_answers(root / "seq", sequential_n)

            seconds, summary = timed_run(base_url, seq_a, seq_b, 1, root / "sequential")
            note = "measured" if sequential_n == args.n else f"measured on {sequential_n} items, scaled x{args.n / sequential_n:.2f}"
            rows.append(("sequential (1 in flight)", summary, seconds * args.n / sequential_n, note))

            seconds, summary = timed_run(base_url, a, b, args.concurrency, root / "concurrent")
            rows.append((f"{args.concurrency} in flight", summary, seconds, "measured"))

            seconds, summary = timed_run(base_url, a, b, args.concurrency, root / "concurrent")
            rows.append(("re-run of the finished comparison", summary, seconds, "measured"))
    finally:
        process.terminate()
        process.wait(timeout=10)

    baseline = rows[0][2]
    reviews = 2 * args.n
    print(f"\nCPU: {cpu_model()}; load average {os.getloadavg()[0]:.2f}")
    print(f"{args.n} items x 2 orders = {reviews} reviews; the endpoint adds {args.delay * 1000:.0f} ms per call\n")
    print("| run | calls made | items judged (W/T/L) | seconds | reviews/s | speed-up vs sequential | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, summary, seconds, note in rows:
        judged = f"{summary['n']} ({summary['win']}/{summary['tie']}/{summary['lose']})"
        print(f"| {name} | {summary['calls']['calls']} | {judged} | {seconds:.1f} | {reviews / seconds:.0f} | "
              f"{baseline / seconds:.1f}x | {note} |")
    ideal = reviews * args.delay / args.concurrency
    print(f"\nIdeal at {args.concurrency} in flight: {ideal:.1f} s (reviews x delay / concurrency). "
          "Floor: ≤ 10 s for 252 items x 2 orders; the re-run makes 0 calls.")


if __name__ == "__main__":
    main()
