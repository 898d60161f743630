"""τ and CaR's n1/n2 belong to a dataset and a rater: the values set for that pair, remembered for the session.

Explore sets τ, Map sets n1/n2, Export may change either; every page that uses them reads them here, so
switching dataset (or rater) and back finds the values where they were left and each page names the one
in force. Not a page (the leading underscore).
"""

from __future__ import annotations

import streamlit as st

TAU_KEY = "studio_tau_by_rater"
CAR_KEY = "studio_car_by_rater"
LAST_KEY = "studio_last_choice"


def tau_for(dataset: str, rater: str, version: str, scale: str) -> float | None:
    """The τ set for this dataset + rater on this scale (the studio's "0-5" or "raw") in this session, or None.

    Keyed by the scale asked for, not the score field used: a rater without a 0–5 score is thresholded on
    its raw one under either scale, and every page must find the same τ for it."""
    return st.session_state.get(TAU_KEY, {}).get((dataset, rater, version, scale))


def remember_tau(dataset: str, rater: str, version: str, scale: str, tau: float) -> None:
    st.session_state.setdefault(TAU_KEY, {})[(dataset, rater, version, scale)] = float(tau)
    # What Export offers first for this dataset: the method and rater last used on it.
    st.session_state.setdefault(LAST_KEY, {})[dataset] = ("threshold", rater, version)


def car_for(dataset: str, rater: str, version: str) -> dict[str, int] | None:
    """``{"n1", "n2"}`` set for this dataset + rater in this session, or None."""
    return st.session_state.get(CAR_KEY, {}).get((dataset, rater, version))


def remember_car(dataset: str, rater: str, version: str, n1: int, n2: int) -> None:
    st.session_state.setdefault(CAR_KEY, {})[(dataset, rater, version)] = {"n1": int(n1), "n2": int(n2)}
    st.session_state.setdefault(LAST_KEY, {})[dataset] = ("car", rater, version)


def last_choice(dataset: str) -> tuple[str, str, str] | None:
    """(method, rater, rater version) last set on ``dataset`` (Explore's τ or Map's n1/n2), or None."""
    return st.session_state.get(LAST_KEY, {}).get(dataset)
