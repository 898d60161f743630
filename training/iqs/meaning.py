"""What a score on the 0-5 scale means for IQS, measured on expert pairs: the shares above a threshold.

"τ = 4.5" is a number until it is said what passes it: the share of CaR's expert-revised responses
that score at least τ, beside the share of the original (unrevised) responses of the same pairs.
Measured on pairs the model never saw -- the out-of-fold scores of a ``--folds`` run (``--cv``) for a
model trained on all pairs, else through the shipped scorer on the valid split -- and written to
``meaning.json`` in the model folder, which the Rate and Explore pages read. The file is not part of
the scorer's version hash: it describes the model, it does not change any score.

``python -m training.iqs.meaning --out curation/models/iqs`` recomputes it for a shipped folder;
``python -m training iqs`` writes it at build time.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curation.raters.iqs import IQSScorer
from training.iqs.data import DATA, REPO, Pair, load_pairs

MEANING_FILE = "meaning.json"
CV_FILE = "cv.json"
THRESHOLDS = (3.5, 4.0, 4.5)


def shares_above(pos_0_5: np.ndarray, neg_0_5: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> list[dict[str, float]]:
    """Per threshold: the share of expert and of original responses scoring at least it."""
    return [
        {"tau": float(t), "expert_share": float(np.mean(pos_0_5 >= t)), "original_share": float(np.mean(neg_0_5 >= t))}
        for t in thresholds
    ]


def measure(scorer: IQSScorer, pairs: Sequence[Pair], source: str) -> dict[str, Any]:
    from training.iqs.shipped import score_pairs

    pos, neg = score_pairs(scorer, pairs)
    pos_0_5, neg_0_5 = scorer.to_0_5(pos), scorer.to_0_5(neg)
    return {
        "on": source,
        "pairs": len(pairs),
        "scale": "0-5",
        "held_out": f"{len(pairs)} CaR valid pairs, never trained on",
        "rater_version": scorer.version,
        "thresholds": shares_above(pos_0_5, neg_0_5),
        # Every score, sorted, so a page can say what any τ lets through (254 + 254 numbers).
        "expert_0_5": sorted(round(float(v), 4) for v in pos_0_5),
        "original_0_5": sorted(round(float(v), 4) for v in neg_0_5),
    }


def write_meaning(out: Path, scorer: IQSScorer, valid: Sequence[Pair], source: Path) -> dict[str, Any]:
    shown = str(source.relative_to(REPO)) if source.is_relative_to(REPO) else source.name
    meaning = measure(scorer, valid, shown)
    (Path(out) / MEANING_FILE).write_text(json.dumps(meaning, indent=2) + "\n", encoding="utf-8")
    return meaning


def check_cv(cv: dict[str, Any]) -> None:
    """Refuse a cv.json that cannot say what τ means: from an older run, or with only some folds run."""
    scored = len(cv.get("out_of_fold", {}).get("expert_0_5", []))
    if scored != cv.get("pairs"):
        raise ValueError(f"{scored} of {cv.get('pairs')} pairs have out-of-fold scores (a run with --only-folds, "
                         "or from before they were recorded); use a cross-validation over every fold")


def write_meaning_from_cv(out: Path, cv: dict[str, Any]) -> dict[str, Any]:
    """meaning.json from a --folds run: every pair scored by the fold model that held it out, on its own
    0-5 scale -- what τ lets through for this recipe on pairs the model never saw."""
    check_cv(cv)
    oof = cv["out_of_fold"]
    pos, neg = np.asarray(oof["expert_0_5"]), np.asarray(oof["original_0_5"])
    meaning = {
        "on": f"{cv['k']}-fold cross-validation over CaR's train + valid pairs",
        "held_out": f"{len(pos)} CaR expert pairs, each scored by a cross-validation model that never saw it",
        "pairs": len(pos),
        "scale": "0-5",
        "thresholds": shares_above(pos, neg),
        "expert_0_5": sorted(round(float(v), 4) for v in pos),
        "original_0_5": sorted(round(float(v), 4) for v in neg),
    }
    (Path(out) / MEANING_FILE).write_text(json.dumps(meaning, indent=2) + "\n", encoding="utf-8")
    return meaning


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the model folder (e.g. curation/models/iqs)")
    parser.add_argument("--valid", type=Path, default=DATA / "APE_valid_pairs.csv")
    args = parser.parse_args(argv)
    scorer = IQSScorer.load(args.out)
    meaning = write_meaning(args.out, scorer, load_pairs(args.valid), args.valid.resolve())
    print(json.dumps(meaning, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
