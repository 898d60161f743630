"""Data: the datasets in the workspace, importing a file with its validation report, one dataset's make-up."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import streamlit as st

from curation.dataset_io import NothingToLoad, import_dataset, read_source, save_upload
from curation.formats import READ_FORMATS, ReadResult, Rejection, UnreadableFile, parse_mapping
from curation.store import AlreadyExists, InvalidName
from curation.studio_auth import Forbidden
from pages import _studio as studio

UPLOAD_TYPES = ["json", "jsonl", "csv", "parquet"]
SHOWN_REJECTIONS = 200

studio.page("Data")
store = studio.store()
settings = studio.settings()


def dataset_table() -> None:
    st.caption("The datasets in this workspace. Pick one below to see what it holds; rate it on **Rate**, browse and "
               "threshold it on **Explore**, see it as a map on **Map**, export a selection on **Export**.")
    datasets = store.datasets.all()
    if not datasets:
        st.info("The workspace holds no dataset yet. Import a file below to start.")
        return
    rows = [
        {
            "dataset": d.name,
            "examples": d.n_examples,
            "rejected rows": d.n_rejected,
            "format": d.format,
            "description": d.meta.get("description", d.source_path),
            "by": d.created_by,
            "created": d.created_at.strftime("%Y-%m-%d %H:%M"),
        }
        for d in datasets
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="datasets_table")


def rejections_csv(rejections: list[Rejection]) -> bytes:
    frame = pd.DataFrame([r.as_dict() for r in rejections], columns=["location", "reason", "raw"])
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")


def show_rejections(rejections: list[Rejection], key: str, file_stem: str) -> None:
    if not rejections:
        st.success("Every row is loadable.")
        return
    frame = pd.DataFrame([r.as_dict() for r in rejections[:SHOWN_REJECTIONS]])
    st.dataframe(frame, hide_index=True, key=f"{key}_table")
    if len(rejections) > SHOWN_REJECTIONS:
        st.caption(f"Showing {SHOWN_REJECTIONS} of {len(rejections):,} rejected rows; the download has them all.")
    st.download_button(
        f"Download the {len(rejections):,} rejected rows (CSV)", rejections_csv(rejections),
        file_name=f"{file_stem}-rejected.csv", mime="text/csv", key=f"{key}_download",
    )


def validate(path: Path, fmt: str | None, mapping_text: str) -> ReadResult | None:
    try:
        mapping = parse_mapping(mapping_text)
        with st.spinner(f"Reading and validating {path.name}…"):
            return read_source(settings, studio.person(), path, fmt, mapping)
    except Forbidden as err:
        st.warning(studio.escaped(str(err)))
    except (UnreadableFile, ValueError, OSError) as err:
        st.error(studio.escaped(str(err)))
    return None


def import_section() -> None:
    st.subheader("Import a file")
    reason = studio.may("import", "upload and import a file")
    if reason:
        st.caption(reason)
    upload = st.file_uploader("Upload a file", type=UPLOAD_TYPES, key="import_upload", disabled=reason is not None)
    server_path = ""
    if studio.may("read_server_path", "read a server path") is None:  # a lead's action; checked again in read_source
        server_path = st.text_input("…or a path on the studio's machine (a file or a `datasets` folder)", key="import_path")
    columns = st.columns(3)
    default_name = Path(upload.name).stem if upload else (Path(server_path).stem if server_path else "")
    name = columns[0].text_input("Dataset name (letters, digits, '.', '-', '_')", value=default_name, key="import_name")
    fmt = columns[1].selectbox("Format", ["detect from the name", *READ_FORMATS], key="import_format")
    mapping_text = columns[2].text_input("Column mapping (optional)", placeholder="prompt=instruction,completion=output",
                                         key="import_mapping")
    replace = st.checkbox("Replace a dataset of the same name", key="import_replace")
    validate_only, do_import = st.columns(2)
    wants_check = validate_only.button("Validate only", disabled=reason is not None, key="import_validate")
    wants_import = do_import.button("Validate and import", type="primary", disabled=reason is not None, key="import_go")
    if not (wants_check or wants_import):
        return
    if upload is None and not server_path.strip():
        st.warning("Choose a file to upload or type a path first.")
        return
    try:
        path = (save_upload(settings, studio.person(), upload.name, upload.getvalue()) if upload is not None
                else Path(server_path.strip()).expanduser())
    except Forbidden as err:
        st.warning(studio.escaped(str(err)))
        return
    result = validate(path, None if fmt.startswith("detect") else fmt, mapping_text)
    if result is None:
        return
    st.session_state["import_report"] = {"summary": result.summary(), "rejections": result.rejections, "stem": path.stem,
                                         "about": report_about(upload, server_path)}
    if wants_import:
        import_result(result, name.strip() or path.stem, replace)


def report_about(upload, server_path: str) -> tuple:
    """What a validation report is about: the file (upload id or path) and who asked; it shows only while both hold."""
    someone = studio.person()
    source = ("upload", upload.file_id) if upload is not None else ("path", server_path.strip())
    return source, someone.name if someone else None


def import_result(result: ReadResult, name: str, replace: bool) -> None:
    try:
        with st.spinner(f"Storing {len(result.records):,} examples…"):
            info = import_dataset(store, studio.person(), result, name, replace)
    except Forbidden as err:
        st.warning(studio.escaped(str(err)))
        return
    except (AlreadyExists, InvalidName, NothingToLoad) as err:
        st.error(studio.escaped(str(err)))
        return
    studio.choose_dataset(info.name)
    st.session_state["import_report"]["imported"] = f"Imported '{info.name}': {info.n_examples:,} examples, {info.n_rejected:,} rejected rows."
    st.rerun()  # the datasets table above was drawn before the import: draw it again with the new dataset


def import_report() -> None:
    report = st.session_state.get("import_report")
    if not report:
        return
    if report.get("about") != report_about(st.session_state.get("import_upload"), st.session_state.get("import_path", "")):
        st.session_state.pop("import_report")  # another file, or another person (or signed out): not their report
        return
    with st.container(border=True):
        st.markdown("**Validation report**")
        if report.get("imported"):
            st.text(report["imported"])
        st.text(report["summary"])
        show_rejections(report["rejections"], "import_report", report["stem"])


# A dataset never changes after import (re-importing makes a new one), so its make-up is cached by id.
@st.cache_data(show_spinner=False, max_entries=32)
def make_up(url: str, dataset_id: int, created_at) -> tuple[dict, dict]:
    return store.datasets.sources(dataset_id), store.datasets.categories(dataset_id)


def dataset_details() -> None:
    st.subheader("A dataset")
    info = studio.pick_dataset("data")
    if info is None:
        return
    metrics = st.columns(4)
    metrics[0].metric("Examples", f"{info.n_examples:,}")
    metrics[1].metric("Rejected rows", f"{info.n_rejected:,}")
    metrics[2].metric("Format", info.format or "—")
    metrics[3].metric("Imported by", info.created_by or "—")
    if info.meta.get("description"):
        st.text(info.meta["description"])
    source_counts, category_counts = make_up(store.url, info.id, info.created_at)
    sources, categories = st.columns(2)
    with sources:
        st.markdown("**Sources**")
        st.dataframe(pd.DataFrame(source_counts.items(), columns=["source", "examples"]), hide_index=True,
                     key="sources_table")
    with categories:
        st.markdown("**Categories**")
        counts = pd.DataFrame(category_counts.items(), columns=["category", "examples"])
        if len(counts):
            st.bar_chart(counts.head(30).astype({"category": str, "examples": int}), x="category", y="examples",
                         horizontal=True, height=300)
        else:
            st.caption("This dataset has no examples.")
    with st.expander("First examples"):
        frame = studio.examples(store.url, info.id, info.created_at)
        st.dataframe(frame.head(20), hide_index=True, key="examples_preview")
    if info.n_rejected:
        with st.expander(f"Rejected rows ({info.n_rejected:,})"):
            show_rejections(store.datasets.rejections(info.id), "stored_rejections", info.name)


def testset_table() -> None:
    """The bundled (and imported) test sets: what Answers and Compare generate and judge on."""
    testsets = store.testsets.all()
    with st.expander(f"Test sets ({len(testsets)})", expanded=False):
        if not testsets:
            st.caption("No test set yet: the demo workspace brings the eight public ones (python -m curation demo).")
            return
        st.caption("The public test sets the papers evaluate on; the Answers and Compare pages use them.")
        st.dataframe(pd.DataFrame([{"test set": t.name, "items": t.n_items, "category field": t.category_field or "—",
                                    "source": t.source_path or "—"} for t in testsets]),
                     hide_index=True, key="testsets_table")


dataset_table()
testset_table()
import_section()
import_report()
dataset_details()
