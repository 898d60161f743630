"""Explore: scores per rater against a threshold τ, the examples, one example in full, keep/drop overrides."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from curation import explain, explore, overrides, select
from curation.raters.run import RateRequest
from curation.store import NotFound
from curation.studio_auth import Forbidden
from pages import _choices as choices
from pages import _explain
from pages import _studio as studio

TABLE_ROWS = 500
OPEN_KEY = "explore_open_example"

studio.page("Explore")
store = studio.store()


def threshold_section(info, scores: explore.Scores, in_force: dict, label: str, rater: str, version: str) -> explore.TauSummary:
    """τ for this dataset + rater (as last set in the session, else the median), then the part τ changes."""
    low, high = scores.tau_range()
    remembered = choices.tau_for(info.name, rater, version, studio.score_scale())
    tau = remembered if remembered is not None else select.default_tau(scores.values)
    key = f"tau_{info.id}_{label}_{scores.field}"
    # The slider shows the τ of this dataset + rater: back from another page (widget state is forgotten off
    # the page), dataset or rater; new ratings moving the range under it only nudge it into range.
    if key not in st.session_state or not low <= st.session_state[key] <= high:
        st.session_state[key] = min(max(st.session_state.get(key, tau), low), high)
    step = max(round((high - low) / 200, 4), 1e-4)
    # ?tau_rerun=page reruns the whole page per τ step: only the baseline of benchmarks/tau_browser.py.
    section = tau_section if st.query_params.get("tau_rerun") == "page" else tau_fragment
    return section(info, scores, in_force, label, rater, version, key, (low, high, step))


def tau_section(info, scores: explore.Scores, in_force: dict, label: str, rater: str, version: str, key: str,
                bounds: tuple[float, float, float]) -> explore.TauSummary:
    low, high, step = bounds
    tau = st.slider(f"Threshold τ on {scores.scale_label}: keep examples scoring at least τ", low, high, step=step,
                    key=key)
    choices.remember_tau(info.name, rater, version, studio.score_scale(), tau)
    iqs_meaning(rater, scores.field, tau)
    keep, drop = select.override_masks(scores.ids, in_force)
    summary = explore.summarize_tau(scores, tau, keep, drop)
    metrics = st.columns(4)
    plain = {"delta_color": "off", "delta_arrow": "off"}
    metrics[0].metric("Kept", f"{summary.kept:,}", f"{summary.kept_share:.1%} of the dataset", **plain)
    metrics[1].metric("Dropped", f"{summary.dropped:,}", f"{1 - summary.kept_share:.1%} of the dataset", **plain)
    metrics[2].metric("Not rated (dropped)", f"{summary.unrated:,}")
    metrics[3].metric("Overrides changing the verdict", f"{summary.forced_keep + summary.forced_drop:,}",
                      f"{summary.forced_keep} kept, {summary.forced_drop} dropped by hand", **plain)
    st.caption(f"τ in force for {info.name} with {label}: {tau:g} on {scores.scale_label} (remembered for this dataset "
               "and rater in this session; Map's verdicts and Export use it).")
    chart, by_category = st.columns([3, 2])
    chart.plotly_chart(explore.histogram_figure(summary, f"{label}: {summary.rated:,} rated examples"), key="tau_histogram")
    with by_category:
        st.markdown("**Kept share per category**")
        st.dataframe(summary.by_category, hide_index=True, key="kept_by_category",
                     height=min(300, 38 + 35 * len(summary.by_category)), column_config={
            "kept_share": st.column_config.ProgressColumn("kept share", format="percent", min_value=0.0, max_value=1.0)})
    st.session_state["studio_selection"] = {"dataset": info.name, "method": "threshold", "rater": rater,
                                            "rater_version": version, "tau": tau, "field": scores.field}
    return summary


# Only this part reruns when τ moves: the counts, the histogram and the per-category shares. The examples
# table and the open example below keep their last render (their "kept" column says at which τ).
tau_fragment = st.fragment(tau_section)


def no_ratings(info) -> None:
    st.info(f"No ratings for '{info.name}' yet, so there is no score to threshold. Rate it with the local IQS "
            "scorer (or an LLM on the Rate page); this page fills in when the rating job ends.")
    if studio.running_job("rate", info.name) is None and st.button("Rate with IQS now", key="explore_rate_iqs"):
        request = RateRequest(rater="iqs", dataset=info.name)
        studio.launch_job("rate", request.as_params(), request.title())


def flags_status(info) -> None:
    counts = store.flags.counts(info.id)
    line, button = st.columns([4, 1])
    if counts:
        line.caption("Flags: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()))
    else:
        line.caption("No flags yet: run the flag rules (placeholders, refusals, truncation, loops, echoes, duplicates, "
                     "off-topic answers) to see them here.")
    running = studio.running_job("flags", info.name)
    if not running and button.button("Run the flag rules" if not counts else "Re-run the flag rules", key="explore_flags"):
        studio.launch_job("flags", {"dataset": info.name}, f"flag {info.name}")


def table_section(info, version, in_force: dict, summary: explore.TauSummary | None, scores: explore.Scores | None) -> str | None:
    st.subheader("Examples")
    flags_status(info)
    table = studio.example_table(store.url, info.id, info.created_at, version, studio.flags_version(info.id),
                                 studio.score_scale())
    controls = st.columns([3, 1, 1, 1])
    query = controls[0].text_input("Search instruction, input and output", key="explore_search")
    show = controls[1].selectbox("Show", explore.SHOW_CHOICES, key="explore_show")
    sortable = [c for c in table.columns if c not in ("_haystack", "instruction")]
    sort_by = controls[2].selectbox("Sort by", ["(dataset order)", *sortable], key="explore_sort")
    descending = controls[3].toggle("Descending", value=True, key="explore_descending")
    rows, matching = explore.filter_table(
        table, summary.kept_mask if summary else None, scores.values if scores else None,
        in_force, query, show, None if sort_by.startswith("(") else sort_by, descending, TABLE_ROWS,
    )
    st.caption(f"{matching:,} examples match; showing {len(rows):,}. Select a row to open it."
               + (f" The kept column is at τ = {summary.tau:g}." if summary is not None else ""))
    # The table's selection is a row number: keyed by the rows shown, so a new filter, sort or dataset
    # starts unselected instead of checking whichever example now sits on the old row.
    table_key = f"explore_table_{explore.rows_digest(info.id, rows['id'])}"
    st.session_state["explore_table_key"] = table_key
    event = st.dataframe(rows, hide_index=True, on_select="rerun", selection_mode="single-row", key=table_key,
                         column_config={"kept": st.column_config.CheckboxColumn("kept")})
    picked = ((event or {}).get("selection") or {}).get("rows") or []
    if picked and picked[0] < len(rows) and (table_key, picked) != st.session_state.get("explore_last_pick"):
        open_example(info.name, rows.loc[picked[0], "id"])
    st.session_state["explore_last_pick"] = (table_key, picked)
    typed = st.text_input("…or open an example by id", key="explore_open_id")
    if typed.strip() and typed.strip() != st.session_state.get("explore_last_typed"):
        open_example(info.name, typed.strip())
    st.session_state["explore_last_typed"] = typed.strip()
    return opened_example(info.name)


def open_example(dataset: str, record_id: str) -> None:
    """Remember the open example per dataset: switching dataset shows that dataset's, never a stranger's id."""
    st.session_state[OPEN_KEY] = {**opened_examples(), dataset: record_id}


def opened_examples() -> dict[str, str]:
    value = st.session_state.get(OPEN_KEY)
    return value if isinstance(value, dict) else {}


def opened_example(dataset: str) -> str | None:
    return opened_examples().get(dataset)


def example_view(info, record_id: str, summary: explore.TauSummary | None, scores: explore.Scores | None) -> None:
    try:
        record = store.datasets.example(info.id, record_id)
    except NotFound:
        st.warning(f"No example {studio.escaped(record_id)} in '{studio.escaped(info.name)}'; pick one from the table.")
        return
    with st.container(border=True):
        st.subheader(f"Example {studio.escaped(record_id)}")
        st.text(f"category: {record.category or '—'} · source: {record.source or '—'}")
        for title, text in (("Instruction", record.instruction), ("Input", record.input), ("Output", record.output)):
            st.markdown(f"**{title}**")
            st.code(text or "(empty)", language=None, wrap_lines=True)
        machine_verdict(record_id, summary, scores)
        explanation_panel(info, record)
        ratings_and_flags(info, record_id)
        override_box(info, record_id)


def iqs_meaning(rater: str, field: str, tau: float) -> None:
    """Beside the slider: what this τ lets through on CaR's expert pairs (IQS on 0–5 only)."""
    if rater == "iqs" and field == "score_0_5":
        meaning = explain.threshold_meaning(studio.settings().iqs.weights or None, tau)
        if meaning:
            st.caption(meaning)


