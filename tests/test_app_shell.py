"""The studio shell: first start builds the demo, who is acting (first lead, sign in/out, accounts, OIDC)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from studio_helpers import APP, point_studio_at, studio, table_with

from curation.demo import DEMO_POOLS


@pytest.fixture
def studio_env(monkeypatch, settings, sqlite_store):
    point_studio_at(monkeypatch, settings, sqlite_store)
    return sqlite_store


def test_first_start_builds_the_demo_and_lists_it_first(studio_env):
    app = studio()
    assert app.title[0].value == "Data"
    listed = table_with(app, "dataset")
    assert list(listed["dataset"]) == [pool.name for pool in DEMO_POOLS]
    sizes = dict(zip(listed["dataset"], listed["examples"]))
    assert sizes == {d.name: d.n_examples for d in studio_env.datasets.all()}
    assert all(size > 900 for size in sizes.values())
    # A newcomer can look without an account; the first lead needs the token `./run studio` printed.
    assert "one-time token" in app.sidebar.info[0].value


def test_an_existing_workspace_is_not_rebuilt(studio_env):
    studio_env.datasets.create("mine", [], created_by="someone")
    app = studio()
    assert [d.name for d in studio_env.datasets.all()] == ["mine"]
    assert list(table_with(app, "dataset")["dataset"]) == ["mine"]


def test_the_first_visitor_does_not_become_lead_without_the_token(studio_env):
    studio_env.datasets.create("mine", [], created_by="someone")
    app = studio()
    app.sidebar.text_input(key="first_lead_name").input("mallory")
    app.sidebar.text_input(key="first_lead_password").input("secret-12")
    app.sidebar.form_submit_button[0].click().run()
    assert "setup token is not valid" in app.sidebar.error[0].value
    assert studio_env.users.all() == [] and "studio_person" not in app.session_state


def test_the_first_lead_account_signs_its_creator_in(studio_env):
    from curation.studio_auth import issue_setup_token

    studio_env.datasets.create("mine", [], created_by="someone")
    token = issue_setup_token(studio_env)  # what `./run studio` prints on the studio's machine
    app = studio()
    app.sidebar.text_input(key="first_lead_name").input("lea")
    app.sidebar.text_input(key="first_lead_password").input("secret-1")
    app.sidebar.text_input(key="first_lead_token").input(token)
    app.sidebar.form_submit_button[0].click().run()
    assert not app.exception
    assert [(a.name, a.role) for a in studio_env.users.all()] == [("lea", "lead")]
    assert "Signed in as lea (lead)." in [t.value for t in app.sidebar.text]
    # A second visitor is no longer offered a lead account: they must sign in.
    other = studio()
    assert other.sidebar.form_submit_button[0].label == "Sign in"


def test_sign_in_with_a_wrong_password_is_refused_in_one_sentence(studio_env):
    studio_env.datasets.create("mine", [], created_by="someone")
    studio_env.users.create("ann", "pass-1234", "annotator")
    app = studio()
    app.sidebar.text_input(key="sign_in_name").input("ann")
    app.sidebar.text_input(key="sign_in_password").input("wrong")
    app.sidebar.form_submit_button[0].click().run()
    assert app.sidebar.error[0].value == "unknown name or wrong password"
    assert "studio_person" not in app.session_state
    app.sidebar.text_input(key="sign_in_password").input("pass-1234")
    app.sidebar.form_submit_button[0].click().run()
    assert app.session_state["studio_person"]["name"] == "ann"
    app.sidebar.button(key="sign_out").click().run()
    assert "studio_person" not in app.session_state


def test_a_lead_creates_an_annotator_account_and_an_annotator_cannot(studio_env):
    studio_env.datasets.create("mine", [], created_by="someone")
    studio_env.users.create("lea", "pass-1234", "lead")
    lead = studio(person=("lea", "lead"))
    lead.sidebar.text_input(key="new_account_name").input("ann")
    lead.sidebar.text_input(key="new_account_password").input("pass-5678")
    lead.sidebar.form_submit_button[0].click().run()
    assert ("ann", "annotator") in [(a.name, a.role) for a in studio_env.users.all()]
    annotator = studio(person=("ann", "annotator"))
    assert not annotator.sidebar.text_input  # no account form for annotators


def test_oidc_identity_is_the_person_acting(monkeypatch, studio_env):
    monkeypatch.setenv("CURATION__STUDIO__AUTH", "oidc")
    studio_env.datasets.create("mine", [], created_by="someone")
    studio_env.users.create("lea@example.com", "unused-password", "lead")
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.secrets["auth"] = {"client_id": "x", "client_secret": "y", "server_metadata_url": "https://idp.invalid/.well-known",
                           "redirect_uri": "http://localhost/oauth2callback", "cookie_secret": "z"}
    app.user = {"is_logged_in": True, "email": "lea@example.com", "name": "Lea"}
    app.run()
    assert not app.exception
    assert "Signed in as lea@example.com (lead)." in [t.value for t in app.sidebar.text]


def test_an_oidc_stranger_is_a_voter_and_cannot_import(monkeypatch, studio_env):
    monkeypatch.setenv("CURATION__STUDIO__AUTH", "oidc")
    studio_env.datasets.create("mine", [], created_by="someone")
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.secrets["auth"] = {"client_id": "x", "client_secret": "y", "server_metadata_url": "https://idp.invalid/.well-known",
                           "redirect_uri": "http://localhost/oauth2callback", "cookie_secret": "z"}
    app.user = {"is_logged_in": True, "email": "stranger@example.com", "name": "S"}
    app.run()
    assert "Signed in as stranger@example.com (voter)." in [t.value for t in app.sidebar.text]
    assert app.title[0].value == "Vote"  # a voter's only page: no data, no import


def test_a_broken_setting_is_one_sentence(monkeypatch, studio_env):
    monkeypatch.setenv("CURATION__STUDIO__REFRESH_S", "often")
    app = studio()
    assert app.error[0].value.startswith("The studio cannot start: environment variable CURATION__STUDIO__REFRESH_S")


def test_repeated_wrong_passwords_make_the_name_wait_even_with_the_right_one(studio_env):
    studio_env.datasets.create("mine", [], created_by="someone")
    studio_env.users.create("ann", "pass-1234", "annotator")
    app = studio()
    app.sidebar.text_input(key="sign_in_name").input("ann")
    for _ in range(5):
        app.sidebar.text_input(key="sign_in_password").input("wrong-guess")
        app.sidebar.form_submit_button[0].click().run()
        assert app.sidebar.error[0].value == "unknown name or wrong password"
    app.sidebar.text_input(key="sign_in_password").input("pass-1234")
    app.sidebar.form_submit_button[0].click().run()
    assert app.sidebar.error[0].value.startswith("too many failed sign-ins for this name; try again in")
    assert "studio_person" not in app.session_state
    # A fresh session (another browser, another server process) is held back the same way: it is in the store.
    other = studio()
    other.sidebar.text_input(key="sign_in_name").input("ann")
    other.sidebar.text_input(key="sign_in_password").input("pass-1234")
    other.sidebar.form_submit_button[0].click().run()
    assert "too many failed sign-ins" in other.sidebar.error[0].value
