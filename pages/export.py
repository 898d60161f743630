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
from curation.formats import EXTENSIONS, WRITE_FORMATS, write_dataset_info
from curation.select import SCALE_LABELS, SCALES, SelectionError, balance_of, select_dataset
from curation.select.manifest import export_to_workspace
from curation.studio_auth import Forbidden
from pages import _choices as remembered
from pages import _studio as studio

METHODS = {"threshold": "Threshold τ on a rater's score (Explore)", "car": "CaR: best n1 overall + best n2 per cluster (Map)",
           "random": "A random sample (the papers' baseline)"}

studio.page("Export")
store = studio.store()
settings = studio.settings()


def method_and_params(info, version) -> tuple[str, dict, tuple[str, str] | None]:
    """The method and its parameters: the τ or n1/n2 set for this dataset + rater (on Explore, Map or here)."""
    last = remembered.last_choice(info.name)  # (method, rater, version) last set on this dataset
    method = st.radio("Selection", list(METHODS), format_func=METHODS.get, key="export_method",
                      index=list(METHODS).index(last[0] if last else "threshold"))
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
    wanted = explore.rater_label(last[1], last[2]) if last else None
    label = st.selectbox("Scores from", list(labels), index=list(labels).index(wanted) if wanted in labels else 0,
                         key="export_rater")
    rater = labels[label]
    if method == "threshold":
        return method, {"tau": tau_input(info, rater, label)}, rater
    return method, car_inputs(info, rater, label), rater


def tau_input(info, rater: tuple[str, str], label: str) -> float:
    """τ for this dataset + rater, as Explore left it (0.0 if never set); a change here is remembered too."""
    field = SCALES[studio.score_scale()]
    tau = remembered.tau_for(info.name, *rater, studio.score_scale())
    context = (info.name, *rater, field)
    offered = float(tau if tau is not None else 0.0)
    if st.session_state.get("export_tau_for") != context or "export_tau" not in st.session_state:
        st.session_state["export_tau"] = offered  # another dataset or rater (or back on the page): its own τ
        st.session_state["export_tau_for"] = context
    value = st.number_input(f"τ on {SCALE_LABELS[field]} (a rater without a 0–5 score uses its own)",
                            key="export_tau", format="%.4f")
    origin = "set on Explore or here" if tau is not None else "not set on Explore in this session"
    st.caption(f"τ in force for {info.name} with {label}: {value:g} ({origin}).")
    if tau is not None or value != offered:  # changed here: Explore and Map follow
        remembered.remember_tau(info.name, *rater, studio.score_scale(), value)
    return float(value)


def car_inputs(info, rater: tuple[str, str], label: str) -> dict[str, int]:
    """n1/n2 for this dataset + rater, as Map left them; a change here is remembered too."""
    last = remembered.car_for(info.name, *rater)
    context = (info.name, *rater)
    if st.session_state.get("export_car_for") != context or "export_n1" not in st.session_state:
        st.session_state["export_n1"] = int((last or {}).get("n1", min(1000, info.n_examples)))
        st.session_state["export_n2"] = int((last or {}).get("n2", 1))
        st.session_state["export_car_for"] = context
    left, right = st.columns(2)
    n1 = left.number_input("n1", 0, info.n_examples, key="export_n1")
    n2 = right.number_input("n2", 0, info.n_examples, key="export_n2")
    origin = "set on Map or here" if last is not None else "not set on Map in this session"
    st.caption(f"n1/n2 in force for {info.name} with {label}: {n1:,} / {n2:,} ({origin}).")
    if last is not None or (n1, n2) != (min(1000, info.n_examples), 1):
        remembered.remember_car(info.name, *rater, n1, n2)
    return {"n1": int(n1), "n2": int(n2)}


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
    llama_factory = right.checkbox("Add its entry to the exports folder's dataset_info.json (LLaMA-Factory)",
                                   key="export_dataset_info", help="LLaMA-Factory loads the file by this entry's name, "
                                   "the file's name without its extension")
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
        extra = []
        if llama_factory:
            try:
                extra.append(str(write_dataset_info(exported.path.parent, exported.path.stem, exported.path.name, fmt)))
            except ValueError as err:  # a format LLaMA-Factory cannot load
                st.warning(studio.escaped(str(err)))
        st.session_state["export_written"] = {"path": str(exported.path), "manifest": str(exported.manifest_path),
                                              "rows": exported.rows, "extra": extra}
    written = st.session_state.get("export_written")
    if written and Path(written["path"]).exists():
        path, manifest_path = Path(written["path"]), Path(written["manifest"])
        st.success(studio.escaped(f"Wrote {written['rows']:,} rows to {path} and its manifest beside it."))
        extra = [Path(p) for p in written.get("extra", []) if Path(p).exists()]
        if extra:
            st.text(f"LLaMA-Factory: dataset '{path.stem}' is in {extra[0]}.")
        st.download_button(f"Download {path.stem}.zip (data + manifest)", zipped(path, manifest_path, *extra),
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
