"""The numbers behind the studio's Explore and Map pages, cheap enough to recompute on every slider move.

Everything heavy (loading examples, ratings, the map) happens once and is cached by the studio; what is
left per rerun is vectorised numpy over arrays aligned to the dataset's example order:

- :func:`align_scores` turns one rater's ratings into a score array on a scale (NaN = no usable rating);
- :func:`summarize_tau` gives kept/dropped counts, the split histogram and the kept share per category;
- :func:`example_table` / :func:`filter_table` give the searchable, sortable list of examples;
- :func:`selected_points`, :func:`cluster_table`, :func:`car_ranks` answer the map's questions.

The keep/drop rules themselves live in :mod:`curation.select` (``threshold_keep``, ``car_keep``,
``overrule``): this module only counts and draws what they decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from curation.select import (
    DEFAULT_SCALE,
    SCALE_LABELS,
    car_keep,
    overrule,
    rating_field,
    threshold_keep,
)

NO_CATEGORY = "(none)"
PREVIEW_CHARS = 120
SHOW_CHOICES = ("all", "kept", "dropped", "unrated", "flagged", "overridden")


@dataclass(frozen=True)
class Scores:
    """One rater's scores aligned to a dataset's examples, plus what the histogram needs."""

    ids: np.ndarray
    values: np.ndarray  # float64, NaN where the example has no ok rating
    category_codes: np.ndarray  # int index into ``categories`` per example
    categories: tuple[str, ...]
    edges: np.ndarray  # histogram bin edges: 0..5 on the 0–5 scale, else the rated range
    field: str = "score"  # the ratings column the values come from (score_0_5 or score)

    @property
    def scale_label(self) -> str:
        return SCALE_LABELS.get(self.field, self.field)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def rated(self) -> np.ndarray:
        return ~np.isnan(self.values)

    def tau_range(self) -> tuple[float, float]:
        return float(self.edges[0]), float(self.edges[-1])


@dataclass(frozen=True)
class TauSummary:
    tau: float
    total: int
    rated: int
    kept: int
    forced_keep: int  # kept only because a person said so
    forced_drop: int  # dropped only because a person said so
    kept_mask: np.ndarray
    hist_kept: np.ndarray  # per bin, by score alone (overrides are not scores)
    hist_dropped: np.ndarray
    edges: np.ndarray
    by_category: pd.DataFrame  # category, examples, kept, kept_share
    scale_label: str = "the 0–5 scale"

    @property
    def dropped(self) -> int:
        return self.total - self.kept

    @property
    def unrated(self) -> int:
        return self.total - self.rated

    @property
    def kept_share(self) -> float:
        return self.kept / self.total if self.total else 0.0


def rater_label(rater: str, version: str) -> str:
    return f"{rater} ({version})" if version else rater


def align_scores(examples: pd.DataFrame, ratings: pd.DataFrame, bins: int = 40, scale: str = DEFAULT_SCALE) -> Scores:
    """Scores of one rater (``ratings`` already filtered to it) on ``scale``, in the order of ``examples``."""
    column = rating_field(ratings[ratings["status"] == "ok"] if len(ratings) else ratings, scale)
    usable = ratings[(ratings["status"] == "ok") & ratings[column].notna()] if len(ratings) else ratings
    by_id = pd.Series(usable[column].to_numpy(dtype=float), index=usable["id"]) if len(usable) else pd.Series(dtype=float)
    by_id = by_id[~by_id.index.duplicated(keep="last")]
    values = by_id.reindex(examples["id"]).to_numpy(dtype=float)
    codes, categories = pd.factorize(examples["category"].fillna(NO_CATEGORY), sort=True)
    return Scores(
        ids=examples["id"].to_numpy(),
        values=values,
        category_codes=codes.astype(np.int64),
        categories=tuple(str(c) for c in categories),
        edges=np.linspace(0.0, 5.0, bins + 1) if column == "score_0_5" else _bin_edges(values, bins),
        field=column,
    )


def _bin_edges(values: np.ndarray, bins: int) -> np.ndarray:
    rated = values[~np.isnan(values)]
    if not len(rated):
        return np.linspace(0.0, 1.0, bins + 1)
    low, high = float(rated.min()), float(rated.max())
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def summarize_tau(
    scores: Scores, tau: float, keep: np.ndarray | None = None, drop: np.ndarray | None = None
) -> TauSummary:
    """What a threshold at ``tau`` keeps, after the overrides in force (``keep``/``drop`` masks)."""
    values = scores.values
    rated = ~np.isnan(values)
    by_score = threshold_keep(values, tau)
    keep = np.zeros(len(values), dtype=bool) if keep is None else keep
    drop = np.zeros(len(values), dtype=bool) if drop is None else drop
    kept_mask = overrule(by_score, keep, drop)
    forced_keep = int(np.count_nonzero(kept_mask & ~by_score))
    forced_drop = int(np.count_nonzero(by_score & ~kept_mask))
    rated_values = values[rated]
    above = by_score[rated]
    hist_kept, _ = np.histogram(rated_values[above], bins=scores.edges)
    hist_dropped, _ = np.histogram(rated_values[~above], bins=scores.edges)
    return TauSummary(
        tau=float(tau),
        total=scores.n,
        rated=int(np.count_nonzero(rated)),
        kept=int(np.count_nonzero(kept_mask)),
        forced_keep=forced_keep,
        forced_drop=forced_drop,
        kept_mask=kept_mask,
        hist_kept=hist_kept,
        hist_dropped=hist_dropped,
        edges=scores.edges,
        by_category=_kept_by_category(scores, kept_mask),
        scale_label=scores.scale_label,
    )


def _kept_by_category(scores: Scores, kept_mask: np.ndarray) -> pd.DataFrame:
    size = len(scores.categories)
    totals = np.bincount(scores.category_codes, minlength=size)
    kept = np.bincount(scores.category_codes[kept_mask], minlength=size)
    share = np.divide(kept, totals, out=np.zeros(size), where=totals > 0)
    frame = pd.DataFrame({"category": scores.categories, "examples": totals, "kept": kept, "kept_share": share})
    return frame.sort_values(["examples", "category"], ascending=[False, True], ignore_index=True)


# ----------------------------------------------------------------------------------------------------
# The table of examples


def score_columns(ratings: pd.DataFrame, scale: str = DEFAULT_SCALE) -> pd.DataFrame:
    """One column per rater (labelled ``rater (version)``) of ok scores on ``scale``, indexed by example id."""
    usable = ratings[ratings["status"] == "ok"] if len(ratings) else ratings
    if not len(usable):
        return pd.DataFrame(index=pd.Index([], name="id"))
    labels = pd.Series([rater_label(r, v) for r, v in zip(usable["rater"], usable["rater_version"])], index=usable.index)
    # Each rater on the scale asked for; one without a 0–5 score shows its raw score (rating_field's rule).
    fields = {label: rating_field(usable[labels == label], scale) for label in labels.unique()}
    values = np.where(labels.map(fields) == "score_0_5", usable["score_0_5"].to_numpy(float, na_value=np.nan),
                      usable["score"].to_numpy(float, na_value=np.nan))
    wide = usable.assign(label=labels, value=values).pivot_table(index="id", columns="label", values="value", aggfunc="last")
    wide.columns.name = None
    return wide


def flag_summary(flags: pd.DataFrame) -> pd.Series:
    """Flag names per example id, comma-joined."""
    if not len(flags):
        return pd.Series(dtype=object, name="flags")
    return flags.groupby("id")["name"].agg(lambda names: ", ".join(sorted(set(names)))).rename("flags")


def example_table(
    examples: pd.DataFrame, ratings: pd.DataFrame, flags: pd.DataFrame, scale: str = DEFAULT_SCALE
) -> pd.DataFrame:
    """The browsable table, built once per data version: text previews, every rater's score on ``scale``, flags.

    ``examples`` has id, category, source, instruction, input, output in dataset order; the result keeps
    that order and carries a lower-cased ``_haystack`` column for searching.
    """
    table = pd.DataFrame(
        {
            "id": examples["id"].to_numpy(),
            "instruction": examples["instruction"].str.slice(0, PREVIEW_CHARS).to_numpy(),
            "category": examples["category"].fillna(NO_CATEGORY).to_numpy(),
            "source": examples["source"].fillna(NO_CATEGORY).to_numpy(),
        }
    )
    wide = score_columns(ratings, scale)
    for label in wide.columns:
        table[label] = wide[label].reindex(table["id"]).to_numpy()
    table["flags"] = flag_summary(flags).reindex(table["id"]).fillna("").to_numpy()
    table["_haystack"] = (
        examples["instruction"].fillna("") + "\n" + examples["input"].fillna("") + "\n" + examples["output"].fillna("")
    ).str.lower().to_numpy()
    return table


def filter_table(
    table: pd.DataFrame,
    kept_mask: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    in_force: Mapping[str, Any] | None = None,
    query: str = "",
    show: str = "all",
    sort_by: str | None = None,
    descending: bool = True,
    limit: int = 500,
) -> tuple[pd.DataFrame, int]:
    """The rows to display (at most ``limit``) and how many rows match in all."""
    if show not in SHOW_CHOICES:
        raise ValueError(f"show must be one of {SHOW_CHOICES}, got {show!r}")
    in_force = in_force or {}
    view = table.drop(columns="_haystack")
    if kept_mask is not None:
        view = view.assign(kept=kept_mask)
    view = view.assign(override=[_override_text(in_force.get(i)) for i in view["id"]] if in_force else "")
    mask = np.ones(len(view), dtype=bool)
    if query.strip():
        mask &= table["_haystack"].str.contains(query.strip().lower(), regex=False).to_numpy()
    mask &= _show_mask(view, show, kept_mask, scores)
    matching = view[mask]
    if sort_by and sort_by in matching.columns:
        matching = matching.sort_values(sort_by, ascending=not descending, na_position="last", kind="stable")
    return matching.head(limit).reset_index(drop=True), int(mask.sum())


def _override_text(decision: Any) -> str:
    return f"{decision.decision} by {decision.user}" if decision is not None else ""


def _show_mask(view: pd.DataFrame, show: str, kept_mask: np.ndarray | None, scores: np.ndarray | None) -> np.ndarray:
    everything = np.ones(len(view), dtype=bool)
    if show == "kept" and kept_mask is not None:
        return kept_mask
    if show == "dropped" and kept_mask is not None:
        return ~kept_mask
    if show == "unrated" and scores is not None:
        return np.isnan(scores)
    if show == "flagged":
        return (view["flags"] != "").to_numpy()
    if show == "overridden":
        return (view["override"] != "").to_numpy()
    return everything


# ----------------------------------------------------------------------------------------------------
# The map


def selected_points(event: Mapping[str, Any] | None, curve: int = 0) -> list[int]:
    """Point indices of trace ``curve`` in a Streamlit plotly selection event (read dict-style)."""
    selection = (event or {}).get("selection") or {}
    points = selection.get("points") or []
    chosen = {int(p["point_index"]) for p in points if int(p.get("curve_number", 0)) == curve and "point_index" in p}
    return sorted(chosen)


def align_map(examples: pd.DataFrame, map_frame: pd.DataFrame) -> pd.DataFrame:
    """The map's rows (id, x, y, cluster, cluster_name) in the dataset's example order; missing rows dropped."""
    aligned = map_frame.drop_duplicates("id").set_index("id").reindex(examples["id"])
    aligned = aligned.reset_index().rename(columns={"index": "id"})
    aligned["position"] = np.arange(len(aligned))
    return aligned.dropna(subset=["x", "y"]).reset_index(drop=True)


def cluster_table(aligned_map: pd.DataFrame, scores: np.ndarray | None = None, highlighted: np.ndarray | None = None) -> pd.DataFrame:
    """Per cluster: name, size, mean score and how many of its points are highlighted (selected)."""
    frame = aligned_map[["cluster", "cluster_name"]].copy()
    frame["score"] = scores[aligned_map["position"].to_numpy()] if scores is not None else np.nan
    frame["selected"] = highlighted if highlighted is not None else False
    table = frame.groupby("cluster", sort=True).agg(
        name=("cluster_name", "first"), size=("cluster_name", "size"), mean_score=("score", "mean"), selected=("selected", "sum")
    )
    return table.reset_index().sort_values("size", ascending=False, ignore_index=True)


@dataclass(frozen=True)
class CarRanks:
    """Each point's rank by score overall and within its cluster, as :func:`select_car` ranks them.

    Ranking is the slow part of CaR; once it is done, any (n1, n2) is a comparison, so the Map page's
    sliders highlight the selection live with :func:`curation.select.car_keep`, select_car's own rule.
    """

    rank: np.ndarray
    cluster_rank: np.ndarray
    rated: np.ndarray

    def keep(self, n1: int, n2: int) -> np.ndarray:
        return car_keep(self.rank, self.cluster_rank, self.rated, n1, n2)


def car_ranks(aligned_map: pd.DataFrame, scores: np.ndarray) -> CarRanks:
    """Ranks for the points of ``aligned_map`` (scores indexed by the map's ``position`` column)."""
    from curation.select import select_car

    pool = pd.DataFrame({"id": aligned_map["id"].to_numpy(object), "score": scores[aligned_map["position"].to_numpy()],
                         "cluster": aligned_map["cluster"].to_numpy(np.int64),
                         "cluster_name": aligned_map["cluster_name"].to_numpy(object)})
    ranked = select_car(pool, 0, 0)
    return CarRanks(ranked["rank"].to_numpy(np.int64), ranked["cluster_rank"].to_numpy(np.int64),
                    ~np.isnan(pool["score"].to_numpy(np.float64)))


# ----------------------------------------------------------------------------------------------------
# Figures (plotly, imported lazily so the library stays light)

KEPT_COLOUR = "#2e7d32"
DROPPED_COLOUR = "#c62828"
HIGHLIGHT_COLOUR = "#ff9800"


def histogram_figure(summary: TauSummary, title: str = "") -> Any:
    """Stacked kept/dropped bars with a dashed line at τ (built from dicts: ~10x faster than add_vline)."""
    import plotly.graph_objects as go

    centres = (summary.edges[:-1] + summary.edges[1:]) / 2
    width = float(summary.edges[1] - summary.edges[0])
    bars = [
        {"type": "bar", "x": centres, "y": summary.hist_kept, "width": width, "name": "kept (score ≥ τ)",
         "marker": {"color": KEPT_COLOUR}},
        {"type": "bar", "x": centres, "y": summary.hist_dropped, "width": width, "name": "dropped (score < τ)",
         "marker": {"color": DROPPED_COLOUR}},
    ]
    layout = {
        "barmode": "stack", "title": {"text": title}, "height": 320, "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "xaxis": {"title": {"text": f"score ({summary.scale_label})"}}, "yaxis": {"title": {"text": "examples"}}, "legend": {"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
        "shapes": [{"type": "line", "x0": summary.tau, "x1": summary.tau, "y0": 0, "y1": 1, "yref": "paper",
                    "line": {"dash": "dash", "color": "#333"}}],
        "annotations": [{"x": summary.tau, "y": 1, "yref": "paper", "text": f"τ = {summary.tau:g}", "showarrow": False,
                         "xanchor": "left", "yanchor": "bottom"}],
    }
    return go.Figure({"data": bars, "layout": layout})


def map_figure(
    aligned_map: pd.DataFrame,
    colour: np.ndarray,
    colour_kind: str,
    highlighted: np.ndarray | None = None,
    legend: Mapping[str, str] | None = None,
    dragmode: str = "lasso",
    legend_title: str = "",
) -> Any:
    """A WebGL scatter: trace 0 holds every point (selection indices refer to it); highlights on top."""
    import plotly.graph_objects as go

    marker: dict[str, Any] = {"size": point_size(len(aligned_map)), "opacity": 0.8}
    if colour_kind == "continuous":
        marker.update(color=colour, colorscale="Viridis", showscale=True, colorbar={"title": "score"})
    else:
        marker.update(color=colour)
    # Hover names the point's cluster (colours repeat past a few dozen clusters; the name does not).
    traces = [go.Scattergl(x=aligned_map["x"].to_numpy(), y=aligned_map["y"].to_numpy(), mode="markers", marker=marker,
                           name="examples", showlegend=False, hovertext=aligned_map["cluster_name"].to_numpy(),
                           hovertemplate="%{hovertext}<extra></extra>")]
    if highlighted is not None and highlighted.any():
        traces.append(go.Scattergl(x=aligned_map["x"].to_numpy()[highlighted], y=aligned_map["y"].to_numpy()[highlighted],
                                   mode="markers", name="CaR selection", hoverinfo="skip",
                                   marker={"size": 6, "color": "rgba(0,0,0,0)", "line": {"width": 1.2, "color": HIGHLIGHT_COLOUR}}))
    for label, swatch in (legend or {}).items():
        traces.append(go.Scattergl(x=[None], y=[None], mode="markers", name=label, marker={"color": swatch, "size": 8}))
    figure = go.Figure(traces)
    figure.update_layout(dragmode=dragmode, height=620, margin={"l": 0, "r": 0, "t": 10, "b": 0},
                         xaxis={"visible": False}, yaxis={"visible": False}, uirevision="map",
                         legend={"title": {"text": legend_title}, "itemsizing": "constant"})
    return figure


def point_size(n: int) -> float:
    """Marker size that stays visible: about 10 px for a few dozen points, 3 px at 50,000."""
    return float(np.clip(14 - 2.5 * np.log10(max(n, 1)), 3, 10))


def categorical_colours(labels: np.ndarray, palette: Mapping[str, str] | None = None,
                        max_legend: int = 12) -> tuple[np.ndarray, dict[str, str]]:
    """A colour per point for categorical values, and the legend (label -> colour) up to ``max_legend`` labels."""
    from plotly.colors import qualitative

    cycle = qualitative.Dark24 + qualitative.Light24
    codes, uniques = pd.factorize(pd.Series(labels).fillna(NO_CATEGORY).astype(str), sort=True)
    chosen = [(palette or {}).get(u, cycle[i % len(cycle)]) for i, u in enumerate(uniques)]
    colours = np.asarray(chosen, dtype=object)[codes]
    legend = dict(zip(uniques[:max_legend], chosen[:max_legend])) if len(uniques) <= max_legend else {}
    return colours, legend


def rows_digest(dataset_id: int, ids: Any) -> str:
    """A short digest of which examples a table shows, in order (keys a table's row selection to its rows)."""
    import hashlib

    joined = f"{dataset_id}:" + "\n".join(map(str, ids))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:12]
