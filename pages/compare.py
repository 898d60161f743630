"""Compare: two models (or a model and the references) judged pairwise in both orders; the cost before
launching; the papers' charts filling in as verdicts arrive; click a bar to read the items behind it with
both reviews next to the two answers. Published reviews can be imported and shown beside new runs.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from curation import jobs
from curation.judges import JUDGE_KINDS, report
from curation.judges.answer_files import add_bundled_answers, save_answer_file
from curation.judges.imports import ReviewImportError, import_bundled_reviews
from curation.judges.pairs import REFERENCE_TESTSETS, PairingError
from curation.judges.run import JudgeCost, JudgeRequest, JudgeRunError, estimate_cost, start_judge_job
from curation.judges.sources import answer_sources, comparison_request
from curation.studio_auth import Forbidden
from pages import _studio as studio

REFERENCE = "Reference answers of the test set"
JUDGE_LABELS = {"vicuna": "GPT-4 review (Vicuna prompt, two scores 1–10)",
                "zheng": "Zheng et al. pairwise ([[A]] / [[B]] / [[C]])",
                "pandalm": "PandaLM (1 / 2 / Tie, completions endpoint)"}

studio.page("Compare")
store = studio.store()
settings = studio.settings()


# ----------------------------------------------------------------------------------------------------
# A new comparison


def comparison_requests() -> list[JudgeRequest]:
    sources = answer_sources(store, settings.workspace)
    if not sources:
        st.info("No answers yet: generate them on the Answers page, or add answer files below (JSONL with id, "
                "instruction, input, output, optional category), or import the published reviews to see the charts.")
        return []
    left, right = st.columns(2)
    model_a = left.selectbox("Model A", list(sources), key="compare_model_a")
    kind = next(iter(sources[model_a].values())).kind
    # Both sides come from the same place (the Answers store, or files), or B is the references.
    others = [m for m in sources if m != model_a and next(iter(sources[m].values())).kind == kind] + [REFERENCE]
    model_b = right.selectbox("Model B", others, key="compare_model_b")
    if model_b == REFERENCE:
        testsets = [t for t in sources[model_a] if t in REFERENCE_TESTSETS]
    else:
        testsets = [t for t in sources[model_a] if t in sources[model_b]]
    if not testsets:
        st.warning("These two have no test set in common (references exist for "
                   f"{', '.join(REFERENCE_TESTSETS)}); generate or add answers first.")
        return []
    chosen_sets = st.multiselect("Test sets", testsets, default=testsets, key="compare_testsets")
    judges = st.multiselect("Judges", list(JUDGE_KINDS), default=[settings.judge.judge], format_func=JUDGE_LABELS.get,
                            key="compare_judges")
    left, right = st.columns(2)
    model = left.text_input("Judge model", value=settings.judge.model, key="compare_judge_model")
    base_url = right.text_input("Judge endpoint (base URL)", value=settings.judge.base_url, key="compare_base_url")
    st.caption(f"The API key is read from {settings.judge.api_key_name} (environment or .streamlit/secrets.toml) by "
               "the worker; it is never stored or shown. Every item is judged twice, once in each order.")
    requests = []
    for testset in chosen_sets:
        for judge in judges:
            other = None if model_b == REFERENCE else sources[model_b][testset]
            try:
                requests.append(comparison_request(judge, testset, sources[model_a][testset], other,
                                                   model.strip() or None, base_url.strip() or None))
            except JudgeRunError as err:
                st.error(str(err))
    return requests


@st.cache_data(show_spinner="Estimating the cost…", max_entries=32)
def cached_cost(params: dict, stamp: tuple, version: tuple) -> JudgeCost:
    return estimate_cost(JudgeRequest.from_params(params), settings, store)


def cost_box(requests: list[JudgeRequest]) -> JudgeCost | None:
    """Each comparison's dry run; the total most it can cost. None if one of them cannot run."""
    costs = []
    with st.container(border=True):
        st.markdown("**Before you launch**")
        for request in requests:
            files = (request.a, request.b) if request.source == "files" else ()
            stamp = tuple(Path(p).stat().st_mtime for p in files if p) + (store.answers.version(),)
            try:
                costs.append(cached_cost(request.as_params(), stamp, store.judgments.version()))
            except (JudgeRunError, PairingError, ValueError) as err:
                st.error(f"{request.title()}: {err}")
                return None
        if not costs:
            return None
        st.dataframe([{"comparison": r.title(), "calls": c.calls, "already stored": c.stored,
                       "prompt tokens ≈": c.prompt_tokens, "cost ≤ $": round(c.cost_usd_max, 4),
                       "price known": c.price_known} for r, c in zip(requests, costs)],
                     hide_index=True, key="compare_costs")
        total = sum(c.cost_usd_max for c in costs)
        st.text(f"{sum(c.calls for c in costs)} calls to make; at most ${total:.4f} in all. Nothing was sent.")
        if not all(c.price_known for c in costs):
            st.caption(f"No price for '{costs[0].model}' in llm.prices: its cost is unknown (shown as 0), so the run "
                       "counts as paid and only a lead can launch it.")
    return JudgeCost("all", requests[0].model or settings.judge.model, 0, 0, 0, 0, sum(c.calls for c in costs), 0, 0,
                     all(c.price_known for c in costs), total, any(c.paid for c in costs))


