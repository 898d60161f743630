"""What every page shares: the settings and store, who is acting, the dataset picker, cached data, jobs.

Not a page (the leading underscore): app.py routes with st.navigation, which lists the pages itself.
Heavy reads are cached by (database URL, dataset id, a cheap version), so a rerun recomputes nothing
that has not changed; the store connection is one per database URL for the whole server.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

import pandas as pd
import streamlit as st

from curation import explore, jobs
from curation.config import ConfigError, Settings, load_settings
from curation.demo import build_demo
from curation.select import DEFAULT_SCALE
from curation.store import DatasetInfo, Store
from curation.studio_auth import (
    AuthError,
    Forbidden,
    Person,
    create_account,
    create_first_lead,
    needs_first_lead,
    oidc_person,
    refusal,
    sign_in,
)

PERSON_KEY = "studio_person"
DATASET_KEY = "studio_dataset"
SCALE_KEY = "studio_scale"


# ----------------------------------------------------------------------------------------------------
# Settings and store


@st.cache_resource(show_spinner=False)
def _settings_for(key: tuple[str, ...]) -> Settings:
    return load_settings()


def settings() -> Settings:
    """One Settings object per configuration source (the environment decides, as for the CLI)."""
    key = tuple(os.environ.get(name, "") for name in ("CURATION_CONFIG", "CURATION_WORKSPACE", "DATABASE_URL"))
    extra = tuple(sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("CURATION__")))
    try:
        return _settings_for(key + extra + (os.getcwd(),))
    except ConfigError as err:  # a broken curation.toml or variable: say which, not a traceback
        st.error(f"The studio cannot start: {err}")
        st.stop()


@st.cache_resource(show_spinner=False)
def _store_for(url: str) -> Store:
    return Store(url)


def store() -> Store:
    return _store_for(settings().db_url)


@st.cache_resource(show_spinner=False)
def _demo_lock() -> threading.Lock:
    return threading.Lock()


def ensure_demo() -> None:
    """First start on an empty workspace: build the demo datasets, showing progress (about 3 s)."""
    current = store()
    if st.session_state.get("studio_demo_checked") == current.url:
        return
    with _demo_lock():
        if not current.datasets.all() and not current.testsets.all():
            bar = st.progress(0.0, text="First start: building the demo workspace…")
            build_demo(current, settings(), progress=lambda done, total, message: bar.progress(
                min(done / max(total, 1), 1.0), text=f"First start: building the demo workspace — {message}"))
            bar.empty()
            st.toast("The demo workspace is ready: three datasets and eight test sets.")
    st.session_state["studio_demo_checked"] = current.url


def page(title: str) -> None:
    """What every page starts with: the first-start demo build, its title, the sidebar."""
    _leave_pages_directory_mode()
    ensure_demo()
    st.title(title)
    account_sidebar()


def _leave_pages_directory_mode() -> None:
    """Route through app.py even when the server's first request named a page (e.g. /rate).

    Streamlit decides once per server, at its first session, whether a ``pages/`` folder means its legacy
    folder navigation; until some run calls st.navigation it runs ``pages/<name>.py`` directly, without
    app.py (no page config, a navigation listing every file). Turning that off and rerunning once lets
    app.py's st.navigation serve the same URL. Once per session, so no widget event is ever swallowed.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if st.session_state.get("studio_routed"):
        return
    st.session_state["studio_routed"] = True  # a session's first run decides
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


# ----------------------------------------------------------------------------------------------------
# Who is acting


def oidc_configured() -> bool:
    if settings().studio.auth != "oidc":
        return False
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets.toml at all (StreamlitSecretNotFoundError)
        return False


def person() -> Person | None:
    if oidc_configured():
        if not getattr(st.user, "is_logged_in", False):
            return None
        try:
            return oidc_person(store(), st.user.to_dict(), settings().auth)
        except AuthError as err:
            st.error(str(err))
            return None
    data = st.session_state.get(PERSON_KEY)
    return Person(**data) if data else None


def _remember(someone: Person) -> None:
    st.session_state[PERSON_KEY] = {"name": someone.name, "role": someone.role, "via": someone.via}


_MARKDOWN_SPECIALS = str.maketrans({c: "\\" + c for c in "\\`*_[]()<>#!|~$"})


def escaped(text: str) -> str:
    """``text`` safe inside st.error/st.info/st.caption (markdown): every markdown character escaped, so a
    user string (a file or dataset name in a message) shows as typed and never becomes a link or image."""
    return str(text).translate(_MARKDOWN_SPECIALS)


def may(action: str, doing: str) -> str | None:
    """None if the current person may do it, else the sentence to show instead of the action."""
    return refusal(person(), action, doing)


