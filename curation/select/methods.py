"""Selection: keep or drop every example, and say why.

Methods (each takes a *pool* — one row per example with ``id`` and the columns it needs — and returns
one row per example in the same order: ``id``, ``keep``, ``reason`` plus its own columns):

- :func:`select_threshold` — score ≥ τ, for any rater ("score 3.5 < τ 4.5"); vectorised for sliders.
- :func:`select_car` — CaR: the top n1 by score plus the top n2 of each cluster, deduplicated.
- :func:`select_random` — a seeded random sample (the papers' baseline).
- :func:`select_quota` — at most q examples per category, best scores first (or drawn at random).

Each rule exists once and works on arrays, so the studio's sliders reuse it without building reasons:
:func:`threshold_keep`, :func:`car_keep` (on ranks) and :func:`overrule` (human decisions last, applied
to whole selections by :func:`apply_overrides`).
Ties are broken by record id, never by position, so a selection does not depend on the order of a file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

NO_CATEGORY = "(none)"


class SelectionError(ValueError):
    """A selection that cannot be made as asked; the message says what to change."""


# --- methods --------------------------------------------------------------------------------------


def threshold_keep(score: np.ndarray, tau: float) -> np.ndarray:
    """THE threshold rule: keep a score of at least τ; an example without a score never clears the bar."""
    score = np.asarray(score, np.float64)
    return np.greater_equal(score, tau, where=~np.isnan(score), out=np.zeros(len(score), dtype=bool))


def select_threshold(pool: pd.DataFrame, tau: float) -> pd.DataFrame:
    """Keep examples whose score is at least τ; unscored examples are dropped and say so."""
    score = _scores(pool)
    keep = threshold_keep(score, tau)
    return _result(pool, keep, threshold_reasons(score, tau, keep), score=score)


def threshold_reasons(score: np.ndarray, tau: float, keep: np.ndarray) -> np.ndarray:
    """"score 3.5 < τ 4.5" per example (vectorised: each distinct score is formatted once)."""
    tau_text = f"{tau:g}"
    score_text = _number_texts(score)
    has_score = ~np.isnan(score)
    # A score that displays like τ without being τ gets its full digits, so no reason reads "4.5 < τ 4.5".
    tie = has_score & (score_text == tau_text) & (score != tau)
    if tie.any():
        score_text[tie] = [repr(float(s)) for s in score[tie]]
    text = np.char.add("score ", score_text.astype(str))
    kept_text, dropped_text = np.char.add(text, f" ≥ τ {tau_text}"), np.char.add(text, f" < τ {tau_text}")
    reasons = np.where(keep, kept_text, dropped_text).astype(object)
    reasons[~has_score] = "no score: dropped"
    return reasons


def threshold_counts(scores: np.ndarray, tau: float, bins: np.ndarray | int = 40) -> dict[str, Any]:
    """Kept/dropped/unscored counts and the score histogram at τ: what a slider redraws, no strings built."""
    scores = np.asarray(scores, np.float64)
    scored = scores[~np.isnan(scores)]
    kept = int(np.count_nonzero(threshold_keep(scores, tau)))
    span = None
    if isinstance(bins, int) and len(scored) and float(scored.max() - scored.min()) < 1e-9:
        span = (float(scored.min()) - 0.5, float(scored.max()) + 0.5)  # all (nearly) equal: numpy cannot split them
    counts, edges = np.histogram(scored, bins=bins, range=span)
    return {
        "kept": kept,
        "dropped": int(len(scores) - kept),
        "unscored": int(len(scores) - len(scored)),
        "histogram": counts,
        "edges": edges,
    }


def select_car(pool: pd.DataFrame, n1: int, n2: int) -> pd.DataFrame:
    """CaR: the n1 best scores overall plus the n2 best of every cluster, each example kept once."""
    if n1 < 0 or n2 < 0:
        raise SelectionError("CaR needs n1 ≥ 0 and n2 ≥ 0")
    if "cluster" not in pool or pool["cluster"].isna().any():
        raise SelectionError("CaR needs a cluster for every example; compute the clusters first")
    score = _scores(pool)
    cluster = pool["cluster"].to_numpy(np.int64)
    names = pool["cluster_name"].astype(object).to_numpy() if "cluster_name" in pool else np.full(len(pool), "", object)
    ids = _id_keys(pool)
    rank = _rank(score, ids)
    cluster_rank = _rank_within(score, ids, cluster)
    scored = ~np.isnan(score)  # unscored examples rank last and are never picked
    top = (rank <= n1) & scored
    cluster_top = (cluster_rank <= n2) & scored
    keep = car_keep(rank, cluster_rank, scored, n1, n2)
    columns = (rank, cluster_rank, score, cluster, names, top, cluster_top)
    reasons = [_car_reason(*row, n1, n2) for row in zip(*(c.tolist() for c in columns))]
    return _result(
        pool, keep, reasons, score=score, cluster=cluster, cluster_name=names, rank=rank, cluster_rank=cluster_rank
    )


def car_keep(rank: np.ndarray, cluster_rank: np.ndarray, scored: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """THE CaR rule on precomputed ranks: top n1 overall or top n2 of its cluster; unscored examples never.

    Ranking is the slow part; with the ranks kept, any (n1, n2) is a comparison (the Map's live sliders).
    """
    return ((rank <= n1) | (cluster_rank <= n2)) & scored


def _car_reason(
    rank: int, cluster_rank: int, score: float, cluster: int, name: str, top: bool, cluster_top: bool, n1: int, n2: int
) -> str:
    where = f"cluster {cluster}" + (f" '{name}'" if name else "")
    if math.isnan(score):
        return "no score: dropped"
    if top and cluster_top:
        return f"top-{rank} by score ({_number_text(score)}) and top-{cluster_rank} of {where}"
    if top:
        return f"top-{rank} by score ({_number_text(score)})"
    if cluster_top:
        return f"top-{cluster_rank} of {where}"
    return f"rank {rank} by score ({_number_text(score)}), not in the top {n1}; rank {cluster_rank} of {where}, not in its top {n2}"


def select_random(pool: pd.DataFrame, size: int, seed: int = 0) -> pd.DataFrame:
    """A uniform sample of ``size`` examples; the same seed and examples give the same sample."""
    if size < 0:
        raise SelectionError("a random sample needs a size ≥ 0")
    by_id = np.argsort(_id_keys(pool), kind="stable")
    drawn = np.zeros(len(pool), bool)
    picks = np.random.default_rng(seed).permutation(len(pool))[: min(size, len(pool))]
    drawn[by_id[picks]] = True
    label = f"random sample of {size} (seed {seed})"
    if size >= len(pool):
        reasons = np.full(len(pool), f"{label} covers all {len(pool)} examples", dtype=object)
    else:
        reasons = np.where(drawn, f"drawn in {label}", f"not drawn in {label}").astype(object)
    extra = {"score": _scores(pool)} if "score" in pool else {}
    return _result(pool, drawn, reasons, **extra)


def select_quota(
    pool: pd.DataFrame,
    quotas: Mapping[str, int],
    default: int | None = None,
    by: str = "score",
    seed: int = 0,
) -> pd.DataFrame:
    """At most ``quotas[category]`` (else ``default``) examples per category; unlisted ones keep all.

    ``by="score"`` keeps the best scores (unscored examples are dropped); ``by="random"`` draws with ``seed``.
    """
    if by not in ("score", "random"):
        raise SelectionError(f"quota selection ranks by 'score' or 'random', not {by!r}")
    bad = {c: q for c, q in quotas.items() if q < 0}
    if bad or (default is not None and default < 0):
        raise SelectionError(f"quotas must be ≥ 0 (got {bad or default})")
    categories = _categories(pool)
    ids = _id_keys(pool)
    score = _scores(pool) if by == "score" else _random_scores(ids, seed)
    rank = _rank_within(score, ids, pd.factorize(categories)[0])
    quota = np.array([quotas.get(c, default if default is not None else -1) for c in categories], np.int64)
    unlimited = quota < 0
    keep = unlimited | (rank <= quota)
    if by == "score":
        keep &= ~np.isnan(score) | unlimited
    rows = zip(categories.tolist(), rank.tolist(), quota.tolist(), score.tolist())
    reasons = [_quota_reason(c, r, q, s, by, seed) for c, r, q, s in rows]
    extra = {"score": score} if by == "score" else ({"score": _scores(pool)} if "score" in pool else {})
    return _result(pool, keep, reasons, category=categories, category_rank=rank, **extra)


def _quota_reason(category: str, rank: int, quota: int, score: float, by: str, seed: int) -> str:
    if quota < 0:
        return f"no quota for category '{category}': kept"
    if by == "score" and math.isnan(score):
        return f"no score: dropped (category '{category}', quota {quota})"
    order = "by score" if by == "score" else f"in a random draw (seed {seed})"
    if rank <= quota:
        return f"top-{rank} {order} of category '{category}' (quota {quota})"
    return f"rank {rank} {order} of category '{category}', over its quota of {quota}"


def select_ids(pool: pd.DataFrame, ids: Sequence[str], label: str = "the chosen examples") -> pd.DataFrame:
    """Keep exactly the examples named in ``ids`` (a box or lasso on the Map, saved or exported as a subset)."""
    keep = np.isin(_id_keys(pool), np.asarray(list(ids), dtype=str))
    reasons = np.where(keep, f"in {label}", f"not in {label}")
    return _result(pool, keep, reasons)


METHODS: dict[str, Callable[..., pd.DataFrame]] = {
    "threshold": select_threshold,
    "car": select_car,
    "random": select_random,
    "quota": select_quota,
    "ids": select_ids,
}
PARAMETERS: dict[str, tuple[str, ...]] = {
    "threshold": ("tau",),
    "car": ("n1", "n2"),
    "random": ("size", "seed"),
    "quota": ("quotas", "default", "by", "seed"),
    "ids": ("ids", "label"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "threshold": ("tau",),
    "car": ("n1", "n2"),
    "random": ("size",),
    "quota": ("quotas",),
    "ids": ("ids",),
}


DEFAULTS: dict[str, dict[str, Any]] = {
    "random": {"seed": 0},
    "ids": {"label": "the chosen examples"},
    "quota": {"default": None, "by": "score", "seed": 0},
}


def method_params(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The method's parameters with defaults filled in: what runs, and what a manifest records."""
    if method not in METHODS:
        raise SelectionError(f"unknown selection method '{method}'; choose one of {', '.join(METHODS)}")
    missing = [p for p in REQUIRED[method] if params.get(p) is None]
    if missing:
        raise SelectionError(f"the {method} method needs {', '.join(missing)}")
    merged = {**DEFAULTS.get(method, {}), **{k: v for k, v in params.items() if v is not None}}
    return {k: merged.get(k) for k in PARAMETERS[method]}


def run_method(method: str, pool: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Dispatch by name with only the parameters the method takes."""
    return METHODS[method](pool, **method_params(method, params))


# --- overrides ------------------------------------------------------------------------


def apply_overrides(selection: pd.DataFrame, overrides: Mapping[str, Any]) -> pd.DataFrame:
    """Human decisions last: ``{record_id: Decision}`` (``store.overrides.in_force``) or ``{id: dict}``.

    Overridden rows say who decided and why ("kept by alice: <reason>"); the machine's verdict stays
    in ``machine_keep`` / ``machine_reason``; ``decided_by`` names the person ("" for the machine).
    """
    result = selection.copy()
    result["machine_keep"] = result["keep"]
    result["machine_reason"] = result["reason"]
    result["decided_by"] = ""
    if not overrides:
        return result
    ids = result["id"].to_numpy(object)
    keep = overrule(result["keep"].to_numpy(bool), *override_masks(ids, overrides))
    reasons = result["reason"].to_numpy(object).copy()
    decided = result["decided_by"].to_numpy(object).copy()
    for i in (i for i, record_id in enumerate(ids) if record_id in overrides):
        _decision, user, why = _decision_fields(overrides[ids[i]])
        verb = "kept" if keep[i] else "dropped"
        reasons[i] = f"{verb} by {user}: {why}" if why else f"{verb} by {user}"
        decided[i] = user
    result["keep"] = keep
    result["reason"] = reasons
    result["decided_by"] = decided
    return result


def override_masks(ids: np.ndarray, overrides: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (keep, drop) masks over ``ids`` from the overrides in force (``Decision`` objects or dicts)."""
    keep = np.zeros(len(ids), dtype=bool)
    drop = np.zeros(len(ids), dtype=bool)
    if not overrides:
        return keep, drop
    index = pd.Index(ids)
    for decision, mask in (("keep", keep), ("drop", drop)):
        chosen = [record_id for record_id, d in overrides.items() if _decision_fields(d)[0] == decision]
        positions = index.get_indexer(chosen)
        mask[positions[positions >= 0]] = True
    return keep, drop


def overrule(machine_keep: np.ndarray, keep: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """THE override rule: a person's keep or drop wins over the machine's verdict."""
    return (machine_keep | keep) & ~drop


def _decision_fields(decision: Any) -> tuple[str, str, str]:
    if isinstance(decision, Mapping):
        return str(decision["decision"]), str(decision.get("user", "")), str(decision.get("reason", "") or "")
    return decision.decision, decision.user, decision.reason or ""


# --- helpers --------------------------------------------------------------------------------------


def _scores(pool: pd.DataFrame) -> np.ndarray:
    if "score" not in pool:
        raise SelectionError("this method needs a score for the examples; rate them first or name the score field")
    return pd.to_numeric(pool["score"], errors="coerce").to_numpy(np.float64, na_value=np.nan)


def _id_keys(pool: pd.DataFrame) -> np.ndarray:
    """Ids as fixed-width strings: sorting them is several times faster than sorting Python objects."""
    return pool["id"].to_numpy(object).astype(str)


def _categories(pool: pd.DataFrame) -> np.ndarray:
    if "category" not in pool:
        return np.full(len(pool), NO_CATEGORY, dtype=object)
    values = pool["category"].astype(object).to_numpy(object)
    missing = pd.isna(values) | (values == "")
    values = values.astype(str).astype(object)
    values[missing] = NO_CATEGORY
    return values


def _random_scores(ids: np.ndarray, seed: int) -> np.ndarray:
    """A random but reproducible score per example, independent of row order."""
    by_id = np.argsort(ids, kind="stable")
    values = np.empty(len(ids))
    values[by_id] = np.random.default_rng(seed).random(len(ids))
    return values


def _rank(score: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """1-based rank by score (high first), ties by id; unscored examples rank after all scored ones."""
    order = np.lexsort((ids, -np.nan_to_num(score, nan=-np.inf), np.isnan(score)))
    rank = np.empty(len(score), np.int64)
    rank[order] = np.arange(1, len(score) + 1)
    return rank


def _rank_within(score: np.ndarray, ids: np.ndarray, group: np.ndarray) -> np.ndarray:
    """1-based rank by score inside each group, ties by id."""
    order = np.lexsort((ids, -np.nan_to_num(score, nan=-np.inf), np.isnan(score), group))
    sorted_group = group[order]
    starts = np.r_[True, sorted_group[1:] != sorted_group[:-1]] if len(order) else np.zeros(0, bool)
    position = np.arange(len(order))
    group_start = np.maximum.accumulate(np.where(starts, position, 0)) if len(order) else position
    rank = np.empty(len(score), np.int64)
    rank[order] = position - group_start + 1
    return rank


def _number_text(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if np.isfinite(value) else str(value)


def _number_texts(values: np.ndarray) -> np.ndarray:
    """Display texts for many numbers, formatting each distinct value once."""
    rounded = np.round(np.nan_to_num(values, nan=0.0), 2)
    unique, inverse = np.unique(rounded, return_inverse=True)
    texts = np.array([_number_text(v) for v in unique.tolist()], dtype=object)
    return texts[inverse.reshape(-1)] if len(values) else np.zeros(0, object)


def _result(pool: pd.DataFrame, keep: Any, reasons: Any, **columns: Any) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"id": pool["id"].to_numpy(object), "keep": np.asarray(keep, bool), "reason": np.asarray(reasons, object)}
    )
    for name, values in columns.items():
        frame[name] = values
    if "category" in pool and "category" not in frame:
        frame["category"] = _categories(pool)
    return frame
