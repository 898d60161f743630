"""Map: every example on the 2-D map (WebGL), coloured by score, cluster, verdict or flag; box/lasso lists the
selected examples; CaR's n1/n2 sliders size and highlight its selection live; the clusters with their names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from curation import explore, overrides, select
from curation.cluster import describe_seconds, estimate_map_seconds
from curation.formats import EXTENSIONS, WRITE_FORMATS
from curation.select import SelectionError, save_selection, select_dataset
from curation.select.manifest import export_to_workspace
from curation.studio_auth import Forbidden
from pages import _choices as remembered
from pages import _explain
from pages import _studio as studio

COLOUR_BY = ("score", "cluster", "kept or not", "flag")
SELECTED_ROWS = 1000
MAX_LEGEND = 48  # the palette's distinct colours: more clusters than this are named on hover only

studio.page("Map")
store = studio.store()


def no_map(info) -> None:
    estimate = describe_seconds(estimate_map_seconds(info.n_examples))
    st.info(f"No map yet for '{info.name}'. Computing it embeds every example, clusters them (CaR's k-means) and "
            f"projects them to 2-D with UMAP — {estimate} for {info.n_examples:,} examples on a small machine. It "
            "runs in the background and is cached: later visits open at once.")
    if studio.running_job("map", info.name) is None and st.button("Compute the map", type="primary", key="map_compute"):
        studio.launch_job("map", {"dataset": info.name}, f"map {info.name}")
    studio.job_panel(("map",), heading="Map jobs", key="map_jobs")


def rater_scores(info, version) -> tuple[explore.Scores | None, str, tuple[str, str] | None]:
    choices = studio.rater_choices(info, version)
    if not choices:
        st.caption("No ratings yet: rate this dataset (Rate page) to colour by score and use CaR.")
        return None, "", None
    labels = {explore.rater_label(r, v): (r, v) for r, v, _ in choices}
    last = remembered.last_choice(info.name)
    wanted = explore.rater_label(last[1], last[2]) if last else None
    label = st.selectbox("Scores from", list(labels), key=f"map_rater_{info.id}",
                         index=list(labels).index(wanted) if wanted in labels else 0)
    rater, rater_version = labels[label]
    scores = studio.scores(store.url, info.id, info.created_at, version, rater, rater_version, studio.score_scale())
    return scores, label, (rater, rater_version)


def colours(aligned: pd.DataFrame, colour_by: str, values: np.ndarray | None, kept: np.ndarray | None,
            flag_names: pd.Series) -> tuple[np.ndarray, str, dict]:
    positions = aligned["position"].to_numpy()
    if colour_by == "score" and values is not None:
        return values[positions], "continuous", {}
    if colour_by == "kept or not" and kept is not None:
        labels = np.where(kept[positions], "kept", "dropped")
        return explore.categorical_colours(labels, {"kept": explore.KEPT_COLOUR, "dropped": explore.DROPPED_COLOUR})[0], \
            "categorical", {"kept": explore.KEPT_COLOUR, "dropped": explore.DROPPED_COLOUR}
    if colour_by == "flag":
        labels = flag_names.reindex(aligned["id"]).fillna("no flag").str.split(", ").str[0].to_numpy()
        swatches, legend = explore.categorical_colours(labels, {"no flag": "#cfd8dc"})
        return swatches, "categorical", legend
    swatches, legend = explore.categorical_colours(aligned["cluster_name"].to_numpy(), max_legend=MAX_LEGEND)
    return swatches, "categorical", legend


def threshold_verdict(info, scores: explore.Scores | None, rater: tuple[str, str] | None,
                      in_force: dict) -> tuple[np.ndarray | None, str]:
    """The τ verdict (with overrides) for this dataset + rater and the sentence naming the τ in force."""
    if scores is None or rater is None:
        return None, ""
    tau = remembered.tau_for(info.name, *rater, studio.score_scale())
    origin = "set on Explore" if tau is not None else "the median; not set on Explore in this session"
    tau = tau if tau is not None else select.default_tau(scores.values)
    kept = select.kept_at(scores.values, tau, scores.ids, in_force)
    return kept, f"Kept or not: τ = {tau:g} on {scores.scale_label} ({origin}) and the overrides in force."


def car_controls(info, key: tuple, rater: tuple[str, str] | None, aligned: pd.DataFrame,
                 values: np.ndarray | None) -> np.ndarray | None:
    """n1/n2 sliders (as last set for this dataset + rater); returns the CaR selection over the map's points."""
    if values is None or rater is None:
        return None
    ranks = cached_ranks(key, aligned, values)
    largest = int(aligned["cluster"].value_counts().max()) if len(aligned) else 1
    last = remembered.car_for(info.name, *rater) or {}
    n1_key, n2_key = f"car_n1_{info.id}_{key[-1]}", f"car_n2_{info.id}_{key[-1]}"
    # Widget state is forgotten off the page: set the sliders from what this dataset + rater had.
    if n1_key not in st.session_state:
        st.session_state[n1_key] = min(last.get("n1", min(1000, len(aligned) // 10)), len(aligned))
    if n2_key not in st.session_state:
        st.session_state[n2_key] = min(last.get("n2", 1), largest)
    left, right, size = st.columns([2, 2, 1])
    n1 = left.slider("n1: best overall", 0, len(aligned), key=n1_key)
    n2 = right.slider("n2: best of each cluster", 0, largest, key=n2_key)
    chosen = ranks.keep(n1, n2)
    size.metric("CaR selection", f"{int(chosen.sum()):,}", f"{chosen.mean():.1%} of the map", delta_color="off",
                delta_arrow="off")
    remembered.remember_car(info.name, *rater, n1, n2)
    st.session_state["studio_car"] = {"dataset": info.name, "rater_label": key[-1], "n1": n1, "n2": n2}
    return chosen


# Keyed by (url, dataset, created_at, map marker, ratings version, scale, rater label): the underscored arguments
# are what that key stands for, so Streamlit does not hash 52k-row frames on every rerun.
@st.cache_resource(show_spinner="Ranking for CaR…", max_entries=8)
def cached_ranks(key: tuple, _aligned: pd.DataFrame, _values: np.ndarray) -> explore.CarRanks:
    return explore.car_ranks(_aligned, _values)


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_alignment(key: tuple, _examples: pd.DataFrame, _map: pd.DataFrame) -> pd.DataFrame:
    return explore.align_map(_examples, _map)


def selection_list(info, aligned: pd.DataFrame, picked: list[int], values, kept) -> None:
    if not picked:
        st.caption("Drag a box or a lasso on the map (the toolbar switches between them) to list those examples.")
        return
    positions = aligned["position"].to_numpy()[picked]
    examples = studio.examples(store.url, info.id, info.created_at)
    rows = pd.DataFrame({
        "id": examples["id"].to_numpy()[positions],
        "instruction": examples["instruction"].str.slice(0, explore.PREVIEW_CHARS).to_numpy()[positions],
        "category": examples["category"].to_numpy()[positions],
        "cluster": aligned["cluster_name"].to_numpy()[picked],
    })
    if values is not None:
        rows["score"] = values[positions]
    if kept is not None:
        rows["kept"] = kept[positions]
    st.markdown(f"**{len(rows):,} examples selected on the map**")
    st.dataframe(rows.head(SELECTED_ROWS), hide_index=True, key="map_selected")
    target = st.selectbox("Open one in Explore", rows["id"].head(SELECTED_ROWS), key="map_open_pick")
    if st.button("Open in Explore", key="map_open"):
        open_in_explore(info, target)
    explanation_panel(info, target)
    act_on_selection(info, rows["id"].tolist())


def open_in_explore(info, record_id: str) -> None:
    st.session_state["explore_open_example"] = {**(st.session_state.get("explore_open_example") or {}), info.name: record_id}
    st.switch_page("pages/explore.py")


def explanation_panel(info, record_id: str) -> None:
    """IQS's why for the example picked above (pages/_explain.py); its better neighbour opens in Explore."""
    if record_id:
        _explain.iqs_panel(info, store.datasets.example(info.id, record_id), lambda better: open_in_explore(info, better),
                           key="map_explain")


def act_on_selection(info, ids: list[str]) -> None:
    """Keep or drop every selected example with one reason, export them, or save them as a named subset."""
    notice = st.session_state.pop("map_notice", None)
    if notice:
        st.success(studio.escaped(notice))
    override_tab, export_tab, save_tab = st.tabs([f"Keep or drop all {len(ids):,}", "Export them", "Save as a subset"])
    with override_tab:
        bulk_override(info, ids)
    with export_tab:
        export_subset(info, ids)
    with save_tab:
        save_subset(info, ids)


def bulk_override(info, ids: list[str]) -> None:
    refusal = studio.may("override", "override the selection")
    if refusal:
        st.caption(refusal)
    with st.form("map_override", clear_on_submit=True):
        decision = st.radio("Decision for every selected example", ["keep", "drop"], horizontal=True,
                            key="map_override_decision")
        reason = st.text_input("Reason (one for all; each example gets its own audit entry)", key="map_override_reason")
        submitted = st.form_submit_button(f"Record for all {len(ids):,}", disabled=refusal is not None)
    if not submitted:
        return
    try:
        entries = overrides.record_overrides(store, studio.person(), info.id, ids, decision, reason)
    except (Forbidden, ValueError) as err:
        st.warning(studio.escaped(str(err)))
        return
    st.session_state["map_notice"] = f"Recorded '{decision}' for {len(entries):,} examples by {entries[0].user}."
    st.rerun()


def subset_run(info, ids: list[str], label: str):
    return select_dataset(store, studio.settings(), info.id, "ids", {"ids": ids, "label": label})


def export_subset(info, ids: list[str]) -> None:
    refusal = studio.may("export", "export the selection")
    if refusal:
        st.caption(refusal)
    fmt = st.selectbox("Format", WRITE_FORMATS, index=WRITE_FORMATS.index("jsonl"), key="map_export_format")
    if st.button(f"Write the {len(ids):,} examples", key="map_export", disabled=refusal is not None):
        now = datetime.now(UTC)
        run = subset_run(info, ids, "the map selection")
        name = f"{info.name}-map-{now.strftime('%Y%m%d-%H%M%S-%f')}{EXTENSIONS[fmt]}"
        try:
            exported = export_to_workspace(studio.settings().workspace, studio.person(), run.records, run.selection,
                                           name, {**run.manifest, "created_at": now.isoformat(timespec="seconds")}, fmt)
        except (Forbidden, SelectionError) as err:
            st.warning(studio.escaped(str(err)))
            return
        st.session_state["map_exported"] = (str(exported.path), exported.rows)
    written = st.session_state.get("map_exported")
    if written and Path(written[0]).exists():
        path = Path(written[0])
        st.text(f"Wrote {written[1]:,} rows to {path} (its manifest beside it).")
        st.download_button(f"Download {path.name}", path.read_bytes(), file_name=path.name, key="map_export_download")


def save_subset(info, ids: list[str]) -> None:
    refusal = studio.may("export", "save a named subset")
    if refusal:
        st.caption(refusal)
    name = st.text_input("Subset name", key="map_subset_name")
    if st.button("Save the subset", key="map_subset_save", disabled=refusal is not None):
        try:
            saved = save_selection(store, studio.person(), info.id, name,
                                   subset_run(info, ids, f"the subset '{name.strip()}'").manifest)
        except (Forbidden, SelectionError) as err:
            st.warning(studio.escaped(str(err)))
            return
        st.session_state["map_notice"] = (f"Saved '{saved.name}' ({saved.n_kept:,} examples) with the manifest that "
                                          "rebuilds it exactly.")
        st.rerun()


def main() -> None:
    info = studio.pick_dataset("map")
    if info is None:
        return
    marker = studio.map_marker(info)
    the_map = studio.dataset_map(info, marker)
    if the_map is None:
        no_map(info)
        return
    key = (store.url, info.id, str(info.created_at), marker)
    aligned = cached_alignment(key, studio.examples(store.url, info.id, info.created_at), the_map)
    version = studio.ratings_version()
    scores, label, rater = rater_scores(info, version)
    values = scores.values if scores is not None else None
    in_force = store.overrides.in_force(info.id)
    car = car_controls(info, key + (version, studio.score_scale(), label), rater, aligned, values)
    colour_by = st.radio("Colour by", COLOUR_BY, horizontal=True, key="map_colour",
                         index=0 if values is not None else 1)
    kept, tau_text = threshold_verdict(info, scores, rater, in_force)
    flag_names = explore.flag_summary(studio.flags(store.url, info.id, studio.flags_version(info.id)))
    colour, kind, legend = colours(aligned, colour_by, values, kept, flag_names)
    highlight = car if car is not None and st.toggle("Outline the CaR selection", value=True, key="map_highlight") else None
    figure = explore.map_figure(aligned, colour, kind, highlight, legend, legend_title=colour_by)
    event = st.plotly_chart(figure, key="map_chart", on_select="rerun", selection_mode=("box", "lasso"),
                            config={"displaylogo": False, "scrollZoom": True})
    st.caption(f"{len(aligned):,} of {info.n_examples:,} examples on the map. {tau_text}")
    selection_list(info, aligned, explore.selected_points(event), values, kept)
    st.subheader("Clusters")
    st.dataframe(explore.cluster_table(aligned, values, car), hide_index=True, key="map_clusters",
                 column_config={"selected": st.column_config.NumberColumn("in CaR selection"),
                                "mean_score": st.column_config.NumberColumn("mean score", format="%.3f")})


main()
