"""From records to a saved, rebuildable selection: pools, manifests, export and rebuild.

A manifest says how a subset was made — method, parameters, seed, rater and version, the clustering
configuration for CaR, the human overrides in force, counts — and names the exact data (a hash of the
record ids) and scores (a hash of id → score) it was made from, plus a hash of the kept ids. Rebuilding
checks the data and scores, runs the method again and checks that the same ids come out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from curation.config import Settings
from curation.progress import ProgressFn
from curation.records import Record
from curation.select.methods import SelectionError, apply_overrides, method_params, run_method
from curation.store.datasets import content_hash

if TYPE_CHECKING:
    from curation.studio_auth import Person

MANIFEST_FORMAT = "curation-selection/1"
FORMAT_BY_SUFFIX = {".json": "alpaca", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".csv": "csv"}
# Per-row fields an export adds to each record, when the selection has them.
EXPORTED_COLUMNS = ("keep", "reason", "score", "cluster", "cluster_name", "decided_by")


class ManifestMismatch(SelectionError):
    """The data, scores or result of a rebuild differ from what the manifest recorded."""


@dataclass(frozen=True)
class ScoreSource:
    """Where the scores came from: stored in the manifest so a rebuild reads the same ones."""

    rater: str = ""
    rater_version: str = ""
    field: str = "score"


@dataclass
class SelectionRun:
    selection: pd.DataFrame
    manifest: dict[str, Any]

    @property
    def kept_ids(self) -> list[str]:
        return self.selection.loc[self.selection["keep"], "id"].tolist()


def scores_from_records(records: Sequence[Record], field: str = "score") -> np.ndarray:
    """Scores carried by the records themselves (``python -m curation rate`` writes a ``score`` field)."""
    values = np.full(len(records), np.nan)
    for i, record in enumerate(records):
        value = record.meta.get(field)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values[i] = float(value)
        elif isinstance(value, str):
            try:
                values[i] = float(value)
            except ValueError:
                pass  # an unparsed rating: no score, and the reason will say so
    return values


def score_source_of(records: Sequence[Record], field: str = "score") -> ScoreSource:
    """The rater and version named in the records' metadata, when they all agree."""
    raters = {str(r.meta.get("rater", "")) for r in records}
    versions = {str(r.meta.get("rater_version", "")) for r in records}
    return ScoreSource(raters.pop() if len(raters) == 1 else "", versions.pop() if len(versions) == 1 else "", field)


def scores_from_store(
    store: Any,
    dataset_id: int,
    records: Sequence[Record],
    rater: str,
    rater_version: str | None = None,
    field: str | None = None,
    scale: str = "0-5",
) -> tuple[np.ndarray, ScoreSource]:
    """Scores of a dataset's examples from one rater; the version with most ratings unless one is named.

    ``field`` names the ratings column; without it, the column that holds ``scale`` for this rater.
    """
    from curation.select.service import rating_field

    frame = store.ratings.frame(dataset_id, rater=rater, rater_version=rater_version)
    if frame.empty:
        known = ", ".join(sorted({f"{s.rater} {s.rater_version}" for s in store.ratings.raters(dataset_id)})) or "none"
        raise SelectionError(
            f"no ratings from '{rater}'{' version ' + rater_version if rater_version else ''} for this dataset (raters: {known})"
        )
    if rater_version is None:
        rater_version = str(frame["rater_version"].value_counts().index[0])
        frame = frame[frame["rater_version"] == rater_version]
    field = field or rating_field(frame[frame["status"] == "ok"], scale)
    if field not in frame:
        raise SelectionError(f"ratings have no '{field}' column; use score or score_0_5")
    ok = frame[frame["status"] == "ok"].drop_duplicates("id").set_index("id")[field]
    ids = pd.Index([r.id for r in records])
    return ok.reindex(ids).to_numpy(np.float64, na_value=np.nan), ScoreSource(rater, rater_version, field)


def make_pool(records: Sequence[Record], scores: np.ndarray | None = None, clusters: Any = None) -> pd.DataFrame:
    """One row per record: id, category, score (if given), cluster and cluster_name (if given)."""
    pool = pd.DataFrame({"id": [r.id for r in records], "category": [r.category for r in records]})
    if scores is not None:
        if len(scores) != len(records):
            raise SelectionError(f"{len(scores)} scores for {len(records)} records")
        pool["score"] = np.asarray(scores, np.float64)
    if clusters is not None:
        pool["cluster"] = clusters.labels
        pool["cluster_name"] = np.array(clusters.names, dtype=object)[clusters.labels] if clusters.k else []
    return pool


