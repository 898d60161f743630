"""The model registry: one row per training run's model (``store.models``).

Adapter folder layout (what a loader can rely on), for a run with output folder ``OUT``:

- ``OUT/adapter/`` — a PEFT adapter (``PeftModel.from_pretrained(base, OUT/adapter)``) plus the tokenizer;
  or ``OUT/model/`` for full fine-tuning (``AutoModelForCausalLM.from_pretrained``), tokenizer included.
  ``ModelInfo.adapter_path`` is that folder and ``ModelInfo.is_adapter`` says which.
- ``ModelInfo.base_model_path`` is the folder or Hugging Face name the base weights were loaded from.
- ``OUT/result.json`` — the run's summary; ``OUT/metrics.jsonl`` — one JSON object per logged step.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select

from curation.store.db import Database
from curation.store.schema import utcnow
from curation.store.schema_models import TrainedModel

FINISHED = ("done", "cancelled", "failed")


@dataclass(frozen=True)
class ModelInfo:
    id: int
    name: str
    status: str
    base_model: str
    base_model_path: str
    method: str
    adapter_path: str
    out_dir: str
    data_source: str
    data_hash: str
    role: str
    n_examples: int
    preset: str
    overrides: dict[str, Any]
    final_loss: float | None
    eval_loss: float | None
    duration_s: float | None
    tokens_seen: int | None
    steps: int | None
    global_batch: int | None
    machine: str
    job_id: int | None
    details: dict[str, Any]
    created_by: str
    created_at: datetime
    finished_at: datetime | None

    @property
    def is_adapter(self) -> bool:
        return self.method == "lora"


COLUMNS = tuple(f.name for f in fields(ModelInfo) if f.name not in ("id", "created_at"))


class Models:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, out_dir: str, **values: Any) -> ModelInfo:
        """Create the row of the run writing to ``out_dir``, or update it (a resumed run keeps its row)."""
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown model registry field(s): {', '.join(sorted(unknown))}")
        if values.get("status") in FINISHED and "finished_at" not in values:
            values["finished_at"] = utcnow()
        with self.db.session() as session:
            row = session.scalar(select(TrainedModel).where(TrainedModel.out_dir == out_dir))
            if row is None:
                row = TrainedModel(out_dir=out_dir, **{"name": out_dir, "status": "running", "base_model": "",
                                                         "method": "lora", "preset": "", **values})
                session.add(row)
            else:
                for key, value in values.items():
                    setattr(row, key, value)
            session.flush()
            return _info(row)

    def get(self, model_id: int) -> ModelInfo:
        with self.db.session() as session:
            row = session.get(TrainedModel, model_id)
            if row is None:
                raise LookupError(f"no trained model {model_id} in the registry")
            return _info(row)

    def all(self) -> list[ModelInfo]:
        with self.db.session() as session:
            return [_info(row) for row in session.scalars(select(TrainedModel).order_by(TrainedModel.id))]

    def for_job(self, job_id: int) -> ModelInfo | None:
        query = select(TrainedModel).where(TrainedModel.job_id == job_id).order_by(TrainedModel.id.desc()).limit(1)
        with self.db.session() as session:
            row = session.scalar(query)
            return None if row is None else _info(row)


def _info(row: TrainedModel) -> ModelInfo:
    values = {name: getattr(row, name) for name in COLUMNS}
    values["overrides"] = dict(row.overrides or {})
    values["details"] = dict(row.details or {})
    return ModelInfo(id=row.id, created_at=row.created_at, **values)