def launch(requests: list[JudgeRequest], cost: JudgeCost | None) -> None:
    reason = studio.may("judge", "run a judge")
    if reason is None and cost is not None and cost.paid:
        reason = studio.may("run_paid_job", "launch a paid judge run")
    if reason:
        st.caption(reason)
    label = f"Judge {len(requests)} comparison{'s' if len(requests) != 1 else ''}"
    if st.button(label, type="primary", disabled=reason is not None or cost is None, key="compare_launch"):
        for request in requests:
            try:
                job_id = start_judge_job(store, settings, request, studio.person())
            except (Forbidden, jobs.JobError, JudgeRunError) as err:
                st.error(str(err))
                return
            st.toast(f"Job {job_id} started: {request.title()}")


def add_answers() -> None:
    with st.expander("Add answer files"):
        st.caption("One JSONL file per model and test set: id, instruction, input, output, optional category.")
        upload = st.file_uploader("Answers (JSONL)", type=["jsonl"], key="compare_upload")
        left, right = st.columns(2)
        model = left.text_input("Model name", key="compare_upload_model")
        testset = right.text_input("Test set", value=Path(upload.name).stem if upload else "", key="compare_upload_set")
        if st.button("Add the bundled answers of Cherry 5% LLaMA-7B and Alpaca-7B (Vicuna-80, WizardLM-218)",
                     key="compare_bundled"):
            try:
                paths = add_bundled_answers(settings.workspace, studio.person())
            except Forbidden as err:
                st.error(str(err))
            else:
                st.success(f"Added {len(paths)} answer files.")
        if st.button("Add", key="compare_upload_add", disabled=upload is None):
            try:
                path = save_answer_file(settings.workspace, studio.person(), model, testset, upload.getvalue())
            except (PairingError, Forbidden) as err:
                st.error(str(err))
            else:
                st.success(f"Added {path.parent.name}/{path.name}.")


def import_box() -> None:
    with st.expander("Published reviews"):
        st.caption("GPT-4 reviews (Vicuna prompt, both orders) of LLaMA-7B trained on a 5% Cherry subset vs Alpaca-7B "
                   "on Vicuna-80 and WizardLM-218 (tianyi-lab/Cherry_LLM); they show as runs beside yours.")
        if st.button("Import the published reviews", key="compare_import"):
            try:
                runs = import_bundled_reviews(store, studio.person())
            except (Forbidden, ReviewImportError) as err:
                st.error(str(err))
            else:
                st.success(f"Imported {len(runs)} runs.")


# ----------------------------------------------------------------------------------------------------
# Results


@st.cache_resource(show_spinner=False, max_entries=64)
def cached_report(url: str, run_id: int, version: tuple) -> report.RunReport:
    return report.load_report(studio.store(), run_id, settings.judge.bootstrap_samples)


def chosen_runs() -> list[report.RunReport]:
    runs = store.judgments.runs()
    if not runs:
        st.info("No comparisons yet: launch one above, or import the published reviews.")
        return []
    labels = {run.id: run.label for run in runs}
    known = set(st.session_state.get("compare_known_runs", ()))
    fresh = [run.id for run in runs if run.id not in known]
    if fresh:  # new runs (a launch, an import) join the charts without a click
        current = [i for i in st.session_state.get("compare_runs", []) if i in labels]
        st.session_state["compare_runs"] = (current + fresh)[-8:]
    st.session_state["compare_known_runs"] = list(labels)
    picked = st.multiselect("Runs shown", list(labels), format_func=labels.get, key="compare_runs")
    version = store.judgments.version()
    return [cached_report(store.url, run_id, version) for run_id in picked]


def active_jobs() -> None:
    for job in jobs.all_jobs(store, settings, kind="judge", limit=50):
        if job.status in ("queued", "running"):
            text = f"#{job.id} {job.title} — {job.state}: {job.message}"
            st.progress(job.fraction, text=text)


def overview(reports: list[report.RunReport]) -> None:
    st.dataframe(report.runs_frame(reports), hide_index=True, key="compare_table",
                 column_config={c: st.column_config.NumberColumn(format="%.3f")
                                for c in ("WS", "WR", "QS", "consistency", "longer wins")}
                 | {"capacity %": st.column_config.NumberColumn(format="%.1f")})
    event = st.plotly_chart(report.wtl_figure(reports), key="compare_wtl", on_select="rerun",
                            selection_mode="points", config={"displaylogo": False})
    clicked = new_click("compare_wtl", report.picked_bar(event, [r.label for r in reports]))
    if clicked:
        run = next(r for r in reports if r.label == clicked[0])
        st.session_state["compare_detail_run"] = run.run.id
        st.session_state["compare_outcome"] = clicked[1]
        st.session_state["compare_category"] = "all"
    agreement = report.agreement_frame(reports)
    if len(agreement):
        st.caption("Judges side by side on the same items (share of equal item verdicts, Cohen's κ):")
        st.dataframe(agreement, hide_index=True, key="compare_agreement")


