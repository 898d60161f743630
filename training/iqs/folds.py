"""``python -m training iqs --folds K``: k-fold cross-validation over train + valid, grouped by instruction.

Why: the shipped checkpoint was chosen on 254 valid pairs and measured on them, which flatters it (0.870
on valid, 0.827 on expert pairs it never saw). Here every pair is tested exactly once by a model that never
saw it, and nothing is chosen on the test fold: each fold's model trains for the fixed ``--epochs`` and is
measured at its last step; the per-step history (also on the test fold) is averaged over folds only to
show how the accuracy moves with training length, which is how to choose ``--epochs`` for the final model.

Grouping: a pair (expert and original response of one instruction) is one unit, and all pairs whose
normalised prompt is the same go to the same fold, so neither side of a pair, nor the same instruction
with another revision, is ever on both sides of a split. Identical pairs (the revision changed nothing
once normalised) are kept in the test folds as ties (½) and dropped from training, as in the main run.

Reported per fold and as mean ± sd: pairwise accuracy, the same on pairs whose expert response is not
longer, and the length-only baseline ("the longer response wins") on the same test folds. Written to
``<out>/cv.json``; nothing is exported (the shipped model is trained by the plain command).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.iqs.data import Pair
from training.iqs.length import length_baseline

FOLD_KEYS = ("valid_acc", "valid_acc_not_longer", "valid_acc_balanced", "length_baseline_acc",
             "length_baseline_acc_not_longer")


def group_folds(pairs: Sequence[Pair], k: int, seed: int) -> np.ndarray:
    """Fold number (0..k-1) per pair; pairs sharing a prompt share a fold; folds as equal in pairs as greedy allows."""
    if k < 2:
        raise ValueError(f"--folds needs at least 2 folds, got {k}")
    groups: dict[str, list[int]] = {}
    for index, pair in enumerate(pairs):
        groups.setdefault(pair.prompt, []).append(index)
    if len(groups) < k:
        raise ValueError(f"--folds {k}: only {len(groups)} distinct instructions to split")
    order = list(groups.values())
    np.random.default_rng(seed).shuffle(order)  # type: ignore[arg-type]
    order.sort(key=len, reverse=True)  # largest groups first, each to the emptiest fold (stable for equal sizes)
    fold_of = np.full(len(pairs), -1, dtype=np.int64)
    sizes = np.zeros(k, dtype=np.int64)
    for members in order:
        fold = int(np.argmin(sizes))
        fold_of[members] = fold
        sizes[fold] += len(members)
    return fold_of


def fold_metrics(history: list[dict[str, Any]], test: Sequence[Pair]) -> dict[str, Any]:
    """The fold's result: the last check (fixed epochs, nothing chosen on the test fold) + the baseline."""
    last = dict(history[-1])
    not_longer = np.array([p.expert_not_longer for p in test])
    baseline = length_baseline(test)
    last["length_baseline_acc"] = float(baseline.mean())
    last["length_baseline_acc_not_longer"] = float(baseline[not_longer].mean()) if not_longer.any() else float("nan")
    last["n_test"] = len(test)
    return last


def summarize(folds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and (sample) standard deviation over folds of each reported accuracy."""
    summary = {}
    for key in FOLD_KEYS:
        values = np.array([f[key] for f in folds], dtype=float)
        summary[key] = {"mean": float(np.nanmean(values)), "sd": float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0}
    return summary


def by_step(histories: list[list[dict[str, Any]]]) -> list[dict[str, float]]:
    """Test-fold accuracy at each check, averaged over folds: how the accuracy moves with training length."""
    rows = []
    for checks in zip(*histories):
        rows.append({"epoch": checks[0]["epoch"], "step": checks[0]["step"],
                     "valid_acc": float(np.mean([c["valid_acc"] for c in checks])),
                     "valid_acc_not_longer": float(np.mean([c["valid_acc_not_longer"] for c in checks]))})
    return rows


def run_cv(args: argparse.Namespace, train: Sequence[Pair], valid: Sequence[Pair]) -> dict[str, Any]:
    from curation.raters.iqs import base_model_path
    from training.iqs.fit import fit, log
    from training.iqs.model import build_model

    pairs = [*train, *valid]
    fold_of = group_folds(pairs, args.folds, args.seed)
    base = args.base or base_model_path()
    folds, histories = [], []
    started = time.time()
    for fold in range(args.folds):
        test = [p for p, f in zip(pairs, fold_of) if f == fold]
        learn = [p for p, f in zip(pairs, fold_of) if f != fold and not p.identical]
        if args.limit:
            learn = learn[: args.limit]
        log(f"fold {fold + 1}/{args.folds}: train {len(learn)} pairs, test {len(test)} pairs")
        best = fit(build_model(base, args.num_layers, args.pooling), learn, test, args)
        histories.append(best["history"])
        folds.append({"fold": fold + 1, "n_train": len(learn), **fold_metrics(best["history"], test)})
    result = {
        "folds": folds,
        "summary": summarize(folds),
        "by_step": by_step(histories),
        "k": args.folds,
        "pairs": len(pairs),
        "seconds": round(time.time() - started),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cv.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result), flush=True)
    return result


def table(result: dict[str, Any]) -> str:
    lines = [f"{result['k']}-fold CV over {result['pairs']} pairs (grouped by instruction; last step of each fold)",
             "| fold | test pairs | IQS acc | IQS acc, not longer | length-only acc | length-only, not longer |",
             "|---:|---:|---:|---:|---:|---:|"]
    for f in result["folds"]:
        lines.append(f"| {f['fold']} | {f['n_test']} | {f['valid_acc']:.3f} | {f['valid_acc_not_longer']:.3f} | "
                     f"{f['length_baseline_acc']:.3f} | {f['length_baseline_acc_not_longer']:.3f} |")
    s = result["summary"]
    lines.append("| mean ± sd | | " + " | ".join(
        f"{s[key]['mean']:.3f} ± {s[key]['sd']:.3f}"
        for key in ("valid_acc", "valid_acc_not_longer", "length_baseline_acc", "length_baseline_acc_not_longer")) + " |")
    return "\n".join(lines)
