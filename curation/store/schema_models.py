"""The model registry table: every fine-tuned model, what it was trained on and how it went."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from curation.store.schema import Base, utcnow


class TrainedModel(Base):
    """One training run's model. ``out_dir`` is unique: a resumed run updates its row, never adds one."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))  # running | done | cancelled | failed
    base_model: Mapped[str] = mapped_column(Text)  # what the user named (HF name, path, smollm2-135m)
    base_model_path: Mapped[str] = mapped_column(Text, default="")  # what was loaded
    method: Mapped[str] = mapped_column(String(16))  # lora | full
    adapter_path: Mapped[str] = mapped_column(Text, default="")  # <out>/adapter or <out>/model
    out_dir: Mapped[str] = mapped_column(Text, unique=True)
    data_source: Mapped[str] = mapped_column(Text, default="")
    data_hash: Mapped[str] = mapped_column(String(64), default="")  # the selection manifest's hash
    role: Mapped[str] = mapped_column(String(32), default="")  # selection | full pool | random (baselines)
    n_examples: Mapped[int] = mapped_column(Integer, default=0)
    preset: Mapped[str] = mapped_column(String(64))
    overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    final_loss: Mapped[float | None] = mapped_column(Float)
    eval_loss: Mapped[float | None] = mapped_column(Float)
    duration_s: Mapped[float | None] = mapped_column(Float)
    tokens_seen: Mapped[int | None] = mapped_column(Integer)
    steps: Mapped[int | None] = mapped_column(Integer)
    global_batch: Mapped[int | None] = mapped_column(Integer)
    machine: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