def explanation_panel(info, record) -> None:
    """IQS's why (pages/_explain.py): standing, the sentence that moves the score, a better example to open."""
    def open_better(record_id: str) -> None:
        open_example(info.name, record_id)
        st.rerun()

    _explain.iqs_panel(info, record, open_better, key="explore_explain")


def machine_verdict(record_id: str, summary: explore.TauSummary | None, scores: explore.Scores | None) -> None:
    if summary is None or scores is None:
        return
    position = pd.Index(scores.ids).get_indexer([record_id])[0]
    if position < 0:
        return
    value = scores.values[position : position + 1]
    keep = select.threshold_keep(value, summary.tau)
    reason = select.threshold_reasons(value, summary.tau, keep)[0]
    verdict = "kept" if keep[0] else "dropped"
    st.write(f"Machine verdict at τ = {summary.tau:g} on {scores.scale_label}: **{verdict}** ({reason}); "
             "an override below wins.")


def ratings_and_flags(info, record_id: str) -> None:
    st.markdown("**Every rater's score and explanation**")
    rated = store.ratings.for_record(record_id)
    if rated:
        st.dataframe(pd.DataFrame(rated).drop(columns=["raw", "created_at"]), hide_index=True, key="example_ratings")
    else:
        st.caption("Not rated yet.")
    st.markdown("**Flags**")
    found = store.flags.for_record(info.id, record_id)
    if found:  # a table: a reason quotes the example's text and must show as typed, never as markdown
        st.dataframe(pd.DataFrame([{"flag": f.name, "reason": f.reason} for f in found]), hide_index=True,
                     key="example_flags")
    else:
        st.caption("No flag raised (or the flag rules have not run on this dataset).")


