"""Answers: a test item with every model's answer side by side (truncated ones marked), filtered by test set
and category; below, a lead launches generation or imports published answers, and watches the jobs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from curation.answers import GenerateError, GenerateRequest, import_answers, start_generation
from curation.formats import UnreadableFile
from curation.store import AnswerRow
from curation.studio_auth import Forbidden
from pages import _studio as studio

ALL = "All categories"
PER_ROW = 3

studio.page("Answers")
store = studio.store()
settings = studio.settings()


@st.cache_resource(show_spinner=False, max_entries=16)
def items_of(url: str, testset: str, n_items: int) -> list:
    return store.testsets.items(testset)


def pick_item(testset) -> object | None:
    """The category filter and the item picker; None when the filter leaves nothing."""
    items = items_of(store.url, testset.name, testset.n_items)
    categories = sorted({i.category for i in items if i.category})
    left, right = st.columns([1, 3])
    category = left.selectbox("Category", [ALL, *categories], key="answers_category") if categories else ALL
    shown = [i for i in items if category == ALL or i.category == category]
    if not shown:
        st.info("No item of this test set has that category.")
        return None
    labels = {i.item_id: f"{i.item_id} — {' '.join(i.question.split())[:90]}" for i in shown}
    chosen = right.selectbox(f"Item ({len(shown)})", list(labels), format_func=labels.get, key="answers_item")
    return next(i for i in shown if i.item_id == chosen)


def show_item(item) -> None:
    with st.container(border=True):
        st.caption(f"Question · {item.category or 'no category'}")
        st.text(item.question)
        if len(item.turns) > 1:
            st.caption("Later turns (answers here are to the first turn)")
            st.text("\n\n".join(item.turns[1:]))
        if item.reference:
            with st.expander("Reference answer"):
                st.text(item.reference)


def show_answers(answers: list[AnswerRow]) -> None:
    if not answers:
        st.info("No model has answered this item yet: generate answers below, or import a published answer file.")
        return
    for start in range(0, len(answers), PER_ROW):
        for column, answer in zip(st.columns(PER_ROW), answers[start : start + PER_ROW]):
            with column, st.container(border=True):
                st.text(answer.model_id)
                st.caption(answer_caption(answer))
                if answer.finish_reason == "truncated":
                    st.warning(f"Truncated: cut at {answer.completion_tokens} new tokens before it finished.",
                               icon=":material/content_cut:")
                st.text(answer.output)


def answer_caption(answer: AnswerRow) -> str:
    if answer.source.startswith("imported"):
        return f"{answer.source} · finish unknown"
    return (f"decoding {answer.decoding_hash} · {answer.finish_reason} · {answer.completion_tokens} tokens · "
            f"temperature {answer.meta.get('temperature', answer.decoding.get('temperature'))}")


def answer_sets(testset: str) -> None:
    sets = store.answers.sets(testset)
    if sets:
        st.dataframe(pd.DataFrame([{"model": s.model_id, "decoding": s.decoding_hash, "source": s.source,
                                    "answers": s.n, "truncated": s.n_truncated} for s in sets]),
                     hide_index=True, key="answers_sets")


def generate_form(testset_names: list[str], current: str) -> None:
    reason = studio.may("generate", "generate answers")
    with st.expander("Generate answers", expanded=reason is None):
        if reason:
            st.caption(reason)
            return
        left, right = st.columns(2)
        model = left.text_input("Model", value=settings.generate.model, key="gen_model",
                                help="smollm2-135m (bundled), an adapter or model folder on this machine, an HF name, "
                                "or the name an endpoint serves")
        base_url = right.text_input("Endpoint base URL (optional)", key="gen_base_url",
                                    placeholder="http://127.0.0.1:8000/v1")
        chosen = st.multiselect("Test sets", testset_names, default=[current], key="gen_testsets")
        a, b, c = st.columns(3)
        limit = int(a.number_input("First N items (0 = all)", 0, 10_000, 0, key="gen_limit"))
        max_new = int(b.number_input("Max new tokens", 1, 8192, settings.generate.max_new_tokens, key="gen_max_new"))
        temperature = float(c.number_input("Temperature (0 = greedy)", 0.0, 2.0, settings.generate.temperature,
                                           key="gen_temperature"))
        per_category = st.checkbox("MT-Bench temperature per category (writing/roleplay 0.7, STEM/humanities 0.1, "
                                   "others 0)", key="gen_per_category")
        st.caption("The prompt is the Alpaca template the model was trained with; answers already stored for the same "
                   "model and decoding are skipped.")
        if st.button("Generate answers", type="primary", key="gen_launch", disabled=not chosen or not model.strip()):
            launch(model=model.strip(), testsets=chosen, limit=limit or None,
                   base_url=base_url.strip() or None, max_new_tokens=max_new, temperature=temperature,
                   per_category_temperature=per_category)


def launch(**fields) -> None:
    try:
        request = GenerateRequest(**fields)
        job_id = start_generation(request, settings, store, studio.person())
    except (GenerateError, Forbidden) as err:
        st.error(str(err))
        return
    st.toast(f"Job {job_id} started: {request.title()}")


def import_form(testset_names: list[str], current: str) -> None:
    reason = studio.may("import", "import answers")
    with st.expander("Import published answers (FastChat, AlpaGasus, Cherry, AlpacaEval, Self-Instruct)"):
        if reason:
            st.caption(reason)
            return
        upload = st.file_uploader("Answer file", type=["json", "jsonl"], key="import_answers_file")
        left, mid, right = st.columns(3)
        testset = left.selectbox("Test set it answers", testset_names, index=testset_names.index(current),
                                 key="import_answers_testset")
        model = mid.text_input("Model name (empty: the one the file names)", key="import_answers_model")
        column = right.text_input("Column (files with two models: Answer1, alpagasus2…)", key="import_answers_column")
        if st.button("Import answers", key="import_answers_go", disabled=upload is None):
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / Path(upload.name).name
                path.write_bytes(upload.getvalue())
                try:
                    summary = import_answers(path, store, studio.person(), testset, model=model.strip() or None,
                                             column=column.strip() or None)
                except (UnreadableFile, Forbidden) as err:
                    st.error(str(err))
                    return
            st.success(" ".join(summary.lines()))


def main() -> None:
    testsets = store.testsets.all()
    if not testsets:
        st.info("No test sets in the workspace yet.")
        return
    names = [t.name for t in testsets]
    labels = {t.name: f"{t.name} — {t.n_items} items" for t in testsets}
    name = st.selectbox("Test set", names, format_func=labels.get, key="answers_testset")
    testset = next(t for t in testsets if t.name == name)
    item = pick_item(testset)
    if item is not None:
        show_item(item)
        show_answers(store.answers.for_item(testset.name, item.item_id))
    answer_sets(testset.name)
    generate_form(names, testset.name)
    import_form(names, testset.name)
    studio.job_panel(("generate",), heading="Generation jobs", key="generate_jobs")


main()
