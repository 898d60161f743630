"""The human study in a real browser: two voters in two browser contexts vote at once, the lead watches.

The voters see only the voting page, and neither the page text nor its HTML names a model; the lead's
Studies page updates by itself (st.fragment polling) as the votes land. Screenshots under
test-artifacts/e2e/ (git-ignored).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_browser_e2e import ARTIFACTS, CHROMIUM_ARGS, chromium, settle, studio_url, workspace  # noqa: F401 (fixtures)

from curation.config import load_settings
from curation.store import Store
from curation.store.studies import ItemRow

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MODEL, BASELINE = "alpagasus-9k-model", "alpaca-52k-model"
N_ITEMS, VOTES = 4, 2


@pytest.fixture
def study_store(workspace: Path):  # noqa: F811 (the imported fixture)
    store = Store.open(load_settings(env={"CURATION_WORKSPACE": str(workspace)}))
    store.datasets.create("mine", [], created_by="tests")  # no demo build: not what this test is about
    for name, role in (("lea", "lead"), ("vic", "voter"), ("val", "voter")):
        store.users.create(name, f"{name}-pass-1", role)
    items = [ItemRow(f"q{i}", f"Name a prime number above {10 * i}.", "", f"{10 * i + 1 if i else 2} is prime.",
                     f"I think {10 * i + 4} is prime.", category="math") for i in range(N_ITEMS)]
    store.studies.create("primes", MODEL, BASELINE, items, created_by="lea", votes_per_item=VOTES, repeat_share=0.0)
    yield store
    store.close()


def sign_in(page, url: str, name: str) -> None:
    page.goto(url)
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_label("Name", exact=True).fill(name)
    sidebar.get_by_label("Password", exact=True).fill(f"{name}-pass-1")
    sidebar.get_by_role("button", name="Sign in").click()
    sidebar.get_by_text("Signed in as").wait_for()
    settle(page)


def choose_and_submit(page, option: str) -> None:
    settle(page)
    page.get_by_role("radiogroup").get_by_text(option, exact=True).click()
    page.get_by_role("button", name="Submit").click()


def test_two_voters_vote_at_once_while_the_lead_watches(studio_url, study_store, chromium):  # noqa: F811
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        contexts = [browser.new_context(viewport={"width": 1300, "height": 1000}) for _ in range(3)]
        lead, vic, val = (context.new_page() for context in contexts)
        for page in (lead, vic, val):
            page.set_default_timeout(90_000)

        # The lead opens the study's results: nothing voted yet.
        sign_in(lead, studio_url, "lea")
        lead.locator('[data-testid="stSidebarNav"]').get_by_text("Studies", exact=True).click()
        lead.get_by_text(f"0 of {N_ITEMS * VOTES} votes", exact=False).wait_for()

        # Each voter signs in and lands on Vote, the only page they have.
        for page, name in ((vic, "vic"), (val, "val")):
            sign_in(page, studio_url, name)
            page.get_by_role("heading", name="Vote", level=1).wait_for()
            page.get_by_text(f"0 done, {N_ITEMS} to go").wait_for()
            page.get_by_role("radiogroup").wait_for()
            settle(page)
            links = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
            assert all("Vote" in link for link in links), links
            html = page.content()
            for secret in (MODEL, BASELINE, "primes", "Studies"):
                assert secret not in html, f"{secret} is in {name}'s page"
            assert "Answer A is significantly better." in html and "Comparing these two answers" in html
        vic.screenshot(path=str(ARTIFACTS / "study-01-voter-page.png"))

        # Both vote on every item, their clicks interleaved so the submissions overlap.
        for done in range(1, N_ITEMS + 1):
            choose_and_submit(vic, "1. Answer A is significantly better.")
            choose_and_submit(val, "3. Neither is significantly better.")
            for page, name in ((vic, "vic"), (val, "val")):
                try:
                    page.get_by_text(f"{done} done, {N_ITEMS - done} to go").wait_for()
                except Exception:
                    page.screenshot(path=str(ARTIFACTS / f"study-failure-{name}.png"), full_page=True)
                    raise
                assert MODEL not in page.content() and BASELINE not in page.content()
        for page in (vic, val):
            page.get_by_text("You have answered every question open to you").wait_for()

        # The lead's page updated by itself: every vote counted, each item complete.
        lead.get_by_text(f"{N_ITEMS * VOTES} of {N_ITEMS * VOTES} votes; {N_ITEMS} of {N_ITEMS} items complete").wait_for()
        settle(lead)
        lead.screenshot(path=str(ARTIFACTS / "study-02-lead-results.png"), full_page=True)
        assert re.search(MODEL, lead.content())  # the lead, unlike the voters, sees which model is which
        for context in contexts:
            context.close()
        browser.close()

    votes = study_store.studies.votes_frame(study_store.studies.get("primes").id)
    assert len(votes) == N_ITEMS * VOTES and not votes.duplicated(["item_key", "voter"]).any()
    assert votes.groupby("item_key").size().eq(VOTES).all()
    assert set(votes[votes["voter"] == "val"]["verdict"]) == {"tie"}
