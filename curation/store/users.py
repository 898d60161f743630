"""Accounts for the embedded login: name, scrypt-hashed password, role (lead or annotator)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from sqlalchemy import select

from curation.store.db import Database
from curation.store.schema import User

ROLES = ("lead", "annotator", "voter")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class Account:
    name: str
    role: str


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


class Users:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, password: str, role: str = "annotator") -> Account:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if not name.strip() or len(password) < 4:
            raise ValueError("an account needs a name and a password of at least 4 characters")
        with self.db.session() as session:
            if session.get(User, name) is not None:
                raise ValueError(f"an account named '{name}' exists")
            session.add(User(name=name, password_hash=hash_password(password), role=role))
        return Account(name, role)

    def verify(self, name: str, password: str) -> Account | None:
        with self.db.session() as session:
            user = session.get(User, name)
            if user is None or not check_password(password, user.password_hash):
                return None
            return Account(user.name, user.role)

    def all(self) -> list[Account]:
        with self.db.session() as session:
            return [Account(u.name, u.role) for u in session.scalars(select(User).order_by(User.name))]