def new_click(key: str, clicked: tuple[str, str] | None) -> tuple[str, str] | None:
    """A bar click once: the chart keeps its selection across reruns, the filters below stay the person's."""
    if clicked is None or st.session_state.get(f"{key}_applied") == clicked:
        return None
    st.session_state[f"{key}_applied"] = clicked
    return clicked


def detail(reports: list[report.RunReport]) -> None:
    by_id = {r.run.id: r for r in reports}
    if st.session_state.get("compare_detail_run") not in by_id:
        st.session_state["compare_detail_run"] = reports[0].run.id
    run_id = st.selectbox("Run in detail", list(by_id), format_func=lambda i: by_id[i].label, key="compare_detail_run")
    chosen = by_id[run_id]
    position_numbers(chosen)
    categories = list(report.category_counts(chosen))
    event = st.plotly_chart(report.category_figure(chosen), key=f"compare_categories_{run_id}", on_select="rerun",
                            selection_mode="points", config={"displaylogo": False})
    clicked = new_click(f"compare_categories_{run_id}", report.picked_bar(event, categories))
    if clicked:
        st.session_state["compare_category"], st.session_state["compare_outcome"] = clicked
    capacity = report.capacity_figure(chosen)
    if capacity is not None and len(categories) > 1:
        st.plotly_chart(capacity, key=f"compare_capacity_{run_id}", config={"displaylogo": False})
    items(chosen, categories)


def position_numbers(chosen: report.RunReport) -> None:
    s = chosen.summary
    bias, longer = s["position"], s["longer_answer"]
    cols = st.columns(4)
    cols[0].metric("Position consistency", "–" if s["consistency"] is None else f"{s['consistency']:.0%}",
                   help="Share of items whose two verdicts (A first, B first) name the same winner.")
    share = bias["first_position_share"]
    cols[1].metric("Wins by the answer shown first", "–" if share is None else f"{share:.0%}",
                   help=f"Favours: {bias['favours'] or '–'} ({bias['first_position_wins']} first vs "
                   f"{bias['second_position_wins']} second, {bias['position_ties']} ties)")
    cols[2].metric("Wins by the longer answer", "–" if longer["share"] is None else f"{longer['share']:.0%}",
                   help=f"{longer['longer_won']} of {longer['decided']} items one model won outright.")
    cols[3].metric("Unparsed reviews' items", s["unparsed"], help="Counted and shown, never treated as ties.")


def items(chosen: report.RunReport, categories: list[str]) -> None:
    st.subheader("Items behind a bar")
    left, right = st.columns(2)
    category_options = ["all", *categories]
    if st.session_state.get("compare_category") not in category_options:
        st.session_state["compare_category"] = "all"
    category = left.selectbox("Category", category_options, key="compare_category")
    outcome = right.selectbox("Result for A", ["all", *report.OUTCOME_ORDER, "pending"], key="compare_outcome")
    frame = report.items_behind(chosen, None if category == "all" else category, None if outcome == "all" else outcome)
    st.caption(f"{len(frame)} items. Select one to read both answers and both reviews.")
    event = st.dataframe(frame, hide_index=True, on_select="rerun", selection_mode="single-row",
                         key=f"compare_items_{chosen.run.id}")
    rows = ((event or {}).get("selection") or {}).get("rows") or []
    if rows and rows[0] < len(frame):
        item_view(chosen, str(frame.iloc[rows[0]]["id"]))


def item_view(chosen: report.RunReport, item_id: str) -> None:
    item = report.item_detail(chosen, item_id)
    with st.container(border=True):
        st.text(f"Item {item_id} · {item['category']} · result for A: {item['outcome']}")
        st.text(item["question"])
        left, right = st.columns(2)
        left.caption(f"A: {chosen.run.model_a}")
        left.text(item["answer_a"] or "(empty answer)")
        right.caption(f"B: {chosen.run.model_b}")
        right.text(item["answer_b"] or "(empty answer)")
        for column, review in zip(st.columns(len(item["reviews"])), item["reviews"]):
            column.caption(f"{review['order']}: {review['verdict']}")
            column.code(review["review"], language=None, wrap_lines=True)
            if review["problem"]:
                column.caption(f"Not read: {review['problem']}")


@st.fragment(run_every=settings.studio.refresh_s)
def results() -> None:
    st.subheader("Results")
    active_jobs()
    reports = chosen_runs()
    if not reports:
        return
    overview(reports)
    detail(reports)


def main() -> None:
    with st.container(border=True):
        st.subheader("New comparison")
        requests = comparison_requests()
        if requests:
            launch(requests, cost_box(requests))
        add_answers()
        import_box()
    results()


main()
