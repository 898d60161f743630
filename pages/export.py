"""Export: the current selection (τ from Explore, n1/n2 from Map, or a random sample) with the overrides in
force, its balance per category, and a download of the kept rows with the manifest that rebuilds them."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import streamlit as st

from curation import explore
from curation.formats import EXTENSIONS, WRITE_FORMATS
from curation.select import SCALE_LABELS, SCALES, SelectionError, balance_of, select_dataset
from curation.select.manifest import export_to_workspace
from curation.studio_auth import Forbidden
from pages import _studio as studio

METHODS = {"threshold": "Threshold τ on a rater's score (Explore)", "car": "CaR: best n1 overall + best n2 per cluster (Map)",
           "random": "A random sample (the papers' baseline)"}

studio.page("Export")
store = studio.store()
settings = studio.settings()


def method_and_params(info, version) -> tuple[str, dict, tuple[str, str] | None]:
    """The method and its parameters, prefilled from what Explore and Map last showed for this dataset."""
    threshold = st.session_state.get("studio_selection") or {}
    car = st.session_state.get("studio_car") or {}
    # The selection last shown on Explore (τ) or Map (n1/n2) for this dataset is the one offered.
    last_dataset, last_method = st.session_state.get("studio_last_method", ("", "threshold"))
    remembered = last_method if last_dataset == info.name else "threshold"
    method = st.radio("Selection", list(METHODS), format_func=METHODS.get, key="export_method",
                      index=list(METHODS).index(remembered))
    if method == "random":
        left, right = st.columns(2)
        size = left.number_input("Sample size", 0, info.n_examples, min(1000, info.n_examples), key="export_size")
        return method, {"size": int(size), "seed": int(right.number_input("Seed", 0, 2**31 - 1, 0, key="export_seed"))}, None
    choices = studio.rater_choices(info, version)
    if not choices:
        st.info("This selection needs scores and the dataset has none yet: rate it on the Rate page, or pick a random "
                "sample.")
        return method, {}, None
    labels = {explore.rater_label(r, v): (r, v) for r, v, _ in choices}
    if method == "threshold" and threshold.get("dataset") == info.name:
        wanted = explore.rater_label(threshold.get("rater", ""), threshold.get("rater_version", ""))
    else:
        wanted = car.get("rater_label") if car.get("dataset") == info.name else None
    default = list(labels).index(wanted) if wanted in labels else 0
    label = st.selectbox("Scores from", list(labels), index=default, key="export_rater")
    if method == "threshold":
        tau = threshold.get("tau", 0.0) if threshold.get("dataset") == info.name else 0.0
        scale = SCALE_LABELS[SCALES[studio.score_scale()]]
        tau = st.number_input(f"τ on {scale} (a rater without a 0–5 score uses its own)", value=float(tau),
                              key="export_tau", format="%.4f")
        return method, {"tau": float(tau)}, labels[label]
    left, right = st.columns(2)
    n1 = left.number_input("n1", 0, info.n_examples, int(car.get("n1", min(1000, info.n_examples))), key="export_n1")
    n2 = right.number_input("n2", 0, info.n_examples, int(car.get("n2", 1)), key="export_n2")
    return method, {"n1": int(n1), "n2": int(n2)}, labels[label]


# Keyed by (url, dataset, created_at, ratings version, overrides marker, map marker) + the choices.
@st.cache_resource(show_spinner="Selecting…", max_entries=8)
def selection_run(key: tuple, method: str, params_json: str, rater: tuple[str, str] | None, scale: str, _info):
    rater_name, rater_version = rater if rater is not None else (None, None)
    return select_dataset(store, settings, _info.id, method, json.loads(params_json), rater=rater_name,
                          rater_version=rater_version, scale=scale)


def car_ready(info) -> bool:
    if studio.dataset_map(info, studio.map_marker(info)) is not None:
        return True
    st.info("CaR needs the clusters, which the map computes once: open the **Map** page and compute it, then come "
            "back. (The studio does not embed in the page, so it stays responsive.)")
    return False


def summary(run, info) -> None:
    selection = run.selection
    kept = int(selection["keep"].sum())
    cols = st.columns(3)
    cols[0].metric("Kept", f"{kept:,}", f"{kept / max(len(selection), 1):.1%} of {len(selection):,}", delta_color="off",
                   delta_arrow="off")
    # decided_by is empty (pandas 3 strings turn None into "") where no person decided.
    cols[1].metric("Overrides applied", f"{int((selection['decided_by'].fillna('') != '').sum()):,}")
    cols[2].metric("Dataset hash", run.manifest["dataset"]["hash"][:12])
    balance = balance_of(selection, run.records)
    with st.expander("Balance: kept share per category and skill", expanded=True):
        st.dataframe(balance, hide_index=True, key="export_balance")
    with st.expander("Every example's verdict and reason"):
        st.dataframe(selection.head(2000), hide_index=True, key="export_reasons")


def write_and_offer(run, info, method: str) -> None:
    left, right = st.columns(2)
    fmt = left.selectbox("Format", WRITE_FORMATS, index=WRITE_FORMATS.index("jsonl"), key="export_format")
    include_dropped = right.checkbox("Include dropped rows (with keep = false and the reason)", key="export_dropped")
    # Writing an export puts a file in the workspace: it needs an account (checked in export_to_workspace).
    reason = studio.may("export", "write an export")
    if reason:
        st.caption(reason)
    if st.button("Write the export", type="primary", key="export_write", disabled=reason is not None):
        now = datetime.now(UTC)
        # The selection is cached across reruns; the manifest's time is the export's, not the selection's.
        manifest = {**run.manifest, "created_at": now.isoformat(timespec="seconds")}
        try:
            with st.spinner("Writing…"):
                exported = export_to_workspace(settings.workspace, studio.person(), run.records,
                                               run.selection, fresh_name(info.name, method, now, EXTENSIONS[fmt]),
                                               manifest, fmt, include_dropped)
        except (Forbidden, SelectionError) as err:
            st.warning(studio.escaped(str(err)))
            return
        st.session_state["export_written"] = {"path": str(exported.path), "manifest": str(exported.manifest_path),
                                              "rows": exported.rows}
    written = st.session_state.get("export_written")
    if written and Path(written["path"]).exists():
        path, manifest_path = Path(written["path"]), Path(written["manifest"])
        st.success(studio.escaped(f"Wrote {written['rows']:,} rows to {path} and its manifest beside it."))
        st.download_button(f"Download {path.stem}.zip (data + manifest)", zipped(path, manifest_path),
                           file_name=f"{path.stem}.zip", mime="application/zip", key="export_download")
        with st.expander("Manifest"):
            st.json(json.loads(manifest_path.read_text()))


def fresh_name(dataset: str, method: str, now: datetime, extension: str) -> str:
    """``<dataset>-<method>-<time><ext>``, never an earlier export's name (two exports in one second both stay)."""
    stem = f"{dataset}-{method}-{now.strftime('%Y%m%d-%H%M%S')}"
    folder = settings.workspace / "exports"
    name, n = f"{stem}{extension}", 1
    while (folder / name).exists():
        n += 1
        name = f"{stem}-{n}{extension}"
    return name


def zipped(*paths: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.write(path, arcname=path.name)
    return buffer.getvalue()


def main() -> None:
    info = studio.pick_dataset("export")
    if info is None:
        return
    version = studio.ratings_version()
    method, params, rater = method_and_params(info, version)
    if (method != "random" and rater is None) or (method == "car" and not car_ready(info)):
        return
    in_force = store.overrides.in_force(info.id)
    marker = (len(in_force), max((d.entry for d in in_force.values()), default=0))
    key = (store.url, info.id, str(info.created_at), version, marker, studio.map_marker(info))
    try:
        run = selection_run(key, method, json.dumps(params, sort_keys=True), rater, studio.score_scale(), info)
    except SelectionError as err:
        st.error(studio.escaped(str(err)))
        return
    summary(run, info)
    write_and_offer(run, info, method)


main()
