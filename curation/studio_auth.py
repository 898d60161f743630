"""Who is acting in the studio: accounts from the store, or an OIDC identity, and what each role may do.

Viewing needs no account. Acting (importing, overriding, launching jobs) needs one, because every
override and job carries the name of the person behind it. The first account of an empty store may be
created by whoever opens the studio first, and it is a lead; later accounts are created by leads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curation.store import Store
from curation.store.users import ROLES

__all__ = ["ROLES", "AuthError", "Forbidden", "Person", "require"]

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


@dataclass(frozen=True)
class Person:
    name: str
    role: str
    # "local" (an account in the store) or "oidc" (st.login identity).
    via: str = "local"

    def may(self, action: str) -> bool:
        return self.role in PERMISSIONS.get(action, ())


def needs_first_lead(store: Store) -> bool:
    """True while the store has no account at all: the studio offers to create the first lead."""
    return not store.users.all()


def create_first_lead(store: Store, name: str, password: str) -> Person:
    if not needs_first_lead(store):
        raise AuthError("accounts exist already; ask a lead to create yours")
    account = store.users.create(name.strip(), password, role="lead")
    return Person(account.name, account.role)


def create_account(store: Store, by: Person | None, name: str, password: str, role: str) -> Person:
    if by is None or not by.may("manage_accounts"):
        raise AuthError("only a lead can create accounts")
    account = store.users.create(name.strip(), password, role=role)
    return Person(account.name, account.role)


def sign_in(store: Store, name: str, password: str) -> Person:
    account = store.users.verify(name.strip(), password)
    if account is None:
        # One message for both cases, so the form does not reveal which names exist.
        raise AuthError("unknown name or wrong password")
    return Person(account.name, account.role)


def oidc_person(store: Store, claims: Mapping[str, Any]) -> Person:
    """An OIDC identity: named by email (or name/sub); a store account of that name gives the role."""
    name = str(claims.get("email") or claims.get("name") or claims.get("sub") or "").strip()
    if not name:
        raise AuthError("the identity provider sent no email, name or subject for this user")
    roles = {account.name: account.role for account in store.users.all()}
    return Person(name, roles.get(name, "annotator"), via="oidc")


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
