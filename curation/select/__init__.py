"""Selection: keep or drop every example with its reason; overrides, balance, manifests and export.

``curation.select.methods`` holds the methods, ``balance`` the per-category/skill report and
``manifest`` the path from records to an exported, rebuildable subset.
"""

from curation.select.balance import CODING_GROUP, KEYWORD_GROUPS, balance_report
from curation.select.manifest import (
    Exported,
    ManifestMismatch,
    ScoreSource,
    SelectionRun,
    export_selection,
    make_manifest,
    make_pool,
    read_manifest,
    rebuild_from_manifest,
    rebuild_saved,
    score_source_of,
    scores_from_records,
    scores_from_store,
    select_records,
)
from curation.select.methods import (
    METHODS,
    SelectionError,
    apply_overrides,
    method_params,
    run_method,
    select_car,
    select_quota,
    select_random,
    select_threshold,
    threshold_counts,
)

__all__ = [
    "CODING_GROUP",
    "KEYWORD_GROUPS",
    "METHODS",
    "Exported",
    "ManifestMismatch",
    "ScoreSource",
    "SelectionError",
    "SelectionRun",
    "apply_overrides",
    "balance_report",
    "export_selection",
    "make_manifest",
    "make_pool",
    "method_params",
    "read_manifest",
    "rebuild_from_manifest",
    "rebuild_saved",
    "run_method",
    "score_source_of",
    "scores_from_records",
    "scores_from_store",
    "select_car",
    "select_quota",
    "select_random",
    "select_records",
    "select_threshold",
    "threshold_counts",
]
