"""What IQS explanations cost, beside plain scoring of the same records in the same run.

``python benchmarks/iqs_explain.py [--records 1000] [--opened 20] [--weights DIR]``

Rows, all with one scorer loaded once (load time printed apart):
* plain scoring of ``--records`` Alpaca records (the baseline: what rating costs);
* the rating-time explanation (:func:`curation.explain.reference_text`: the score's place in the
  reference pool) for the same records: what rating pays extra;
* the sentence that moves the score (leave-one-sentence-out, :func:`curation.explain.find_movers`) for the
  whole dataset in one batched call -- floor 60 s for 1,000 records;
* the same for one example at a time, as when an example is opened on Explore or Map -- floor 300 ms
  per example (median and 90th percentile over ``--opened`` examples spread through the pool).
The machine is shared: the load average before and after, the CPU model, and the process's CPU seconds
(all threads; what the work costs whatever else runs) beside wall time are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
POOL = REPO / "curation" / "data" / "pools" / "alpaca_random_9k.json"
DATASET_FLOOR_S, OPEN_FLOOR_MS = 60.0, 300.0


def cpu_model() -> str:
    found = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    return next((line.split(":", 1)[1].strip() for line in found.splitlines() if line.startswith("Model name")), "?")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--opened", type=int, default=20)
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()

    from curation.explain import find_movers, load_meaning, reference_text, sentences
    from curation.raters.iqs import IQSScorer
    from curation.records import Record

    load_before = os.getloadavg()
    started = time.perf_counter()
    scorer = IQSScorer.load(args.weights)
    load_s = time.perf_counter() - started
    pool = json.loads(POOL.read_text(encoding="utf-8"))
    records = [Record(r["instruction"], r["input"], r["output"]) for r in pool[: args.records]]

    cpu = time.process_time()
    started = time.perf_counter()
    raw = scorer.score([r.instruction for r in records], [r.input for r in records], [r.output for r in records])
    plain_s = time.perf_counter() - started
    plain_cpu, cpu = time.process_time() - cpu, time.process_time()
    started = time.perf_counter()
    quantiles = load_meaning(scorer.weights_dir).get("pool_quantiles")
    texts = reference_text(raw, scorer.to_0_5(raw), quantiles)
    reference_s = time.perf_counter() - started
    assert all(texts)

    started = time.perf_counter()
    movers = find_movers(scorer, records)
    dataset_s = time.perf_counter() - started
    dataset_cpu = time.process_time() - cpu

    picks = np.linspace(0, len(pool) - 1, args.opened).astype(int)
    opened = [Record(pool[i]["instruction"], pool[i]["input"], pool[i]["output"]) for i in picks]
    per_example, per_example_cpu = [], []
    for record in opened:
        started, cpu = time.perf_counter(), time.process_time()
        find_movers(scorer, [record])
        per_example.append((time.perf_counter() - started) * 1000)
        per_example_cpu.append((time.process_time() - cpu) * 1000)
    load_after = os.getloadavg()

    n = len(records)
    segments = sum(len(sentences(r.output)) for r in records)
    print(f"CPU: {cpu_model()}; load average before {load_before[0]:.2f} / after {load_after[0]:.2f} "
          f"(1 min); scorer {scorer.version}, loaded in {load_s:.1f} s")
    print(f"{n} Alpaca records, {segments} sentences ({segments / n:.2f} per response): leave-one-out scores "
          f"{n + segments} texts\n")
    print("| what | wall time | CPU time (all threads) | per record (wall) | floor (wall) |")
    print("|---|---:|---:|---:|---|")
    print(f"| plain scoring (baseline) | {plain_s:.1f} s | {plain_cpu:.1f} s | {plain_s / n * 1000:.1f} ms "
          f"({n / plain_s:.0f}/s) | |")
    print(f"| + rating-time explanation (reference pool) | {reference_s * 1000:.1f} ms | | "
          f"{reference_s / n * 1e6:.1f} µs | none (≤ 1% of scoring: {reference_s / plain_s:.2%}) |")
    verdict = "met" if dataset_s <= DATASET_FLOOR_S * n / 1000 else "NOT met"
    print(f"| sentence that moves it, whole dataset | {dataset_s:.1f} s ({dataset_s / plain_s:.1f}× plain) | "
          f"{dataset_cpu:.1f} s | "
          f"{dataset_s / n * 1000:.1f} ms | ≤ {DATASET_FLOOR_S * n / 1000:.0f} s for {n}: {verdict} |")
    median, p90 = float(np.median(per_example)), float(np.percentile(per_example, 90))
    verdict = "met" if median <= OPEN_FLOOR_MS else "NOT met"
    print(f"| sentence that moves it, on open | median {median:.0f} ms, p90 {p90:.0f} ms | "
          f"median {float(np.median(per_example_cpu)):.0f} ms | | "
          f"≤ {OPEN_FLOOR_MS:.0f} ms: {verdict} (median) |")
    print(f"\nmovers found for {sum(m is not None for m in movers)} of {n} records (empty responses have none)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
