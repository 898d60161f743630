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
from training.iqs.meaning import shares_above

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
    pool = pool_sample(args.pool, POOL_SAMPLE, args.seed)
    oof = {name: np.zeros(len(pairs)) for name in ("expert_raw", "original_raw", "expert_0_5", "original_0_5")}
    started = time.time()
    chosen = getattr(args, "only_folds", None) or list(range(1, args.folds + 1))
    if not set(chosen) <= set(range(1, args.folds + 1)):
        raise ValueError(f"--only-folds {chosen}: folds are numbered 1..{args.folds}")
    for fold in [number - 1 for number in chosen]:
        test = [p for p, f in zip(pairs, fold_of) if f == fold]
        learn = [p for p, f in zip(pairs, fold_of) if f != fold and not p.identical]
        if args.limit:
            learn = learn[: args.limit]
        log(f"fold {fold + 1}/{args.folds}: train {len(learn)} pairs, test {len(test)} pairs")
        model = build_model(base, args.num_layers, args.pooling)
        best = fit(model, learn, test, args)
        histories.append(best["history"])
        folds.append({"fold": fold + 1, "n_train": len(learn), **fold_metrics(best["history"], test)})
        scored = out_of_fold(model, test, pool, base, args)
        for name, values in scored.items():
            oof[name][fold_of == fold] = values
    tested = np.isin(fold_of, [number - 1 for number in chosen])  # out-of-fold scores exist for these only
    oof = {name: values[tested] for name, values in oof.items()}
    result = {
        "folds": folds,
        "summary": summarize(folds),
        "by_step": by_step(histories),
        # Every pair scored once by the fold model that never saw it, on that model's own 0-5 scale:
        # what a threshold lets through for a model that has not seen the pair (meaning.json of a
        # model trained on all pairs is built from these).
        "out_of_fold": {"fold": [int(f) + 1 for f in fold_of[tested]],
                        "identical": [p.identical for p, t in zip(pairs, tested) if t],
                        **{name: [round(float(v), 4) for v in values] for name, values in oof.items()}},
        "thresholds": shares_above(oof["expert_0_5"], oof["original_0_5"]),
        "length_term": length_term([p for p, t in zip(pairs, tested) if t], oof["expert_raw"], oof["original_raw"]),
        "k": args.folds,
        "pairs": len(pairs),
        "tested_pairs": int(tested.sum()),
        "seconds": round(time.time() - started),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cv.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result), flush=True)
    return result


LENGTH_COEFS = (-1.0, -0.5, 0.0, 0.5, 1.0)


def length_term(pairs: Sequence[Pair], expert_raw: np.ndarray, original_raw: np.ndarray,
                coefs: Sequence[float] = LENGTH_COEFS) -> list[dict[str, float]]:
    """Out-of-fold accuracy if the scorer added ``coef * log1p(response words)`` (its ``length_coef``
    setting): what leaning on length, or against it, trades between all pairs and the not-longer ones."""
    from training.iqs.length import length_delta
    from training.iqs.metrics import pair_correct

    delta = length_delta(pairs)
    identical = np.array([p.identical for p in pairs])
    not_longer = np.array([p.expert_not_longer for p in pairs])
    rows = []
    for coef in coefs:
        correct = pair_correct(np.asarray(expert_raw) + coef * delta, np.asarray(original_raw), identical)
        rows.append({"coef": coef, "valid_acc": float(correct.mean()),
                     "valid_acc_not_longer": float(correct[not_longer].mean())})
    return rows


POOL_SAMPLE = 3000  # pool records each fold model's 0-5 scale is fitted on (quantiles settle well before)


def pool_sample(path: Path, n: int, seed: int) -> tuple[list[str], list[str]]:
    """Formatted (prompt, response) of ``n`` pool records drawn with the seed (all if the pool is smaller)."""
    from curation.raters.iqs import format_prompt, format_response
    from training.iqs.data import load_pool

    instr, inp, out = load_pool(path)
    chosen = sorted(np.random.default_rng(seed).permutation(len(instr))[:n])
    return [format_prompt(instr[i], inp[i]) for i in chosen], [format_response(out[i]) for i in chosen]


def out_of_fold(model: Any, test: Sequence[Pair], pool: tuple[list[str], list[str]], base: Path,
                args: argparse.Namespace) -> dict[str, np.ndarray]:
    """The fold model's raw and 0-5 scores of its test pairs; its 0-5 scale fitted on the pool as at export."""
    from curation.raters.iqs import Calibration
    from training.iqs.batches import Tokenized
    from training.iqs.fit import pair_scores, record_scores

    use_bf16 = not args.no_bf16
    data = Tokenized(test, base, args.max_length)
    pos, neg = pair_scores(model, data, len(test), use_bf16)
    calibration = Calibration.fit_anchors(record_scores(model, data.tokenizer, *pool, args.max_length, use_bf16))
    return {"expert_raw": pos, "original_raw": neg,
            "expert_0_5": calibration.apply(pos), "original_0_5": calibration.apply(neg)}


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
