"""The ``llm_calls`` table: every call to an LLM endpoint, what was asked, what came back, what it cost.

Keyed by a hash of the request (computed by :mod:`curation.llm.client`), so an identical request is
answered from here instead of being paid for again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from curation.store.db import Database
from curation.store.schema import LLMCall, utcnow

CHUNK = 500  # keys per IN (...) query: well under every backend's parameter limit


@dataclass(frozen=True)
class CallRow:
    """One call as stored; ``request`` never holds a key (it is the body sent, minus headers)."""

    key: str
    model: str
    request: dict[str, Any]
    status: str  # ok | error
    response_text: str | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 1
    latency_s: float = 0.0
    job_id: int | None = None


class Calls:
    def __init__(self, db: Database) -> None:
        self.db = db

    def answered(self, keys: Iterable[str]) -> dict[str, CallRow]:
        """The calls among ``keys`` that already have an answer (status ok)."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, CallRow] = {}
        with self.db.session() as session:
            for start in range(0, len(keys), CHUNK):
                query = select(LLMCall).where(LLMCall.key.in_(keys[start : start + CHUNK]), LLMCall.status == "ok")
                for row in session.scalars(query):
                    found[row.key] = _row(row)
        return found

    def save(self, rows: Sequence[CallRow]) -> None:
        """Insert calls; an answered call is never overwritten by a failure, and attempts add up across runs."""
        if not rows:
            return
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        values = [{**asdict(row), "created_at": utcnow()} for row in rows]
        with self.db.session() as session:
            statement = insert(LLMCall).values(values)
            updated = {name: statement.excluded[name] for name in values[0] if name != "key"}
            # The log says how many requests a key really cost, over every run that tried it.
            updated["attempts"] = LLMCall.attempts + statement.excluded.attempts
            session.execute(
                statement.on_conflict_do_update(index_elements=["key"], set_=updated, where=LLMCall.status != "ok")
            )

    def completion_tokens_mean(self, model: str) -> tuple[float, int]:
        """Mean completion tokens of this model's answered calls, and how many there are."""
        query = select(func.avg(LLMCall.completion_tokens), func.count()).where(
            LLMCall.model == model, LLMCall.status == "ok"
        )
        with self.db.session() as session:
            mean, count = session.execute(query).one()
        return float(mean or 0.0), int(count)

    def all(self, job_id: int | None = None) -> list[CallRow]:
        """Every stored call (of one job), oldest first: for audits and tests."""
        query = select(LLMCall).order_by(LLMCall.created_at, LLMCall.key)
        if job_id is not None:
            query = query.where(LLMCall.job_id == job_id)
        with self.db.session() as session:
            return [_row(row) for row in session.scalars(query)]


def _row(row: LLMCall) -> CallRow:
    return CallRow(
        key=row.key,
        model=row.model,
        request=row.request,
        status=row.status,
        response_text=row.response_text,
        error=row.error,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost_usd=row.cost_usd,
        attempts=row.attempts,
        latency_s=row.latency_s,
        job_id=row.job_id,
    )
