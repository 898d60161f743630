"""After export: calibrate and measure through the shipped inference path, not the training model.

The numbers in ``metrics.json`` and the card must describe the files users load (fp16 tensors,
the scorer's tokenisation and dtype), so the exported directory is loaded back with
:class:`curation.raters.iqs.IQSScorer` for both the 0-5 calibration and the valid metrics.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curation.raters.iqs import Calibration, IQSScorer
from curation.textnorm import normalize_text
from training.iqs.data import REPO, Pair, load_pool
from training.iqs.export import write_calibration
from training.iqs.length import length_baseline
from training.iqs.meaning import CV_FILE, write_meaning, write_meaning_from_cv
from training.iqs.metrics import pair_metrics, spearman


def finish(
    args: argparse.Namespace, train: Sequence[Pair], valid: Sequence[Pair], best: dict[str, Any], seconds: float,
    dropped: int,
) -> dict[str, Any]:
    """Fit the 0-5 calibration on the pool with the shipped scorer, measure valid on it, write card."""
    scorer = IQSScorer.load(args.out, max_length=args.max_length)
    instr, inp, out = load_pool(args.pool)
    raw_pool = scorer.score(instr, inp, out)
    calibration = Calibration.fit_anchors(raw_pool)
    fitted = {
        "on": str(args.pool.relative_to(REPO) if args.pool.is_relative_to(REPO) else args.pool),
        "records": len(raw_pool),
        "anchors": {
            "median -> 4.0": float(np.median(raw_pool)),
            "10th percentile -> 3.0": float(np.percentile(raw_pool, 10)),
        },
    }
    write_calibration(args.out, calibration, fitted)
    scorer = IQSScorer.load(args.out, max_length=args.max_length)  # reload: the version hash covers calibration
    pos, neg = score_pairs(scorer, valid)
    shipped = pair_metrics(pos, neg, valid)
    not_longer = np.array([p.expert_not_longer for p in valid])
    identical = np.array([p.identical for p in valid])
    lb = length_baseline(valid)
    words = np.array([len(normalize_text(o).split()) for o in out])
    scaled = scorer.to_0_5(raw_pool)
    metrics = {
        "shipped": {
            **shipped,
            "n_valid": len(valid),
            "length_baseline_acc": float(lb.mean()),
            "length_baseline_acc_not_longer": float(lb[not_longer].mean()),
            "length_baseline_acc_not_longer_distinct": float(lb[not_longer & ~identical].mean()),
            "spearman_score_vs_words_alpaca_pool": spearman(raw_pool, words),
            "alpaca_pool_0_5_quantiles": {q: float(np.percentile(scaled, q)) for q in (5, 10, 25, 50, 75, 90, 95)},
            "dtype_version": scorer.version,
        },
        "checkpoint": {k: v for k, v in best.items() if k not in ("state", "history")},
        "history": best["history"],
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "train_pairs": len(train),
        "train_pairs_dropped_identical": dropped,
        "valid_in_training": bool(args.all_pairs),
        "train_seconds": round(seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "command": "python -m training " + " ".join(sys.argv[1:]),
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    # What a 4.5 means, for the pages: on pairs no model saw (the CV's out-of-fold scores, else valid).
    if args.cv:
        shutil.copyfile(args.cv, args.out / CV_FILE)
        write_meaning_from_cv(args.out, json.loads(Path(args.cv).read_text(encoding="utf-8")))
    else:
        write_meaning(args.out, scorer, valid, Path(args.valid).resolve())
    return metrics


def score_pairs(scorer: IQSScorer, pairs: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """Score valid pairs through the shipped path (prompts are already in the scorer's format)."""
    prompts = [p.prompt.removeprefix("Instruction: ") for p in pairs]
    # The prompt already holds "... Input: ..."; passing it as the instruction reproduces it exactly.
    pos = scorer.score(prompts, [""] * len(pairs), [p.pos.removeprefix("Response: ") for p in pairs])
    neg = scorer.score(prompts, [""] * len(pairs), [p.neg.removeprefix("Response: ") for p in pairs])
    return pos, neg
