"""The one selection service: every caller (CLI, studio pages, benchmarks) selects through here.

- :func:`curation.select.select_records` computes a selection: method + parameters + overrides -> one
  row per example with ``keep`` and ``reason`` (dropped rows stay), plus its manifest.
- :func:`select_dataset` does it for a workspace dataset: its records, one rater's scores on the chosen
  scale, the overrides in force (or a manifest to rebuild).
- :func:`balance_of` is the balance report of a selection over its records.
- :func:`kept_at` is the threshold verdict after overrides as a mask, for sliders that redraw per move;
  it applies the same rules (:func:`threshold_keep`, :func:`overrule`) that :func:`select_threshold` does.

Scales: every rater is shown and thresholded on the 0–5 scale by default (``score_0_5``: the IQS
scorer's calibrated score, the LLM's rating as is), so AlpaGasus' τ = 4.5 means the same everywhere;
``raw`` uses the rater's own ``score``. A rater without a 0–5 score falls back to its raw score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from curation.config import Settings
from curation.progress import ProgressFn
from curation.records import Record
from curation.select.manifest import (
    ScoreSource,
    SelectionRun,
    rebuild_from_manifest,
    scores_from_store,
    select_records,
)
from curation.select.methods import SelectionError, override_masks, overrule, threshold_keep

SCALES: dict[str, str] = {"0-5": "score_0_5", "raw": "score"}
DEFAULT_SCALE = "0-5"
SCALE_LABELS: dict[str, str] = {"score_0_5": "the 0–5 scale", "score": "the rater's raw scale"}


def scale_field(scale: str) -> str:
    if scale not in SCALES:
        raise SelectionError(f"unknown score scale '{scale}'; choose one of {', '.join(SCALES)}")
    return SCALES[scale]


def rating_field(ratings: pd.DataFrame, scale: str = DEFAULT_SCALE) -> str:
    """The ratings column that holds ``scale`` for this rater (``score`` when it gives no 0–5 score)."""
    field = scale_field(scale)
    if field == "score_0_5" and ("score_0_5" not in ratings or not ratings["score_0_5"].notna().any()):
        return "score"
    return field


def record_field(records: Sequence[Record], scale: str = DEFAULT_SCALE) -> str:
    """The same choice for a rated file: ``score_0_5`` when its rows carry one (``rate`` writes both)."""
    field = scale_field(scale)
    if field == "score_0_5" and not any(_is_number(r.meta.get("score_0_5")) for r in records):
        return "score"
    return field


def default_tau(values: np.ndarray) -> float:
    """Where a τ slider starts before anyone moved it: the median rated score (0 when nothing is rated)."""
    rated = values[~np.isnan(values)]
    return float(np.median(rated)) if len(rated) else 0.0


def kept_at(values: np.ndarray, tau: float, ids: np.ndarray, overrides: Mapping[str, Any]) -> np.ndarray:
    """The threshold verdict after the overrides in force, as a mask aligned to ``ids``."""
    return overrule(threshold_keep(values, tau), *override_masks(ids, overrides))


@dataclass
class DatasetSelection:
    """A selection of a dataset (or a file) with what it was made from: the records, for export and balance."""

    name: str
    dataset_id: int | None  # None for a file
    records: list[Record]
    run: SelectionRun
    n_rejected: int = 0

    @property
    def selection(self) -> pd.DataFrame:
        return self.run.selection

    @property
    def manifest(self) -> dict[str, Any]:
        return self.run.manifest


def select_dataset(
    store: Any,
    settings: Settings,
    dataset: str | int,
    method: str = "",
    params: Mapping[str, Any] | None = None,
    *,
    rater: str | None = None,
    rater_version: str | None = None,
    scale: str = DEFAULT_SCALE,
    field: str | None = None,
    use_overrides: bool = True,
    rebuild: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
) -> DatasetSelection:
    """Select a stored dataset: scores of ``rater`` on ``scale`` (or ``field``), the overrides in force.

    With ``rebuild`` (a manifest) the selection it describes is made again and checked: its rater, score
    field and overrides are the manifest's.
    """
    info = store.datasets.get(dataset)
    records = store.datasets.records(info.id)
    recorded = dict((rebuild or {}).get("rater") or {})
    rater = rater or recorded.get("rater") or None
    field = field or recorded.get("field") or None
    scores, source = None, ScoreSource(field=field or scale_field(scale))
    if rater:
        scores, source = scores_from_store(store, info.id, records, rater, rater_version or recorded.get("rater_version") or None,
                                           field, scale)
    if rebuild is not None:
        run = rebuild_from_manifest(rebuild, records, settings, scores, progress)
    else:
        if scores is None and method not in ("random", "ids"):
            raise SelectionError(f"the {method or 'chosen'} method needs scores: name the rater whose ratings to use")
        overrides = store.overrides.in_force(info.id) if use_overrides else {}
        run = select_records(records, method, params or {}, settings, scores, source, overrides, info.name, progress)
    return DatasetSelection(info.name, info.id, records, run, info.n_rejected)


def balance_of(selection: pd.DataFrame, records: Sequence[Record]) -> pd.DataFrame:
    """The balance report of a selection whose rows align with ``records`` (category, and instruction + input)."""
    from curation.select.balance import balance_report

    return balance_report(selection, [r.category for r in records], [_prompt(r) for r in records])


def _prompt(record: Record) -> str:
    return f"{record.instruction}\n{record.input}" if record.input else record.instruction


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def save_selection(store: Any, person: Any, dataset_id: int, name: str, manifest: Mapping[str, Any]) -> Any:
    """Keep a selection under ``name`` (store.selections; rebuilt exactly from its manifest) for ``person``."""
    from curation.studio_auth import require

    someone = require(person, "export", "save a named subset")
    if not name.strip():
        raise SelectionError("a saved subset needs a name; type one")
    return store.selections.save(dataset_id, name.strip(), dict(manifest), created_by=someone.name)