def account_sidebar() -> None:
    with st.sidebar:
        st.subheader("Who is acting")
        if oidc_configured():
            _oidc_box()
            return
        someone = person()
        if someone is not None:
            st.text(f"Signed in as {someone.name} ({someone.role}).")
            if st.button("Sign out", key="sign_out"):
                st.session_state.pop(PERSON_KEY, None)
                st.rerun()
            if someone.may("manage_accounts"):
                _add_account_form(someone)
        elif needs_first_lead(store()):
            _first_lead_form()
        else:
            _sign_in_form()


def _oidc_box() -> None:
    someone = person()
    if someone is None:
        st.caption("Viewing needs no account; sign in to import, override or launch jobs.")
        st.button("Sign in", key="oidc_login", on_click=st.login)
    else:
        st.text(f"Signed in as {someone.name} ({someone.role}).")
        st.button("Sign out", key="oidc_logout", on_click=st.logout)


def _first_lead_form() -> None:
    # Not whoever comes first: the holder of the token `./run studio` printed on the studio's machine.
    st.info("No accounts yet. Create the first lead with the one-time token `./run studio` printed (or run "
            "`python -m curation users add NAME --role lead` on the studio's machine).")
    with st.form("first_lead"):
        name = st.text_input("Name", key="first_lead_name")
        password = st.text_input("Password", type="password", key="first_lead_password",
                                 help="8 characters or more")
        token = st.text_input("One-time setup token", type="password", key="first_lead_token")
        if st.form_submit_button("Create lead account"):
            try:
                _remember(create_first_lead(store(), name, password, token))
            except (AuthError, ValueError) as err:
                st.error(str(err))
            else:
                st.rerun()


def _sign_in_form() -> None:
    st.caption("Viewing needs no account; sign in to import, override or launch jobs.")
    with st.form("sign_in"):
        name = st.text_input("Name", key="sign_in_name")
        password = st.text_input("Password", type="password", key="sign_in_password")
        if st.form_submit_button("Sign in"):
            try:
                _remember(sign_in(store(), name, password, settings().auth))
            except AuthError as err:
                st.error(str(err))
            else:
                st.rerun()


def _add_account_form(lead: Person) -> None:
    with st.expander("Add an account"), st.form("add_account", clear_on_submit=True):
        name = st.text_input("Name", key="new_account_name")
        password = st.text_input("Password", type="password", key="new_account_password")
        role = st.selectbox("Role", ["annotator", "voter", "lead"], key="new_account_role")
        if st.form_submit_button("Create account"):
            try:
                created = create_account(store(), lead, name, password, role)
            except (AuthError, Forbidden, ValueError) as err:
                st.error(str(err))
            else:
                st.text(f"Created {created.role} '{created.name}'.")


# ----------------------------------------------------------------------------------------------------
# Navigation: which pages the signed-in person sees


def navigation_pages() -> list[Any]:
    """The pages for the signed-in person's role: a voter gets only Vote (no data, no model names)."""
    someone = person()
    vote = functools.partial(st.Page, "pages/vote.py", title="Vote", icon=":material/how_to_vote:")
    if someone is not None and someone.role == "voter":
        return [vote(default=True)]
    pages = [
        st.Page("pages/data.py", title="Data", icon=":material/database:", default=True),
        st.Page("pages/rate.py", title="Rate", icon=":material/grade:"),
        st.Page("pages/explore.py", title="Explore", icon=":material/bar_chart:"),
        st.Page("pages/map.py", title="Map", icon=":material/scatter_plot:"),
        st.Page("pages/export.py", title="Export", icon=":material/download:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/answers.py", title="Answers", icon=":material/forum:"),
    ]
    if someone is not None and someone.may("vote"):
        pages.append(vote())
    if someone is not None and someone.may("manage_studies"):
        pages.append(st.Page("pages/study_results.py", title="Studies", icon=":material/groups:"))
    return pages


# ----------------------------------------------------------------------------------------------------
# The dataset being looked at (shared by all pages)


def pick_dataset(page: str, label: str = "Dataset") -> DatasetInfo | None:
    """A dataset selectbox that remembers the choice across pages; None (with a hint) if there is none."""
    datasets = store().datasets.all()
    if not datasets:
        st.info("No datasets yet. Go to **Data** and import a file (JSON, JSONL, CSV or Parquet).")
        return None
    names = [d.name for d in datasets]
    key = f"dataset_{page}"
    current = st.session_state.get(DATASET_KEY)
    # Another page (or an import) chose a dataset: show that one here too. Widget state is the way to
    # move a keyed widget; its on_change keeps DATASET_KEY in step when the person picks here.
    if current in names and st.session_state.get(key) != current:
        st.session_state[key] = current
    labels = {d.name: f"{d.name} — {d.n_examples:,} examples" for d in datasets}
    name = st.selectbox(label, names, format_func=labels.get, key=key, on_change=_picked, args=(key,))
    st.session_state[DATASET_KEY] = name
    return next(d for d in datasets if d.name == name)


