"""SFT on this machine: SmolLM2-135M-Instruct + LoRA, 1,000 CaR-selected Alpaca examples, 1 epoch, max length 512.

``python benchmarks/sft_local.py [--examples 1000] [--baseline-steps 2] [--skip-run]``

Rows, each a fresh ``python -m training sft`` process (model load included in wall time; peak RSS is the
child's own ``ru_maxrss``):

- **local preset** (the studio's default): bf16 autocast where the CPU has bf16 units, batches grouped by
  length and padded only to their longest example, no gradient checkpointing, threads = cores. The whole
  epoch is run.
- **naive, padded to 512, fp32**: every batch padded to max length, random order, fp32. Too slow to run
  whole: ``--baseline-steps`` optimiser steps are measured and the epoch is extrapolated from the time
  per step (said so in the table).
- **padded to 512, bf16** (``--ablation``): the same with bf16 only, to tell bf16's share from grouping's.

``--local-steps N`` measures N steps of the local preset and extrapolates too (for a loaded machine).

tokens/s counts real (non-padding) tokens of the epoch divided by the training time (load excluded);
for the extrapolated rows it is the epoch's real tokens over the extrapolated time. The machine is
shared: the load average before each row and the CPU model are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "curation" / "data" / "pools" / "car_selected_1k.json"
sys.path.insert(0, str(REPO))  # run as a script: the tokenizer count imports the repo's packages
# The child reports its own peak RSS (RUSAGE_CHILDREN would give the largest of all rows so far).
CHILD = (
    "import json, os, resource, sys\n"
    "from training.__main__ import main\n"
    "code = main(sys.argv[1:])\n"
    "open(os.environ['SFT_BENCH_RSS'], 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    "sys.exit(code)\n"
)


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    name = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")
    flags = next((line for line in out.splitlines() if line.startswith("Flags")), "")
    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} ({os.cpu_count()} cores; bf16 units: {', '.join(bf16) or 'none'})"


def run(label: str, data: Path, out: Path, extra: list[str]) -> dict:
    load = os.getloadavg()[0]
    command = [sys.executable, "-c", CHILD, "sft", "--data", str(data), "--out", str(out), "--no-register", *extra]
    rss_file = out.with_name(out.name + ".rss")
    env = {**os.environ, "SFT_BENCH_RSS": str(rss_file), "PYTHONPATH": str(REPO)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
    result = json.loads((out / "result.json").read_text())
    run_info = json.loads((out / "run.json").read_text())
    return {"label": label, "wall_s": wall, "cpu_s": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
            "peak_rss_gb": int(rss_file.read_text()) / 1024 / 1024, "load": load, "result": result, "epoch_steps": run_info}


def epoch_tokens(data: Path, examples: int) -> tuple[int, int]:
    """Real tokens of the training split and the number of optimiser steps of one epoch (local preset)."""
    from curation.config import load_settings
    from training.sft.base_model import load_tokenizer, resolve_base_model
    from training.sft.data import load_training_data, tokenize_records
    from training.sft.presets import get_preset
    from training.sft.run import split

    preset = get_preset("local")
    tokenizer = load_tokenizer(resolve_base_model("smollm2-135m", load_settings().cache_dir))
    records = load_training_data(data).records[:examples]
    train, _ = split(tokenize_records(records, tokenizer, preset.max_length), preset)
    steps = -(-len(train) // preset.global_batch)
    return int(sum(train["length"])), steps


# Evaluation runs at fractions of max_steps: on a run cut to a few steps it would run at every step and
# swamp the training time the rows compare.
NO_EVAL = ["--set", "eval_fraction=0"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--baseline-steps", type=int, default=2)
    parser.add_argument("--local-steps", type=int, default=0,
                        help="measure this many steps of the local preset and extrapolate (0: run the whole epoch)")
    parser.add_argument("--ablation", action="store_true", help="add the padded-to-512 bf16 row (bf16's share)")
    parser.add_argument("--skip-run", action="store_true", help="only the baselines (for a quick look)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    print(f"CPU: {cpu_model()}")
    print("every row trains without the held-out eval slice (eval_fraction=0): the times are training only")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.json"
        data.write_text(json.dumps(json.loads(DATA.read_text())[: args.examples]))
        tokens, steps = epoch_tokens(data, args.examples)
        print(f"data: {args.examples} CaR-selected Alpaca examples ({DATA.name}); 1 epoch = {steps} optimiser steps "
              f"of 16 examples, {tokens:,} real tokens")
        rows = []
        variants = [("naive: padded to 512, fp32, random order", ["--set", "pad_to_max_length=true", "--set", "bf16=false",
                                                                  "--set", "group_by_length=false"])]
        if args.ablation:
            variants.append(("padded to 512, bf16, random order", ["--set", "pad_to_max_length=true", "--set",
                                                                   "group_by_length=false"]))
        for label, extra in variants:
            row = run(label, data, Path(tmp) / f"b{len(rows)}",
                      [*NO_EVAL, *extra, "--max-steps", str(args.baseline_steps)])
            per_step = row["result"]["duration_s"] / row["result"]["steps"]
            row["train_s"] = per_step * steps
            row["note"] = f"extrapolated from {row['result']['steps']} steps ({per_step:.1f} s/step)"
            rows.append(row)
        if not args.skip_run:
            limit = ["--max-steps", str(args.local_steps)] if args.local_steps else []
            row = run("local preset: bf16, length-grouped, dynamic padding", data, Path(tmp) / "local", [*NO_EVAL, *limit])
            per_step = row["result"]["duration_s"] / row["result"]["steps"]
            row["train_s"] = per_step * steps if args.local_steps else row["result"]["duration_s"]
            row["note"] = (f"extrapolated from {row['result']['steps']} steps ({per_step:.1f} s/step; grouped batches "
                           "differ in length, so a few steps say less than for the padded rows)" if args.local_steps else
                           f"measured: {row['result']['steps']} steps, final loss {row['result']['final_loss']:.3f}")
            rows.append(row)
    print()
    print("| run | epoch train time | tokens/s | wall (whole process) | peak RSS | load avg before | how |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['label']} | {row['train_s'] / 60:.1f} min | {tokens / row['train_s']:.0f} | {row['wall_s']:.0f} s | "
              f"{row['peak_rss_gb']:.2f} GB | {row['load']:.1f} | {row['note']} |")
    if not args.skip_run:
        local, naive = rows[-1], rows[0]
        load_s = local["wall_s"] - local["result"]["duration_s"]
        print(f"\nlocal preset: about {(local['train_s'] + load_s) / 60:.1f} min wall for the epoch (floor 10 min), "
              f"peak RSS {local['peak_rss_gb']:.2f} GB (floor 4 GB); {naive['train_s'] / local['train_s']:.1f}x faster "
              "than the naive baseline.")
        if args.ablation:
            print(f"bf16 alone: {naive['train_s'] / rows[1]['train_s']:.1f}x; length grouping with dynamic padding the "
                  f"rest ({rows[1]['train_s'] / local['train_s']:.1f}x).")


if __name__ == "__main__":
    main()
