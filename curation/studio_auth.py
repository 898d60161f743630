"""Who is acting in the studio: accounts from the store, or an OIDC identity, and what each role may do.

Viewing needs no account (signed-out visitors see the read-only pages). Acting (uploading, importing,
overriding, exporting, launching jobs) needs one, because every override and job carries the name of the
person behind it. The first lead is never whoever opens a fresh studio first: it is created with the CLI
(`python -m curation users add NAME --role lead`) or with the one-time token `./run studio` prints. Later
accounts are created by leads. Sign-in answers an unknown name as slowly as a wrong password and backs
off after repeated failures per name (counted in the store, so every process agrees).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from curation.config import AuthConfig
from curation.store import Store, utcnow
from curation.store.users import ROLES

__all__ = ["ROLES", "AuthError", "Forbidden", "Person", "TooManyFailures", "cli_person", "require"]

# Leads manage people and spend money; annotators curate. Read-only use needs no entry here.
# Voters (human study) only vote. Library calls that write check these with :func:`require`.
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "import": ("lead", "annotator"),
    "override": ("lead", "annotator"),
    "export": ("lead", "annotator"),
    "run_job": ("lead", "annotator"),
    # A paid LLM run costs real money: only a lead launches or resumes one.
    "run_paid_job": ("lead",),
    "cancel_any_job": ("lead",),
    "manage_accounts": ("lead",),
    # Reading a path on the server (not an upload) exposes the machine's files.
    "read_server_path": ("lead",),
    "train": ("lead",),
    "generate": ("lead",),
    "judge": ("lead",),
    "manage_studies": ("lead",),
    "vote": ("lead", "annotator", "voter"),
}


class AuthError(ValueError):
    """A sign-in or account request that cannot be honoured; the message says why."""


class Forbidden(PermissionError):
    """The acting person may not do this; the message says who may."""


class TooManyFailures(AuthError):
    """Sign-in refused without checking the password: too many recent failures for this name."""


@dataclass(frozen=True)
class Person:
    name: str
    role: str
    # "local" (an account in the store) or "oidc" (st.login identity).
    via: str = "local"

    def may(self, action: str) -> bool:
        return self.role in PERMISSIONS.get(action, ())


def cli_person(name: str = "cli") -> Person:
    """Who a CLI command acts as: the machine's owner, a local lead (they can read every file anyway)."""
    return Person(name or "cli", "lead", via="cli")


def needs_first_lead(store: Store) -> bool:
    """True while the store has no account at all: the studio asks for the one-time setup token."""
    return not store.users.all()


def issue_setup_token(store: Store) -> str | None:
    """A one-time token for creating the first lead, or None when accounts exist (`./run studio` prints it)."""
    return store.users.issue_setup_token() if needs_first_lead(store) else None


def create_first_lead(store: Store, name: str, password: str, token: str) -> Person:
    """The first lead, created by whoever holds the token `./run studio` printed (used once)."""
    if not needs_first_lead(store):
        raise AuthError("accounts exist already; ask a lead to create yours")
    _check_new_account(name, password)
    if not store.users.consume_setup_token(token):
        raise AuthError("that setup token is not valid (or was used); restart `./run studio` for a new one, or "
                        "create the lead with `python -m curation users add NAME --role lead`")
    account = store.users.create(name.strip(), password, role="lead")
    return Person(account.name, account.role)


def create_account(store: Store, by: Person | None, name: str, password: str, role: str) -> Person:
    require(by, "manage_accounts", "create accounts")
    _check_new_account(name, password)
    account = store.users.create(name.strip(), password, role=role)
    return Person(account.name, account.role)


def _check_new_account(name: str, password: str) -> None:
    # The same rules as store.users.create, checked before anything (a token) is spent.
    from curation.store.users import MIN_PASSWORD_CHARS

    if not name.strip():
        raise AuthError("an account needs a name")
    if len(password) < MIN_PASSWORD_CHARS:
        raise AuthError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")


def sign_in(store: Store, name: str, password: str, policy: AuthConfig | None = None) -> Person:
    """The account's person, or AuthError; after ``policy.max_failures`` failures the name must wait."""
    policy = policy or AuthConfig()
    name = name.strip()
    wait = backoff_left(store, name, policy)
    if wait > 0:
        raise TooManyFailures(f"too many failed sign-ins for this name; try again in {math.ceil(wait)} s")
    account = store.users.verify(name, password)
    if account is None:
        store.users.record_failure(name)
        # One message for both cases, so the form does not reveal which names exist.
        raise AuthError("unknown name or wrong password")
    store.users.clear_failures(name)
    return Person(account.name, account.role)


def backoff_left(store: Store, name: str, policy: AuthConfig, now: datetime | None = None) -> float:
    """Seconds ``name`` must still wait before the next attempt (0 when it may try now)."""
    failures = store.users.failures(name)
    over = failures.count - policy.max_failures
    if over < 0 or failures.last_at is None:
        return 0.0
    delay = min(policy.backoff_s * 2**over, policy.backoff_max_s)
    elapsed = ((now or utcnow()) - failures.last_at).total_seconds()
    return max(delay - elapsed, 0.0)


def oidc_person(store: Store, claims: Mapping[str, Any], policy: AuthConfig | None = None) -> Person:
    """An OIDC identity: named by email (or name/sub); a store account of that name gives the role,
    otherwise ``auth.oidc_default_role`` (a voter by default; never a lead)."""
    policy = policy or AuthConfig()
    name = str(claims.get("email") or claims.get("name") or claims.get("sub") or "").strip()
    if not name:
        raise AuthError("the identity provider sent no email, name or subject for this user")
    if policy.oidc_default_role not in ("voter", "annotator"):
        raise AuthError(f"auth.oidc_default_role must be voter or annotator, not {policy.oidc_default_role!r}")
    roles = {account.name: account.role for account in store.users.all()}
    return Person(name, roles.get(name, policy.oidc_default_role), via="oidc")


def refusal(person: Person | None, action: str, doing: str) -> str | None:
    """None when ``person`` may do ``action``; otherwise the sentence telling them what to do."""
    if person is None:
        return f"Sign in (sidebar) to {doing}."
    if not person.may(action):
        allowed = " or ".join(PERMISSIONS.get(action, ())) or "nobody"
        return f"Only a {allowed} can {doing}; you are signed in as {person.role}."
    return None


def require(person: Person | None, action: str, doing: str) -> Person:
    """The check every library call that writes, spends or reads a server path makes first."""
    reason = refusal(person, action, doing)
    if reason is not None:
        raise Forbidden(reason)
    assert person is not None
    return person
