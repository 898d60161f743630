"""Tables of the pairwise judges: one row per comparison run, one per item and order judged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from curation.store.schema import Base, utcnow


class JudgeRun(Base):
    """A comparison: model A vs model B (or the references) on one test set, by one judge (or imported)."""

    __tablename__ = "judge_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Hash of judge, version, models and the items' texts: the same comparison asked again is this run.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(512))
    judge: Mapped[str] = mapped_column(String(32))  # vicuna | zheng | pandalm
    judge_model: Mapped[str] = mapped_column(String(256))
    judge_version: Mapped[str] = mapped_column(String(64))
    model_a: Mapped[str] = mapped_column(String(256))
    model_b: Mapped[str] = mapped_column(String(256))
    testset: Mapped[str] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(32))  # run | import
    n_items: Mapped[int] = mapped_column(Integer, default=0)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    job_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Judgment(Base):
    """One review of one item in one order (``ab``: A's answer shown first; ``ba``: shown second)."""

    __tablename__ = "judgments"
    run_id: Mapped[int] = mapped_column(ForeignKey("judge_runs.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    order_shown: Mapped[str] = mapped_column(String(2), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)  # the item's place in the comparison
    category: Mapped[str | None] = mapped_column(String(256))
    instruction: Mapped[str] = mapped_column(Text)
    input: Mapped[str] = mapped_column(Text, default="")
    answer_a: Mapped[str] = mapped_column(Text)
    answer_b: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # ok | unparsed | error
    winner: Mapped[str | None] = mapped_column(String(4))  # a | b | tie (models, not positions)
    score_a: Mapped[float | None] = mapped_column(Float)
    score_b: Mapped[float | None] = mapped_column(Float)
    raw: Mapped[str | None] = mapped_column(Text)  # the review as the judge wrote it (or the call's error)
    reason: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(Text)  # PandaLM's reference answer
    problem: Mapped[str | None] = mapped_column(Text)  # why unparsed
    call_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
