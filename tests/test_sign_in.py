"""Sign-in: password length, no user enumeration by timing, back-off across processes, OIDC roles, first lead."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from curation.config import AuthConfig
from curation.store import Store
from curation.studio_auth import (
    AuthError,
    TooManyFailures,
    backoff_left,
    create_first_lead,
    issue_setup_token,
    needs_first_lead,
    oidc_person,
    sign_in,
)

POLICY = AuthConfig(max_failures=5, backoff_s=30.0, backoff_max_s=900.0)


def test_passwords_need_eight_characters(store: Store) -> None:
    with pytest.raises(ValueError, match="at least 8"):
        store.users.create("ann", "seven77", "annotator")
    store.users.create("ann", "eight888", "annotator")


def test_an_unknown_name_costs_one_scrypt_like_a_wrong_password(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Equal work, not a timing measurement: both answers run exactly one scrypt with the stored parameters.
    store.users.create("ann", "right-password", "annotator")
    from curation.store import users

    users._dummy_hash()  # built once per process, before the counting starts
    calls: list[int] = []
    real = hashlib.scrypt

    def counting(*args, **kwargs):
        calls.append(kwargs["n"])
        return real(*args, **kwargs)

    monkeypatch.setattr(users.hashlib, "scrypt", counting)
    assert store.users.verify("ann", "wrong-password") is None
    wrong = list(calls)
    calls.clear()
    assert store.users.verify("nobody", "wrong-password") is None
    assert calls == wrong == [2**14]


def test_failures_back_off_per_name_and_hold_across_store_connections(store: Store) -> None:
    store.users.create("ann", "right-password", "annotator")
    for _ in range(POLICY.max_failures):
        with pytest.raises(AuthError, match="unknown name or wrong password"):
            sign_in(store, "ann", "guess", POLICY)
    # Another process (a second connection to the same database) sees the same count.
    other = Store(store.url)
    try:
        with pytest.raises(TooManyFailures, match="try again in"):
            sign_in(other, "ann", "right-password", POLICY)
        # A different name is not held back by ann's failures, and unknown names back off the same way.
        with pytest.raises(AuthError, match="unknown name"):
            sign_in(other, "bob", "guess", POLICY)
    finally:
        other.close()
    failures = store.users.failures("ann")
    assert failures.count == POLICY.max_failures
    # The wait grows with every further failure and ends: measured against a given clock, not by sleeping.
    assert backoff_left(store, "ann", POLICY, now=failures.last_at) == POLICY.backoff_s
    store.users.record_failure("ann")
    later = store.users.failures("ann").last_at
    assert backoff_left(store, "ann", POLICY, now=later) == 2 * POLICY.backoff_s
    assert backoff_left(store, "ann", POLICY, now=later + timedelta(seconds=2 * POLICY.backoff_s)) == 0
    # Once the wait is over the right password works and resets the count.
    store.users.clear_failures("ann")
    assert sign_in(store, "ann", "right-password", POLICY).role == "annotator"
    assert store.users.failures("ann").count == 0


def test_oidc_identities_without_an_account_get_the_configured_least_privilege_role(store: Store) -> None:
    assert oidc_person(store, {"email": "stranger@example.org"}).role == "voter"
    assert oidc_person(store, {"email": "x@example.org"}, AuthConfig(oidc_default_role="annotator")).role == "annotator"
    with pytest.raises(AuthError, match="oidc_default_role"):
        oidc_person(store, {"email": "x@example.org"}, AuthConfig(oidc_default_role="lead"))
    store.users.create("boss@example.org", "long-enough-1", "lead")
    assert oidc_person(store, {"email": "boss@example.org"}).role == "lead"


def test_the_first_lead_needs_the_one_time_token(store: Store) -> None:
    assert needs_first_lead(store)
    with pytest.raises(AuthError, match="setup token"):
        create_first_lead(store, "first", "long-enough-1", "")
    stale = issue_setup_token(store)
    token = issue_setup_token(store)  # a new start replaces the earlier token
    assert token and stale and token != stale
    with pytest.raises(AuthError, match="setup token"):
        create_first_lead(store, "first", "long-enough-1", stale)
    with pytest.raises(AuthError, match="8 characters"):  # a bad password does not spend the token
        create_first_lead(store, "first", "short", token)
    assert create_first_lead(store, "first", "long-enough-1", token).role == "lead"
    assert not needs_first_lead(store) and issue_setup_token(store) is None
    with pytest.raises(AuthError):
        create_first_lead(store, "second", "long-enough-1", token)
    # Only the hash is stored.
    from sqlalchemy import select

    from curation.store.schema_security import SetupToken

    with store.db.session() as session:
        stored = list(session.scalars(select(SetupToken.token_hash)))
    assert token not in stored and hashlib.sha256(token.encode()).hexdigest() in stored
