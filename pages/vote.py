"""Vote: the human study's blind A/B page (METHODS.md §3). One question, two answers, three choices.

The voter never sees which model wrote which answer: the page renders only the question, the two answers
(as plain text) and the voter's own progress. Widget keys are the same for every question (nothing in
the page's HTML tells one item, or a hidden repeat, from another).
"""

from __future__ import annotations

import streamlit as st

from curation import studies
from curation.studies import interface
from pages import _studio as studio

studio.page("Vote")
store = studio.store()
someone = studio.person()


def choose_study() -> studies.StudyInfo | None:
    reason = studio.may("vote", "vote in a study")
    if reason:
        st.info(reason)
        return None
    open_studies = studies.studies_for(store, someone)
    if not open_studies:
        st.info("No study is open to you yet. Your lead will tell you when one starts.")
        return None
    if len(open_studies) == 1:
        return open_studies[0]
    # Studies are labelled by number only: a study's name may name the models.
    labels = {s.id: f"Study {s.id} ({s.n_items} questions)" for s in open_studies}
    chosen = st.selectbox("Study", list(labels), format_func=labels.get, key="vote_study")
    return next(s for s in open_studies if s.id == chosen)


def show_progress(study: studies.StudyInfo) -> None:
    done, to_go = store.studies.progress(study, someone.name)
    total = done + to_go
    st.progress(done / total if total else 1.0, text=f"{done} done, {to_go} to go")


def show_item(shown: studies.Assignment) -> None:
    st.write(interface.INTRO)
    st.text("\n".join(interface.CRITERIA))
    for label, text in ((interface.QUESTION, interface.question_text(shown.instruction, shown.input)),
                        (interface.ANSWER_A, shown.answer_a), (interface.ANSWER_B, shown.answer_b)):
        st.markdown(f"**{label}**")
        with st.container(border=True):
            st.text(text)  # what models and users wrote is text, never markdown or HTML


def vote_form(study: studies.StudyInfo, shown: studies.Assignment) -> None:
    labels = dict(interface.OPTIONS)
    # clear_on_submit: the next question starts with no choice and an empty comment.
    with st.form("vote_form", clear_on_submit=True):
        choice = st.radio(interface.ASK, list(labels), format_func=lambda c: f"{list(labels).index(c) + 1}. {labels[c]}",
                          index=None, key="vote_choice")
        comment = st.text_input("Comment (optional)", key="vote_comment")
        submit, skip = st.columns(2)
        submitted = submit.form_submit_button("Submit", type="primary")
        skipped = skip.form_submit_button("Skip this question")
    if skipped:
        record(study, shown, "skip", comment)
    elif submitted and choice is None:
        st.warning("Choose one of the three answers, or skip this question.")
    elif submitted:
        record(study, shown, choice, comment)


def record(study: studies.StudyInfo, shown: studies.Assignment, choice: str, comment: str) -> None:
    try:
        studies.submit_vote(store, someone, study, shown, choice, comment)
    except studies.LeaseLost as err:
        st.session_state["vote_notice"] = str(err)
    st.rerun()


study = choose_study()
if study is not None:
    notice = st.session_state.pop("vote_notice", None)
    if notice:
        st.warning(notice)
    shown = studies.next_item(store, someone, study)
    show_progress(study)
    if shown is None:
        st.success("You have answered every question open to you. Thank you!")
    else:
        show_item(shown)
        vote_form(study, shown)
