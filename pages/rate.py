"""Rate: choose a rater, see what it will cost, launch a background job and watch it; past jobs below."""

from __future__ import annotations

import streamlit as st

from curation import explain, jobs
from curation.raters.run import CostEstimate, RateError, RateRequest, estimate_request, launch_rule, start_rating
from curation.studio_auth import Forbidden
from pages import _studio as studio

RATERS = {"iqs": "IQS — the local quality scorer (CaR), free, runs on this machine",
          "llm": "LLM — an OpenAI-compatible endpoint with the AlpaGasus prompt (0–5 with an explanation)"}

ALPAGASUS_TAU = 4.5  # the τ of `select --method threshold` in AlpaGasus (METHODS.md); Explore starts at the median

studio.page("Rate")
store = studio.store()
settings = studio.settings()


def rating_request(dataset: str) -> RateRequest | None:
    rater = st.radio("Rater", list(RATERS), format_func=RATERS.get, key="rate_rater")
    options: dict = {}
    if rater == "llm":
        left, right = st.columns(2)
        options["model"] = left.text_input("Model", value=settings.llm.model, key="rate_model")
        options["base_url"] = right.text_input("Endpoint (base URL)", value=settings.llm.base_url, key="rate_base_url")
        options["dimension"] = left.text_input("Dimension rated", value=settings.llm.dimension, key="rate_dimension")
        options["concurrency"] = int(right.number_input("Concurrent requests", 1, 256, value=settings.llm.concurrency,
                                                        key="rate_concurrency"))
        st.caption(f"The API key is read from {settings.llm.api_key_name} (environment or .streamlit/secrets.toml) "
                   "by the worker and sent only to the endpoints a lead configured for it (llm.key_base_urls); "
                   "it is never stored or shown.")
    try:
        return RateRequest(rater=rater, dataset=dataset, **options)
    except RateError as err:
        st.error(str(err))
        return None


@st.cache_data(show_spinner="Estimating the cost…", max_entries=16)
def cached_estimate(url: str, dataset_id: int, created_at, version, params: dict) -> CostEstimate:
    return estimate_request(RateRequest.from_params(params), settings, store)


def cost_box(info, request: RateRequest) -> float | None:
    """The dry run. Returns the most it can cost in USD (0 for the local scorer), None if it cannot run."""
    with st.container(border=True):
        st.markdown("**Before you launch**")
        if request.rater == "iqs":
            st.write(f"IQS scores the {info.n_examples:,} examples on this machine (about 100–200 per second on 2 "
                     "cores) and costs nothing; examples it already scored are skipped.")
            iqs_meaning()
            return 0.0
        try:
            estimate = cached_estimate(store.url, info.id, info.created_at, studio.ratings_version(), request.as_params())
        except (RateError, ValueError) as err:
            st.error(str(err))
            return None
        st.text("\n".join(estimate.lines()))
        return estimate.cost_usd_max


def iqs_meaning() -> None:
    """What the default τ means for IQS, measured on expert pairs the model never saw (the folder's meaning.json)."""
    meaning = explain.threshold_meaning(settings.iqs.weights or None, ALPAGASUS_TAU)
    if meaning:
        st.caption(f"Scores come on a 0–5 scale, where AlpaGasus keeps τ = {ALPAGASUS_TAU:g}. {meaning}")


def launch(info, request: RateRequest, cost: float | None) -> None:
    running = studio.running_job("rate", info.name)
    if running:
        st.caption(f"Job #{running.id} is already rating '{info.name}'; watch it below.")
    rule = launch_rule(request, settings)
    for why in rule.reasons:
        st.caption(f"Needs a lead: {why}.")
    reason = studio.may(rule.action, rule.doing)
    if reason:
        st.caption(reason)
    label = f"Rate {info.n_examples:,} examples with {request.rater.upper()}"
    if st.button(label, type="primary", disabled=reason is not None or cost is None, key="rate_launch"):
        try:
            job_id = start_rating(store, settings, request, studio.person())
        except (Forbidden, jobs.JobError) as err:
            st.warning(str(err))
        else:
            st.toast(f"Job {job_id} started: {request.title()}")


def main() -> None:
    info = studio.pick_dataset("rate")
    request = rating_request(info.name) if info is not None else None
    if info is not None and request is not None:
        launch(info, request, cost_box(info, request))
    studio.job_panel(("rate",), heading="Rating jobs", key="rate_jobs")


main()
