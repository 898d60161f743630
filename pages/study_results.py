"""Studies: the lead creates a human study and watches its results come in (live), beside the LLM judges."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from curation import studies
from curation.studies.inputs import answers_in_store, store_models, workspace_models
from pages import _studio as studio

studio.page("Studies")
store = studio.store()
settings = studio.settings()
someone = studio.person()


def uploaded_answers(label: str, key: str) -> studies.Answers | None:
    upload = st.file_uploader(label, type=["jsonl"], key=f"{key}_file")
    name = st.text_input("Model name", key=f"{key}_name", placeholder="default: the file name")
    if upload is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / upload.name
        path.write_bytes(upload.getvalue())
        try:
            return studies.read_answers(path, name.strip() or Path(upload.name).stem)
        except studies.StudyError as err:
            st.error(str(err))
            return None


def chosen_pair(source: str) -> tuple[studies.Answers | None, studies.Answers | None]:
    """Two models' answers from the Answers store or the workspace's files, on test sets both answered."""
    models = store_models(store) if source == "store" else workspace_models(settings.workspace)
    left, right = st.columns(2)
    model = left.selectbox("Model under study", list(models), key=f"study_{source}_model")
    others = [m for m in models if m != model]
    baseline = right.selectbox("Compared with", others, key=f"study_{source}_baseline")
    if baseline is None:
        st.info("Only one model has answers in the workspace; generate or upload a second one.")
        return None, None
    shared = sorted(set(models[model]) & set(models[baseline]))
    chosen = st.multiselect("Test sets both answered", shared, default=shared, key=f"study_{source}_testsets")
    if not chosen:
        return None, None
    try:
        if source == "store":
            return answers_in_store(store, model, chosen), answers_in_store(store, baseline, chosen)
        return (studies.answers_in_workspace(settings.workspace, model, chosen),
                studies.answers_in_workspace(settings.workspace, baseline, chosen))
    except studies.StudyError as err:
        st.error(str(err))
        return None, None


def uploaded_pair() -> tuple[studies.Answers | None, studies.Answers | None]:
    left, right = st.columns(2)
    with left:
        model = uploaded_answers("Answers of the model under study (JSONL: id, instruction, input, output, category)",
                                 "study_model")
    with right:
        baseline = uploaded_answers("Answers of the model it is compared with", "study_baseline")
    return model, baseline


def new_study_form() -> None:
    sources = {"store": "Answers (generated or imported)", "workspace": "Answer files in the workspace",
               "upload": "Upload two answer files"}
    available = [s for s in sources if s == "upload" or (store_models(store) if s == "store"
                                                          else workspace_models(settings.workspace))]
    source = st.radio("Answers from", available, format_func=sources.get, horizontal=True, key="study_source")
    model, baseline = uploaded_pair() if source == "upload" else chosen_pair(source)
    if model is None or baseline is None:
        st.caption("W/T/L are counted from the studied model's side; voters never see the model names.")
        return
    testsets = sorted({a.testset for a in model.by_id.values() if a.testset}) if source == "upload" else []
    with st.form("new_study"):
        name = st.text_input("Study name", key="study_name")
        chosen = st.multiselect("Test sets (none = all)", testsets, key="study_testsets") if testsets else []
        sample = st.number_input("Sample this many items (0 = all)", 0, len(model.by_id), 0, key="study_sample")
        votes = st.number_input("Votes per item", 1, 15, 3, key="study_votes")
        eligible = [a.name for a in store.users.all() if a.role in ("lead", "annotator", "voter")]
        voters = st.multiselect("Who may vote (none = every account)", eligible, key="study_voters")
        repeat = st.slider("Hidden repeats (share of a voter's questions, for self-consistency)", 0.0, 0.5, 0.1,
                           key="study_repeat")
        lease = st.number_input("Minutes a voter holds a question before it returns to the queue", 1, 240, 10,
                                key="study_lease")
        if not st.form_submit_button("Create the study"):
            return
    try:
        info, pairing = studies.create_study(
            store, someone, name, model, baseline, testsets=chosen or None, sample=int(sample) or None,
            votes_per_item=int(votes), voters=voters or None, repeat_share=float(repeat), lease_s=float(lease) * 60)
    except (studies.StudyError, studies.Forbidden) as err:
        st.error(str(err))
        return
    st.success(f"Created '{info.name}': {info.n_items} items × {info.votes_per_item} votes.")
    if pairing.only_model or pairing.only_baseline:
        st.info(f"Left out {len(pairing.only_model)} items only {info.model} answered and "
                f"{len(pairing.only_baseline)} only {info.baseline} answered.")


def judgments_upload() -> dict[str, dict[str, str]]:
    files = st.file_uploader("LLM judge verdicts on the same items (JSONL: id, verdict win/tie/lose from the "
                             "studied model's side, judge)", type=["jsonl"], accept_multiple_files=True,
                             key="study_judgments")
    judges: dict[str, dict[str, str]] = {}
    for upload in files or []:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / upload.name
            path.write_bytes(upload.getvalue())
            try:
                judges.update(studies.read_judgments(path))
            except studies.StudyError as err:
                st.error(str(err))
    return judges


@st.cache_data(show_spinner=False, max_entries=32)
def cached_results(url: str, study_id: int, version: tuple[int, int], judges: dict) -> studies.StudyResults:
    return studies.results(studio._store_for(url), studio._store_for(url).studies.get(study_id), judges)


def results_view(picked_id: int, judges: dict[str, dict[str, str]]) -> None:
    @st.fragment(run_every=settings.studio.refresh_s)
    def live() -> None:
        study = store.studies.get(picked_id)
        st.caption(f"{study.model} (studied) vs {study.baseline}; {study.n_items} items × {study.votes_per_item} "
                   f"votes; voters: {', '.join(study.voters) or 'every account'}; hidden repeats "
                   f"{study.repeat_share:.0%}; {'frozen (voting started)' if study.started else 'not started'}.")
        found = cached_results(store.url, study.id, store.studies.version(study.id), judges)
        target = max(study.target_votes, 1)
        st.progress(min(found.counted_votes / target, 1.0),
                    text=f"{found.counted_votes} of {study.target_votes} votes; "
                         f"{found.complete_items} of {study.n_items} items complete")
        scores = found.overall.set_index("score")
        columns = st.columns(7)
        for column, (label, value) in zip(columns, (("Votes", found.counted_votes), ("W", found.wtl.win),
                                                    ("T", found.wtl.tie), ("L", found.wtl.lose)), strict=False):
            column.metric(label, value)
        for column, score in zip(columns[4:], ("WS", "WR", "QS"), strict=True):
            column.metric(score, _number(scores.at[score, "value"]),
                          help=f"95% bootstrap interval {_number(scores.at[score, 'low'])}–{_number(scores.at[score, 'high'])}")
        st.caption(f"W/T/L from {study.model}'s side against {study.baseline}; per item the majority of the votes, "
                   "a tie between votes counts as Neither (T). Intervals: 95% bootstrap over items.")
        st.dataframe(found.overall, hide_index=True, key="study_overall")
        st.subheader("Per category")
        st.dataframe(found.per_category, hide_index=True, key="study_categories")
        st.subheader("Agreement")
        st.metric("Fleiss' κ", _number(found.kappa), help=f"over the {found.kappa_items} items with all their votes")
        st.dataframe(found.voters, hide_index=True, key="study_voters_table")
        st.caption("agreement: share of the voter's votes equal to the item's majority; consistency: hidden repeats "
                   "answered as the first time; A share: how often the voter chose the answer shown as A (0.5 = no "
                   "position preference).")
        st.dataframe(found.position, hide_index=True, key="study_position")
        if len(found.judges):
            st.subheader("Human majority vs LLM judges")
            st.dataframe(found.judges, hide_index=True, key="study_judges")
        st.subheader("Items")
        st.dataframe(found.items, hide_index=True, key="study_items")
        export_buttons(study)  # inside the fragment: the files hold the votes shown

    live()


def _number(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:.3f}"


def export_buttons(study: studies.StudyInfo) -> None:
    left, right = st.columns(2)
    for column, fmt, mime in ((left, "csv", "text/csv"), (right, "jsonl", "application/jsonl")):
        column.download_button(f"Download all votes ({fmt.upper()})", studies.export_votes(store, someone, study, fmt),
                               file_name=f"{study.name}-votes.{fmt}", mime=mime, key=f"study_export_{fmt}")


reason = studio.may("manage_studies", "run human studies")
if reason:
    st.info(reason)
    st.stop()

results_tab, create_tab = st.tabs(["Results", "New study"])
with create_tab:
    new_study_form()
with results_tab:
    listed = store.studies.all()
    if not listed:
        st.info("No study yet. Create one under **New study** from two models' answers.")
    else:
        names = [s.name for s in listed]
        picked = st.selectbox("Study", names, index=len(names) - 1, key="study_pick")
        study = store.studies.get(picked)
        judges = judgments_upload()
        results_view(study.id, judges)
