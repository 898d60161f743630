"""Pairwise accuracies (overall and by length stratum) shared by training, the shipped-path check and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.iqs.data import Pair


def pair_correct(pos: np.ndarray, neg: np.ndarray, identical: np.ndarray) -> np.ndarray:
    """Per pair: 1 if the expert response scores higher, 0 if lower, 1/2 for identical texts.

    Identical inputs are ties by construction; their float scores can still differ in the last
    bits when batched differently, which must not count as a win or a loss.
    """
    return np.where(identical, 0.5, (pos > neg).astype(float))


def pair_metrics(pos: np.ndarray, neg: np.ndarray, pairs: Sequence[Pair]) -> dict[str, float]:
    """Accuracy overall, on the not-longer / longer strata, and on the distinguishable not-longer pairs."""
    not_longer = np.array([p.expert_not_longer for p in pairs])
    identical = np.array([p.identical for p in pairs])
    correct = pair_correct(pos, neg, identical)
    distinct_nl = not_longer & ~identical
    return {
        "valid_acc": float(correct.mean()),
        "valid_acc_not_longer": float(correct[not_longer].mean()),
        "valid_acc_longer": float(correct[~not_longer].mean()),
        "valid_acc_balanced": float((correct[not_longer].mean() + correct[~not_longer].mean()) / 2),
        "valid_acc_not_longer_distinct": float(correct[distinct_nl].mean()),
        "n_not_longer": int(not_longer.sum()),
        "n_identical": int(identical.sum()),
    }


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)
