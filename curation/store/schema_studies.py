"""Tables of the human study (blind A/B votes): studies, their items, votes and reservations.

``study_items.votes`` and ``study_items.taken`` are counters kept in step with ``study_votes`` and
``study_reservations`` inside the same transactions: ``taken`` = counted votes + live first-time
reservations, so the queue reads ``taken < target`` from an index (study, taken, position) without
counting rows, and a locked item row is the unit two voters compete for.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from curation.store.schema import Base, utcnow


class Study(Base):
    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    # W/T/L are from ``model``'s point of view; ``baseline`` is the other side. Never shown to voters.
    model: Mapped[str] = mapped_column(String(256))
    baseline: Mapped[str] = mapped_column(String(256))
    votes_per_item: Mapped[int] = mapped_column(Integer, default=3)
    # Empty list: every account that may vote; else only these names.
    voters: Mapped[list[Any]] = mapped_column(default=list)
    repeat_share: Mapped[float] = mapped_column(Float, default=0.1)
    lease_s: Mapped[float] = mapped_column(Float, default=600.0)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)


class StudyItem(Base):
    __tablename__ = "study_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    item_key: Mapped[str] = mapped_column(String(256))
    category: Mapped[str] = mapped_column(String(256), default="")
    testset: Mapped[str] = mapped_column(String(256), default="")
    instruction: Mapped[str] = mapped_column(Text)
    input: Mapped[str] = mapped_column(Text, default="")
    model_answer: Mapped[str] = mapped_column(Text)
    baseline_answer: Mapped[str] = mapped_column(Text)
    votes: Mapped[int] = mapped_column(Integer, default=0)  # counted votes (not skips, not repeats)
    taken: Mapped[int] = mapped_column(Integer, default=0)  # votes + live first-time reservations
    __table_args__ = (
        UniqueConstraint("study_id", "item_key", name="uq_study_items_key"),
        Index("ix_study_items_queue", "study_id", "taken", "position"),
    )


class StudyVote(Base):
    """One voter's answer on one item (``choice`` skip is kept too, so the voter is not asked again)."""

    __tablename__ = "study_votes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("study_items.id", ondelete="CASCADE"))
    voter: Mapped[str] = mapped_column(String(128))
    choice: Mapped[str] = mapped_column(String(8))  # A | B | neither | skip (what the voter clicked)
    model_shown_as: Mapped[str] = mapped_column(String(1))  # A | B: the side ``study.model`` was shown on
    verdict: Mapped[str] = mapped_column(String(8))  # win | tie | lose for study.model; skip for a skip
    is_repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str] = mapped_column(Text, default="")
    shown_at: Mapped[datetime] = mapped_column()
    voted_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        UniqueConstraint("item_id", "voter", "is_repeat", name="uq_study_votes_once"),
        Index("ix_study_votes_voter", "study_id", "voter"),
    )


class StudyReservation(Base):
    """The item a voter is looking at: at most one per voter and study, until ``expires_at``."""

    __tablename__ = "study_reservations"
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True)
    voter: Mapped[str] = mapped_column(String(128), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("study_items.id", ondelete="CASCADE"))
    model_shown_as: Mapped[str] = mapped_column(String(1))
    is_repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    reserved_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