def _picked(key: str) -> None:
    st.session_state[DATASET_KEY] = st.session_state[key]


def choose_dataset(name: str) -> None:
    """Make ``name`` the dataset every page shows (e.g. right after importing it)."""
    st.session_state[DATASET_KEY] = name


# ----------------------------------------------------------------------------------------------------
# Cached reads: keyed by database URL + dataset id + a version, so reruns reuse them


# cache_resource, not cache_data: these frames are large and read-only, and cache_data would unpickle a
# copy on every rerun (tens of ms for 52k texts). Callers must not mutate what they get.


@st.cache_resource(show_spinner="Loading the examples…", max_entries=8)
def examples(url: str, dataset_id: int, created_at: Any) -> pd.DataFrame:
    return _store_for(url).datasets.frame(dataset_id, with_text=True).reset_index(drop=True)


@st.cache_resource(show_spinner="Loading the ratings…", max_entries=8)
def ratings(url: str, dataset_id: int, version: Any) -> pd.DataFrame:
    return _store_for(url).ratings.frame(dataset_id)


@st.cache_resource(show_spinner=False, max_entries=8)
def flags(url: str, dataset_id: int, version: Any) -> pd.DataFrame:
    return _store_for(url).flags.frame(dataset_id)


@st.cache_resource(show_spinner=False, max_entries=16)
def scores(url: str, dataset_id: int, created_at: Any, version: Any, rater: str, rater_version: str,
           scale: str = DEFAULT_SCALE) -> explore.Scores:
    frame = ratings(url, dataset_id, version)
    chosen = frame[(frame["rater"] == rater) & (frame["rater_version"] == rater_version)]
    return explore.align_scores(examples(url, dataset_id, created_at), chosen, scale=scale)


@st.cache_resource(show_spinner="Preparing the table…", max_entries=8)
def example_table(url: str, dataset_id: int, created_at: Any, version: Any, flag_version: Any,
                  scale: str = DEFAULT_SCALE) -> pd.DataFrame:
    return explore.example_table(examples(url, dataset_id, created_at), ratings(url, dataset_id, version),
                                 flags(url, dataset_id, flag_version), scale)


@st.cache_resource(show_spinner=False, max_entries=16)
def _rater_counts(url: str, dataset_id: int, version: Any) -> list[tuple[str, str, int]]:
    frame = ratings(url, dataset_id, version)
    ok = frame[frame["status"] == "ok"]
    if not len(ok):
        return []
    counts = ok.groupby(["rater", "rater_version"]).size().sort_values(ascending=False)
    return [(rater, rater_version, int(n)) for (rater, rater_version), n in counts.items()]


def rater_choices(info: DatasetInfo, version: Any) -> list[tuple[str, str, int]]:
    """(rater, version, ok ratings) for this dataset, most complete first; from the cached frame."""
    return _rater_counts(store().url, info.id, version)


@st.cache_resource(show_spinner="Reading the map…", max_entries=8)
def _map_for(url: str, dataset_id: int, created_at: Any, marker: Any) -> pd.DataFrame | None:
    from curation.cluster import dataset_map

    return dataset_map(_store_for(url), settings(), dataset_id)


def map_marker(info: DatasetInfo) -> int:
    """The newest finished map job of the dataset: cached map reads key on it, so a new map shows up."""
    finished = [j.id for j in jobs.all_jobs(store(), settings(), kind="map", dataset_id=info.id, limit=50)
                if j.status == "done"]
    return max(finished, default=0)


def dataset_map(info: DatasetInfo, marker: int) -> pd.DataFrame | None:
    """The dataset's cached map (id, x, y, cluster, cluster_name), None until a map job has run."""
    return _map_for(store().url, info.id, info.created_at, marker)


def score_scale() -> str:
    """The scale every page shows and thresholds scores on: 0–5 unless raw scores were asked for on Explore."""
    return st.session_state.get(SCALE_KEY, DEFAULT_SCALE)


def ratings_version() -> Any:
    return store().ratings.version()


def flags_version(dataset_id: int) -> Any:
    return store().flags.version(dataset_id)


# ----------------------------------------------------------------------------------------------------
# Jobs: launch, and a live list that polls the store


def launch_job(kind: str, params: dict[str, Any], title: str, action: str = "run_job") -> int | None:
    """Start a background job as the current person; shows why not if they may not."""
    reason = may(action, "launch jobs")
    if reason:
        st.warning(reason)
        return None
    try:
        dataset_id = jobs.dataset_id_named(store(), params.get("dataset"))
        job_id = jobs.start(store(), settings(), kind, params, title=title, by=person(), dataset_id=dataset_id)
    except (jobs.JobError, Forbidden) as err:
        st.error(str(err))
        return None
    st.toast(f"Job {job_id} started: {title}")
    return job_id