def select_records(
    records: Sequence[Record],
    method: str,
    params: Mapping[str, Any],
    settings: Settings,
    scores: np.ndarray | None = None,
    source: ScoreSource | None = None,
    overrides: Mapping[str, Any] | None = None,
    dataset_name: str = "",
    progress: ProgressFn | None = None,
) -> SelectionRun:
    """Run one method over records (clustering them first for CaR), apply overrides, write the manifest."""
    params = method_params(method, params)
    clusters = None
    if method == "car":
        from curation.cluster import cluster_records

        clusters = cluster_records(records, settings, progress)
    pool = make_pool(records, scores, clusters)
    selection = apply_overrides(run_method(method, pool, params), overrides or {})
    manifest = make_manifest(
        selection, records, method, params, settings, scores, source, overrides, dataset_name, clusters
    )
    return SelectionRun(selection, manifest)


def make_manifest(
    selection: pd.DataFrame,
    records: Sequence[Record],
    method: str,
    params: Mapping[str, Any],
    settings: Settings,
    scores: np.ndarray | None,
    source: ScoreSource | None,
    overrides: Mapping[str, Any] | None,
    dataset_name: str,
    clusters: Any = None,
) -> dict[str, Any]:
    ids = selection["id"].tolist()
    kept = selection.loc[selection["keep"], "id"].tolist()
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "method": method,
        "params": _plain(dict(params)),
        "seed": params.get("seed"),
        "rater": dataclasses.asdict(source or ScoreSource()),
        "dataset": {"name": dataset_name, "hash": content_hash(ids), "n": len(ids)},
        "scores_hash": scores_hash(ids, scores) if scores is not None else None,
        "overrides": _override_snapshot(ids, overrides or {}),
        "counts": {"total": len(ids), "kept": len(kept), "dropped": len(ids) - len(kept)},
        "kept_hash": content_hash(kept),
    }
    if method == "car":
        manifest["clustering"] = clustering_settings(settings, clusters)
    return manifest


def clustering_settings(settings: Settings, clusters: Any = None) -> dict[str, Any]:
    from curation.cluster import ALGORITHM_VERSION
    from curation.embed import model_slug

    info = {
        "embed_model": model_slug(settings.embed),
        "embed": {
            "template": settings.embed.template,
            "max_length": settings.embed.max_length,
            "dtype": settings.embed.dtype,
        },
        "cluster": {
            "pca_variance": settings.cluster.pca_variance,
            "k": settings.cluster.k,
            "seed": settings.cluster.seed,
        },
        "version": ALGORITHM_VERSION,
    }
    if clusters is not None:
        info["k_used"] = clusters.k
        info["pca_components"] = clusters.n_components
    return info


def scores_hash(ids: Sequence[str], scores: np.ndarray) -> str:
    lines = sorted(f"{i}\t{_score_text(s)}" for i, s in zip(ids, np.asarray(scores, np.float64).tolist()))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:32]


def _score_text(value: float) -> str:
    return "nan" if math.isnan(value) else repr(value)


def _override_snapshot(ids: Sequence[str], overrides: Mapping[str, Any]) -> list[dict[str, Any]]:
    present = set(ids)
    snapshot = []
    for record_id in sorted(overrides):
        if record_id not in present:
            continue
        value = overrides[record_id]
        if isinstance(value, Mapping):
            snapshot.append(
                {
                    "id": record_id,
                    "decision": value["decision"],
                    "user": value.get("user", ""),
                    "reason": value.get("reason", ""),
                }
            )
        else:
            snapshot.append({"id": record_id, "decision": value.decision, "user": value.user, "reason": value.reason})
    return snapshot


# --- export ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    path: Path
    manifest_path: Path
    rows: int


