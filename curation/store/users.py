"""Accounts for the embedded login: name, scrypt-hashed password, role; sign-in failures; setup tokens."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from curation.store.db import Database
from curation.store.schema import User, utcnow
from curation.store.schema_security import SetupToken, SignInFailure

ROLES = ("lead", "annotator", "voter")
MIN_PASSWORD_CHARS = 8
NAME_MAX_CHARS = 128
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class Account:
    name: str
    role: str


@dataclass(frozen=True)
class Failures:
    count: int
    last_at: datetime | None


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = hash_password(password, base64.b64decode(salt)).split("$")[2]
    return hmac.compare_digest(expected, digest)


@functools.cache
def _dummy_hash() -> str:
    # Checked against when the name is unknown, so an unknown name costs the same scrypt as a wrong password.
    return hash_password(secrets.token_urlsafe(16))


def _token_hash(token: str) -> str:
    # Tokens carry 128 random bits, so a plain SHA-256 is enough (no guessing to slow down).
    return hashlib.sha256(token.strip().encode()).hexdigest()


class Users:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, password: str, role: str = "annotator") -> Account:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if not name.strip() or len(name) > NAME_MAX_CHARS:
            raise ValueError(f"an account needs a name of 1 to {NAME_MAX_CHARS} characters")
        if len(password) < MIN_PASSWORD_CHARS:
            raise ValueError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
        with self.db.session() as session:
            if session.get(User, name) is not None:
                raise ValueError(f"an account named '{name}' exists")
            session.add(User(name=name, password_hash=hash_password(password), role=role))
        return Account(name, role)

    def verify(self, name: str, password: str) -> Account | None:
        """The account if the password is right; an unknown name takes as long as a wrong password."""
        with self.db.session() as session:
            user = session.get(User, name[:NAME_MAX_CHARS])
            account = None if user is None else Account(user.name, user.role)
            stored = _dummy_hash() if user is None else user.password_hash
        matches = check_password(password, stored)
        return account if matches and account is not None else None

    def all(self) -> list[Account]:
        with self.db.session() as session:
            return [Account(u.name, u.role) for u in session.scalars(select(User).order_by(User.name))]

    # --- failed sign-ins (the back-off) ----------------------------------------------------------

    def failures(self, name: str) -> Failures:
        with self.db.session() as session:
            row = session.get(SignInFailure, name[:NAME_MAX_CHARS])
            return Failures(0, None) if row is None else Failures(row.failures, row.last_failure_at)

    def record_failure(self, name: str) -> Failures:
        """Count one more failed sign-in for ``name``; atomic across processes (an UPDATE, else an INSERT)."""
        key = name[:NAME_MAX_CHARS]
        for _ in range(3):
            now = utcnow()
            try:
                with self.db.session() as session:
                    changed = session.execute(
                        update(SignInFailure).where(SignInFailure.name == key)
                        .values(failures=SignInFailure.failures + 1, last_failure_at=now)
                    ).rowcount
                    if not changed:
                        session.add(SignInFailure(name=key, failures=1, last_failure_at=now))
                return self.failures(key)
            except IntegrityError:  # another process inserted the row first: update it instead
                continue
        return self.failures(key)

    def clear_failures(self, name: str) -> None:
        with self.db.session() as session:
            session.execute(delete(SignInFailure).where(SignInFailure.name == name[:NAME_MAX_CHARS]))

    # --- one-time setup tokens (the first lead) ---------------------------------------------------

    def issue_setup_token(self) -> str:
        """A new one-time token for creating the first lead; earlier unused tokens stop working."""
        token = secrets.token_urlsafe(16)
        with self.db.session() as session:
            session.execute(delete(SetupToken).where(SetupToken.used_at.is_(None)))
            session.add(SetupToken(token_hash=_token_hash(token)))
        return token

    def consume_setup_token(self, token: str) -> bool:
        """True once for a valid token (it is marked used in the same statement), False otherwise."""
        if not token.strip():
            return False
        with self.db.session() as session:
            used = session.execute(
                update(SetupToken)
                .where(SetupToken.token_hash == _token_hash(token), SetupToken.used_at.is_(None))
                .values(used_at=utcnow())
            ).rowcount
        return used == 1