def override_box(info, record_id: str) -> None:
    st.markdown("**Keep or drop by hand**")
    notice = st.session_state.pop("override_notice", None)
    if notice:
        st.info(studio.escaped(notice))
    history = store.overrides.history(info.id, record_id)
    seen_key = f"override_seen_{info.id}_{record_id}"
    last_seen = st.session_state.get(seen_key, 0)
    if history:
        current = history[-1]
        st.text(f"In force: {current.decision} by {current.user} — {current.reason or 'no reason given'}"
                if current.decision != "clear" else "In force: the machine's verdict (the last entry cleared the override).")
        st.dataframe(pd.DataFrame([{"when": h.at.strftime("%Y-%m-%d %H:%M:%S"), "who": h.user, "decision": h.decision,
                                    "reason": h.reason} for h in history]), hide_index=True, key="override_history")
    reason_not = studio.may("override", "override the machine's verdict")
    if reason_not:
        st.caption(reason_not)
    choices = ["keep", "drop", "clear"]
    key = f"override_decision_{record_id}"
    shown = st.session_state.pop("override_decision_shown", None)
    if shown or key not in st.session_state:
        # First look, or just recorded: the radio shows the decision in force (not "keep" by default).
        # Keyed by the example only, so a decision someone else records meanwhile never resets a choice.
        st.session_state[key] = shown or (history[-1].decision if history and history[-1].decision in choices else "keep")
    with st.form(f"override_{record_id}", clear_on_submit=True):
        decision = st.radio("Decision", choices, horizontal=True, key=key,
                            captions=["always keep", "always drop", "back to the machine's verdict"])
        reason = st.text_input("Reason (required for keep or drop)", key="override_reason")
        submitted = st.form_submit_button("Record decision", disabled=reason_not is not None)
    st.session_state[seen_key] = history[-1].entry if history else 0
    if submitted:
        record_override(info, record_id, decision, reason.strip(), [h for h in history if h.entry > last_seen])


def record_override(info, record_id: str, decision: str, reason: str, unseen: list) -> None:
    if decision != "clear" and not reason:
        st.warning("Say why in the reason field: the decision is kept with it in the audit log.")
        return
    try:
        entry = overrides.record_override(store, studio.person(), info.id, record_id, decision, reason)
    except Forbidden as err:
        st.warning(str(err))
        return
    notice = f"Recorded: {entry.decision} by {entry.user}."
    others = [h for h in unseen if h.user != entry.user]
    if others:
        # Append-only: nothing is overwritten; the later entry is the one in force.
        notice += (f" Meanwhile {others[-1].user} recorded '{others[-1].decision}'; both are in the audit log and "
                   "yours, being later, is in force.")
    st.session_state["override_notice"] = notice
    st.session_state["override_decision_shown"] = entry.decision
    st.rerun()


def last_rater(info, labels: dict) -> int:
    """The rater last used on this dataset (on Explore or Map) comes first back on the page."""
    last = choices.last_choice(info.name)
    wanted = explore.rater_label(last[1], last[2]) if last else None
    return list(labels).index(wanted) if wanted in labels else 0


def main() -> None:
    info = studio.pick_dataset("explore")
    if info is None:
        return
    studio.job_watch(("rate", "flags"), info.name, key="explore_jobs")
    data_version = studio.ratings_version()  # one cheap query; every cached read below keys on it
    in_force = store.overrides.in_force(info.id)
    choices = studio.rater_choices(info, data_version)
    summary = scores = None
    if not choices:
        no_ratings(info)
    else:
        labels = {explore.rater_label(r, v): (r, v, n) for r, v, n in choices}
        label = st.selectbox("Rater", list(labels), key=f"explore_rater_{info.id}", index=last_rater(info, labels),
                             format_func=lambda l: f"{l} — {labels[l][2]:,} rated")
        rater, version, _ = labels[label]
        raw = st.toggle("Raw scores (the rater's own scale instead of 0–5)", key="explore_raw_scale",
                        value=studio.score_scale() == "raw")
        st.session_state[studio.SCALE_KEY] = "raw" if raw else select.DEFAULT_SCALE
        scores = studio.scores(store.url, info.id, info.created_at, data_version, rater, version, studio.score_scale())
        summary = threshold_section(info, scores, in_force, label, rater, version)
    record_id = table_section(info, data_version, in_force, summary, scores)
    if record_id:
        example_view(info, record_id, summary, scores)


main()