def job_panel(kinds: tuple[str, ...], heading: str = "Jobs", key: str = "jobs") -> None:
    """Running jobs with live progress and a cancel button; finished and failed jobs below."""

    @st.fragment(run_every=settings().studio.refresh_s)
    def panel() -> None:
        listed = jobs.all_jobs(store(), settings(), kind=kinds, limit=200)
        active = [j for j in listed if j.status in ("queued", "running")]
        _rerun_when_one_ends(active, key)
        st.subheader(heading)
        if not listed:
            st.caption("No jobs yet.")
        for job in active:
            _active_job(job, key)
        finished = [j for j in listed if j.status not in ("queued", "running")]
        if finished:
            st.dataframe(_job_rows(finished), hide_index=True, key=f"{key}_finished")
            _resume_box(finished, key)

    panel()


def job_watch(kinds: tuple[str, ...], dataset: str, key: str) -> None:
    """One progress line per running job of these kinds on ``dataset``; the page refreshes when one ends."""

    @st.fragment(run_every=settings().studio.refresh_s)
    def watch() -> None:
        dataset_id = jobs.dataset_id_named(store(), dataset)
        active = [] if dataset_id is None else jobs.all_jobs(
            store(), settings(), kind=kinds, dataset_id=dataset_id, active=True, limit=50)
        _rerun_when_one_ends(active, key)
        for job in active:
            text = f"#{job.id} {job.title} — {job.state}: {job.message}"
            st.progress(job.fraction, text=text + (f" ({job.done:,}/{job.total:,})" if job.total else ""))

    watch()


def _rerun_when_one_ends(active: list[jobs.JobInfo], key: str) -> None:
    watched_key = f"{key}_watched"
    ended = set(st.session_state.get(watched_key, ())) - {j.id for j in active}
    st.session_state[watched_key] = [j.id for j in active]
    if ended:
        st.rerun(scope="app")  # what the job produced (ratings, flags, a map) now shows on the page


def _active_job(job: jobs.JobInfo, key: str) -> None:
    with st.container(border=True):
        st.write(f"**#{job.id} {job.title}** — {job.state}, by {job.created_by or 'unknown'}")
        st.progress(job.fraction, text=f"{job.done:,}/{job.total:,} — {job.message}" if job.total else job.message)
        if job.stale:
            st.warning("Its worker stopped answering; cancel it, then resume it below.")
        if st.button("Cancel", key=f"{key}_cancel_{job.id}", disabled=job.cancel_requested):
            reason = _cancel_refusal(job)
            if reason:
                st.warning(reason)
            else:
                try:
                    jobs.cancel(store(), settings(), job.id, by=person())
                except Forbidden as err:
                    st.warning(str(err))
                st.rerun(scope="fragment")


def _cancel_refusal(job: jobs.JobInfo) -> str | None:
    someone = person()
    if someone is None:
        return "Sign in (sidebar) to cancel jobs."
    if job.created_by != someone.name and not someone.may("cancel_any_job"):
        return f"Only {job.created_by} or a lead can cancel this job."
    return None


def _resume_box(finished: list[jobs.JobInfo], key: str) -> None:
    resumable = [j for j in finished if j.state in ("failed", "cancelled", "stale")]
    if not resumable or person() is None:
        return
    with st.expander("Resume a failed or cancelled job (work already stored is skipped)"):
        chosen = st.selectbox("Job", [j.id for j in resumable], format_func=lambda i: f"#{i}", key=f"{key}_resume_pick")
        if st.button("Resume", key=f"{key}_resume"):
            try:
                jobs.resume(store(), settings(), chosen, by=person())
            except (jobs.JobError, Forbidden) as err:
                st.error(str(err))
            st.rerun(scope="fragment")


def _job_rows(listed: list[jobs.JobInfo]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "job": j.id,
                "what": j.title,
                "state": j.state,
                "by": j.created_by,
                "progress": f"{j.done:,}/{j.total:,}" if j.total else "",
                "finished": j.finished_at.strftime("%Y-%m-%d %H:%M:%S") if j.finished_at else "",
                "message": j.error or j.message,
            }
            for j in listed
        ]
    )


def running_job(kind: str, dataset: str) -> jobs.JobInfo | None:
    """The queued or running job of ``kind`` on ``dataset``, if any (so a page does not launch a twin)."""
    dataset_id = jobs.dataset_id_named(store(), dataset)
    if dataset_id is None:
        return None
    for job in jobs.all_jobs(store(), settings(), kind=kind, dataset_id=dataset_id, active=True, limit=50):
        if not job.stale:
            return job
    return None