def export_selection(
    records: Sequence[Record],
    selection: pd.DataFrame,
    out: Path,
    manifest: Mapping[str, Any],
    fmt: str | None = None,
    include_dropped: bool = False,
) -> Exported:
    """Write the kept rows (every row with ``include_dropped``) and ``<out>.manifest.json`` beside them."""
    from curation.formats import write_records

    out = Path(out)
    fmt = fmt or format_for(out)
    if len(records) != len(selection):
        raise SelectionError(f"{len(records)} records but {len(selection)} selection rows; they must align")
    rows = np.flatnonzero(np.ones(len(selection), bool) if include_dropped else selection["keep"].to_numpy(bool))
    columns = [c for c in EXPORTED_COLUMNS if c in selection]
    extra = [_row_extra(selection, columns, i) for i in rows]
    count = write_records([records[i] for i in rows], out, fmt, extra)
    written = dict(manifest)
    written["export"] = {"file": out.name, "format": fmt, "rows": count, "dropped_rows_included": include_dropped}
    manifest_path = manifest_path_for(out)
    manifest_path.write_text(json.dumps(_plain(written), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return Exported(out, manifest_path, count)


EXPORTS = "exports"


class UnsafeExportPath(SelectionError):
    """An export file name that would land outside the workspace's export folder."""


def export_path(workspace: Path, file_name: str) -> Path:
    """``<workspace>/exports/<file_name>``, refusing any name that resolves outside that folder."""
    folder = (Path(workspace) / EXPORTS).resolve()
    target = (folder / file_name).resolve()
    if not file_name or target.parent != folder:
        raise UnsafeExportPath(
            f"the export name {file_name!r} leads outside the workspace's export folder; use a plain file name"
        )
    return target


def export_to_workspace(
    workspace: Path,
    person: Person | None,
    records: Sequence[Record],
    selection: pd.DataFrame,
    file_name: str,
    manifest: Mapping[str, Any],
    fmt: str | None = None,
    include_dropped: bool = False,
) -> Exported:
    """What the studio's export does: checks the person may export, writes inside ``<workspace>/exports``."""
    from curation.studio_auth import require

    someone = require(person, "export", "export a selection")
    out = export_path(workspace, file_name)
    out.parent.mkdir(parents=True, exist_ok=True)
    return export_selection(records, selection, out, {**manifest, "exported_by": someone.name}, fmt, include_dropped)


def manifest_path_for(out: Path) -> Path:
    return out.with_name(out.name + ".manifest.json")


def format_for(path: Path) -> str:
    fmt = FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise SelectionError(
            f"{path.name}: cannot tell the export format from '{path.suffix}'; use .json, .jsonl, .parquet or .csv"
        )
    return fmt


def _row_extra(selection: pd.DataFrame, columns: list[str], row: int) -> dict[str, Any]:
    extra = {}
    for column in columns:
        value = selection[column].iat[row]
        if column == "decided_by" and not value:
            continue
        extra[column] = _plain(value)
    return extra


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars become Python ones and NaN becomes null."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# --- rebuild --------------------------------------------------------------------------------------


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise SelectionError(f"{path}: not a readable selection manifest ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise SelectionError(f"{path}: not a selection manifest (expected format '{MANIFEST_FORMAT}')")
    return manifest


def rebuild_from_manifest(
    manifest: Mapping[str, Any],
    records: Sequence[Record],
    settings: Settings,
    scores: np.ndarray | None = None,
    progress: ProgressFn | None = None,
) -> SelectionRun:
    """Make the same selection again from the same data; raises :class:`ManifestMismatch` if it cannot."""
    ids = [r.id for r in records]
    expected = manifest["dataset"]["hash"]
    if content_hash(ids) != expected:
        raise ManifestMismatch(
            f"these {len(ids)} records are not the data the selection was made from "
            f"(hash {content_hash(ids)}, manifest {expected}, {manifest['dataset']['n']} records); load that dataset"
        )
    if manifest.get("scores_hash") and (scores is None or scores_hash(ids, scores) != manifest["scores_hash"]):
        rater = manifest.get("rater", {})
        raise ManifestMismatch(
            f"the scores differ from those the selection was made with (rater '{rater.get('rater', '')}' "
            f"version '{rater.get('rater_version', '')}'); use the same ratings"
        )
    settings = _settings_for(manifest, settings)
    overrides = {o["id"]: o for o in manifest.get("overrides", [])}
    source = ScoreSource(**manifest.get("rater", {}))
    run = select_records(
        records,
        manifest["method"],
        manifest["params"],
        settings,
        scores,
        source,
        overrides,
        manifest["dataset"].get("name", ""),
        progress,
    )
    kept = run.kept_ids
    if content_hash(kept) != manifest["kept_hash"]:
        raise ManifestMismatch(
            f"the rebuild kept {len(kept)} examples but not the same ones as the manifest "
            f"({manifest['counts']['kept']} kept); the embedding model or library versions may differ"
        )
    run.manifest["created_at"] = manifest.get("created_at", run.manifest["created_at"])
    return run


def _settings_for(manifest: Mapping[str, Any], settings: Settings) -> Settings:
    """The settings that matter for the method, as the manifest recorded them."""
    clustering = manifest.get("clustering")
    if not clustering:
        return settings
    embed = settings.embed.model_validate({**settings.embed.model_dump(), **clustering["embed"]})
    cluster = settings.cluster.model_validate({**settings.cluster.model_dump(), **clustering["cluster"]})
    rebuilt = settings.model_copy(update={"embed": embed, "cluster": cluster})
    from curation.embed import model_slug

    if model_slug(embed) != clustering["embed_model"]:
        raise ManifestMismatch(
            f"the selection was clustered with embeddings '{clustering['embed_model']}' but embed.model gives "
            f"'{model_slug(embed)}'; set embed.model to that model"
        )
    return rebuilt


def rebuild_saved(store: Any, settings: Settings, selection_id: int, progress: ProgressFn | None = None) -> SelectionRun:
    """Rebuild a selection saved in the store from its dataset, its rater's stored scores and its manifest."""
    saved = store.selections.get(selection_id)
    records = store.datasets.records(saved.dataset_id)
    manifest = saved.manifest
    scores = None
    if manifest.get("scores_hash"):
        rater = manifest.get("rater") or {}
        if not rater.get("rater"):
            raise SelectionError(f"selection '{saved.name}' was made from scores in a file; rebuild it from that file")
        scores, _ = scores_from_store(
            store, saved.dataset_id, records, rater["rater"], rater.get("rater_version") or None, rater.get("field", "score")
        )
    return rebuild_from_manifest(manifest, records, settings, scores, progress)
