"""How well the shipped IQS scorer agrees with CaR's experts, next to a length-only baseline.

``python benchmarks/iqs_accuracy.py [--weights DIR] [--dtype auto|float32|bfloat16]``

Prints a markdown table:
* pairwise accuracy on the 254 valid pairs (expert-revised vs original response, same instruction);
* the same on the pairs where the expert response is NOT longer (in words) than the original --
  the honest test, since "the longer wins" alone gets ~82% overall;
* the same on the pairs where the expert kept the instruction unchanged (in the others the original
  response answers a different, pre-revision instruction, which makes them easier);
* Spearman correlation between the score and the response length (words) on the Alpaca pool.
The valid split chose the checkpoint, so these are validation numbers, not a held-out test -- or, for
weights trained with ``--all-pairs``, in-sample numbers; then the cross-validation table of ``cv.json``
beside the weights (pairs no model saw) is printed after them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from curation.raters.iqs import IQSScorer
from curation.textnorm import normalize_text
from training.iqs.data import POOL, load_pairs, load_pool
from training.iqs.length import length_baseline
from training.iqs.metrics import pair_correct, spearman
from training.iqs.shipped import score_pairs

VALID_PAIRS = REPO / "training" / "data" / "iqs" / "APE_valid_pairs.csv"
VALID_SCORES = REPO / "training" / "data" / "iqs" / "APE_score_valid.csv"


def instruction_kept(pairs_csv: Path, scores_csv: Path) -> np.ndarray:
    """Per pair: did the expert keep the original instruction? (score rows come as original, expert)."""
    with scores_csv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))

    def instruction(src: str) -> str:
        return src[: src.find(" Response: ")].strip()

    n_pairs = len(rows) // 2
    return np.array([instruction(rows[2 * i]["src"]) == instruction(rows[2 * i + 1]["src"]) for i in range(n_pairs)])


def accuracy(correct: np.ndarray, subset: np.ndarray | None = None) -> str:
    values = correct if subset is None else correct[subset]
    return f"{values.mean():.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="weights dir (default: bundled)")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16"))
    parser.add_argument("--pool", type=Path, default=POOL)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    scorer = IQSScorer.load(args.weights, dtype=args.dtype)
    pairs = load_pairs(VALID_PAIRS)
    t0 = time.perf_counter()
    pos, neg = score_pairs(scorer, pairs)
    identical = np.array([p.identical for p in pairs])
    model_correct = pair_correct(pos, neg, identical)
    length_correct = length_baseline(pairs)
    not_longer = np.array([p.expert_not_longer for p in pairs])
    kept = instruction_kept(VALID_PAIRS, VALID_SCORES)
    instr, inp, out = load_pool(args.pool)
    raw = scorer.score(instr, inp, out)
    words = np.array([len(normalize_text(o).split()) for o in out])
    seconds = time.perf_counter() - t0

    metrics_file = scorer.weights_dir / "metrics.json"
    in_sample = metrics_file.is_file() and json.loads(metrics_file.read_text(encoding="utf-8")).get("valid_in_training")
    split = ("validation split, IN-SAMPLE (trained on train + valid: the cross-validation below is the honest number)"
             if in_sample else "validation split (it chose the checkpoint), no test split")
    print(f"IQS accuracy — scorer `{scorer.version}`; {split}\n")
    print("| metric | n | IQS scorer | length only (longer wins) |")
    print("|---|---:|---:|---:|")
    print(f"| valid pairwise accuracy | {len(pairs)} | {accuracy(model_correct)} | {accuracy(length_correct)} |")
    print(
        f"| valid, expert response not longer | {int(not_longer.sum())} | "
        f"{accuracy(model_correct, not_longer)} | {accuracy(length_correct, not_longer)} |"
    )
    distinct = not_longer & ~identical
    print(
        f"| valid, expert not longer, without the {int(identical.sum())} pairs identical after normalisation | "
        f"{int(distinct.sum())} | {accuracy(model_correct, distinct)} | {accuracy(length_correct, distinct)} |"
    )
    print(
        f"| valid, expert response longer | {int((~not_longer).sum())} | "
        f"{accuracy(model_correct, ~not_longer)} | {accuracy(length_correct, ~not_longer)} |"
    )
    print(
        f"| valid, instruction kept by the expert | {int(kept.sum())} | {accuracy(model_correct, kept)} | {accuracy(length_correct, kept)} |"
    )
    print(f"| Spearman(score, response words), Alpaca pool | {len(raw)} | {spearman(raw, words):.3f} | 1.000 |")
    print(
        f"\nTies count ½ in both columns; pairs identical after normalisation are ties for any scorer."
        f"\n(scored {2 * len(pairs) + len(raw)} texts in {seconds:.0f} s)"
    )
    cv_file = scorer.weights_dir / "cv.json"
    if cv_file.is_file():  # measured at training time: k models, so not re-run here
        from training.iqs.folds import table

        print("\nCross-validation of the recipe (from cv.json beside the weights):\n")
        print(table(json.loads(cv_file.read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
