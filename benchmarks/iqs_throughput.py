"""Whole-process throughput and peak memory of the IQS scorer on Alpaca records.

``python benchmarks/iqs_throughput.py [--records 3000] [--ablations] [--weights DIR]``

Every row is a fresh ``python -c`` subprocess that imports, loads the model, scores the first
``--records`` records of the Alpaca pool and exits; records/s is records / wall time of the whole
process (start-up and model load included). Peak RSS is the child's own ``ru_maxrss``, read at its
exit. Rows: (a) the shipped scorer as the studio uses it, (b) the baseline of encoding one record per
call. ``--ablations`` adds rows that each undo one speed measure (fp32 instead of bf16, batches in
input order instead of length-sorted, int8 dynamic quantisation, shorter max_length, 1 thread).
The machine is shared: the load average before each row is printed, and CPU seconds next to wall.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POOL = REPO / "curation" / "data" / "pools" / "alpaca_random_9k.json"

# Runs inside the child. {variant} picks how scoring is called; the child prints one JSON line.
CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {repo!r})
variant, n, weights = {variant!r}, {n}, {weights!r}
import torch
if variant == "1 thread":
    torch.set_num_threads(1)
from curation.raters.iqs import IQSScorer
kwargs = dict(dtype="float32") if variant in ("fp32", "int8 dynamic") else {{}}
if variant == "max_length 128":
    kwargs["max_length"] = 128
scorer = IQSScorer.load(weights, **kwargs)
if variant == "int8 dynamic":
    scorer.encoder = torch.ao.quantization.quantize_dynamic(scorer.encoder, {{torch.nn.Linear}}, dtype=torch.qint8)
records = json.load(open({pool!r}, encoding="utf-8"))[:n]
I = [r["instruction"] for r in records]; X = [r["input"] for r in records]; O = [r["output"] for r in records]
t1 = time.perf_counter()
if variant == "one record per call":
    scores = [scorer.score(I[i:i + 1], X[i:i + 1], O[i:i + 1])[0] for i in range(n)]
elif variant == "input-order batches":
    # Each call is one batch in the given order, padded to its own longest record (no sorting).
    b = scorer.batch_size
    scores = [s for i in range(0, n, b) for s in scorer.score(I[i:i + b], X[i:i + b], O[i:i + b])]
else:
    scores = list(scorer.score(I, X, O))
t2 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps(dict(n=len(scores), load_s=t1 - t0, score_s=t2 - t1, maxrss_kb=ru.ru_maxrss,
                      cpu_s=ru.ru_utime + ru.ru_stime, version=scorer.version)))
"""


@dataclass
class Row:
    variant: str
    records: int
    wall_s: float
    load_s: float
    score_s: float
    cpu_s: float
    peak_rss_mb: float
    load_avg: float


def run_child(variant: str, n: int, weights: str | None) -> Row:
    code = CHILD.format(repo=str(REPO), variant=variant, n=n, weights=weights, pool=str(POOL))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    load_avg = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Row(
        variant,
        result["n"],
        wall,
        result["load_s"],
        result["score_s"],
        result["cpu_s"],
        result["maxrss_kb"] / 1024,
        load_avg,
    )


# Runs the real CLI as a grandchild so the wrapper can read the CLI's own peak RSS.
CLI_WRAPPER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t0
if done.returncode != 0:
    sys.exit(done.stderr[-3000:])
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps(dict(wall_s=wall, maxrss_kb=ru.ru_maxrss, cpu_s=ru.ru_utime + ru.ru_stime)))
"""


def run_cli(n: int) -> Row:
    """`python -m curation rate FILE --rater iqs --out OUT.jsonl` on a fresh workspace (nothing cached)."""
    with tempfile.TemporaryDirectory() as tmp:
        records = json.loads(POOL.read_text(encoding="utf-8"))[:n]
        source = Path(tmp) / "alpaca.json"
        source.write_text(json.dumps(records), encoding="utf-8")
        out = Path(tmp) / "rated.jsonl"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
               "CURATION_WORKSPACE": str(Path(tmp) / "workspace")}
        command = [sys.executable, "-m", "curation", "rate", str(source), "--rater", "iqs", "--out", str(out)]
        load_avg = os.getloadavg()[0]
        done = subprocess.run([sys.executable, "-c", CLI_WRAPPER, *command], capture_output=True, text=True,
                              env=env, cwd=REPO, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"CLI failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        written = sum(1 for _ in out.open(encoding="utf-8"))
    return Row("CLI `curation rate --rater iqs --out` (store + flags + JSONL)", written, result["wall_s"],
               float("nan"), float("nan"), result["cpu_s"], result["maxrss_kb"] / 1024, load_avg)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--weights", default=None, help="weights dir (default: bundled)")
    parser.add_argument("--ablations", action="store_true", help="also run one row per undone speed measure")
    args = parser.parse_args()

    variants = ["shipped (bf16, length-sorted batches of 64)", "one record per call"]
    if args.ablations:
        variants += ["fp32", "input-order batches", "int8 dynamic", "max_length 128", "1 thread"]
    rows = [run_cli(args.records)] if args.weights is None else []
    rows += [run_child(v, args.records, args.weights) for v in variants]

    print(f"IQS throughput — whole process, first {args.records} records of {POOL.name}, {os.cpu_count()} CPUs\n")
    print(
        "| variant | records/s (whole process) | records/s (scoring only) | wall s | load+import s | CPU s | peak RSS MB | load avg before |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.variant} | {r.records / r.wall_s:.0f} | {r.records / r.score_s:.0f} | {r.wall_s:.1f} | "
            f"{r.load_s:.1f} | {r.cpu_s:.1f} | {r.peak_rss_mb:.0f} | {r.load_avg:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
