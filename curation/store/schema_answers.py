"""The ``answers`` table: one model's answer to one test item under one decoding setting."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from curation.store.schema import Base, utcnow


class Answer(Base):
    """Generated or imported; unique per (model, test set, item, decoding) so a resumed run skips it."""

    __tablename__ = "answers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(String(512))
    testset: Mapped[str] = mapped_column(String(256))
    item_id: Mapped[str] = mapped_column(String(128))
    # sha256 (16 hex) of the decoding settings; "imported" for answers read from a file.
    decoding_hash: Mapped[str] = mapped_column(String(64))
    decoding: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # sha256 of the exact prompt text the model saw (empty when an imported file does not say).
    prompt_sha256: Mapped[str] = mapped_column(String(64), default="")
    output: Mapped[str] = mapped_column(Text)
    finish_reason: Mapped[str] = mapped_column(String(16))  # stop | truncated | unknown
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # Wall time of the answer; for a batch, the batch's time divided by its size.
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    source: Mapped[str] = mapped_column(String(512), default="generated")  # or "imported:<file>"
    job_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    __table_args__ = (
        UniqueConstraint("model_id", "testset", "item_id", "decoding_hash", name="uq_answers_model_item_decoding"),
        Index("ix_answers_testset_item", "testset", "item_id"),
    )
