"""The length-only model: "the longer response wins" as a baseline, and as the fixed expert of the PoE prior.

Expert revisions are longer in most pairs, so length alone scores well; every accuracy is reported
beside it, and ``--length-prior poe`` trains against it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from training.iqs.data import Pair


def length_baseline(pairs: Sequence[Pair]) -> np.ndarray:
    """'The longer response wins' as per-pair correctness, ties counted as half."""
    return np.array([1.0 if p.pos_words > p.neg_words else 0.5 if p.pos_words == p.neg_words else 0.0 for p in pairs])


def length_delta(pairs: Sequence[Pair]) -> np.ndarray:
    """log1p(expert words) - log1p(original words) per pair: the length-only model's feature."""
    return np.array([math.log1p(p.pos_words) - math.log1p(p.neg_words) for p in pairs])


def fit_length_beta(pairs: Sequence[Pair]) -> float:
    """Slope of the length-only Bradley-Terry model P(expert wins) = sigmoid(beta * delta), fitted on train."""
    from sklearn.linear_model import LogisticRegression

    delta = length_delta(pairs)
    x = np.concatenate([delta, -delta])[:, None]  # both orders, so no intercept is needed
    y = np.r_[np.ones(len(delta)), np.zeros(len(delta))]
    return float(LogisticRegression(fit_intercept=False, C=1e6).fit(x, y).coef_[0, 0])
