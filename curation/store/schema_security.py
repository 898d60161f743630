"""Tables for sign-in safety: failed attempts per name (the back-off) and one-time setup tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from curation.store.schema import Base, utcnow


class SignInFailure(Base):
    """Consecutive failed sign-ins for a name (known or not), kept in the store so every process agrees."""

    __tablename__ = "sign_in_failures"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(default=utcnow)


class SetupToken(Base):
    """A one-time token that lets its holder create the first lead; only its SHA-256 is stored."""

    __tablename__ = "setup_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(default=None)
