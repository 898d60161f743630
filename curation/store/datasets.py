"""Datasets, their examples and the rows that were rejected on import."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, select

from curation.formats.rows import Rejection
from curation.records import Record
from curation.store.db import Database
from curation.store.schema import Dataset, Example, RejectedRow


class NotFound(LookupError):
    """A named thing is not in the store; the message lists what is."""


class AlreadyExists(ValueError):
    pass


class InvalidName(ValueError):
    """A dataset name that is empty, too long or holds characters a file or URL name must not have."""


NAME_MAX_CHARS = 64
# Names become file names (exports) and URL parts: letters, digits, dot, dash, underscore; no leading
# dot or dash, so no "..", no hidden file, no option-like name.
_SAFE_NAME = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9._-]{{0,{NAME_MAX_CHARS - 1}}}")


def check_name(name: str) -> str:
    """``name`` if it is a valid dataset name; otherwise :class:`InvalidName` saying what to change."""
    if not name or not name.strip():
        raise InvalidName("a dataset needs a name; use letters, digits, '.', '-' or '_'")
    if len(name) > NAME_MAX_CHARS:
        raise InvalidName(f"the dataset name has {len(name)} characters; use at most {NAME_MAX_CHARS}")
    if not _SAFE_NAME.fullmatch(name):
        raise InvalidName(
            f"the dataset name {name!r} may hold only letters, digits, '.', '-' and '_', and must not start with "
            "'.' or '-'; choose another"
        )
    return name


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    name: str
    n_examples: int
    n_rejected: int
    format: str
    source_path: str
    content_hash: str
    created_by: str
    created_at: datetime
    meta: dict[str, Any]


def content_hash(record_ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(record_ids)).encode()).hexdigest()[:32]


class Datasets:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        name: str,
        records: Sequence[Record],
        rejections: Sequence[Rejection] = (),
        source_path: str = "",
        fmt: str = "",
        created_by: str = "",
        replace: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> DatasetInfo:
        """Store a dataset and its rejected rows in one transaction: all of it or nothing.

        Names are unique ignoring case (exports are files, and some file systems ignore case).
        """
        check_name(name)
        with self.db.session() as session:
            existing = session.scalar(select(Dataset).where(func.lower(Dataset.name) == name.lower()))
            if existing is not None:
                if not replace or existing.name != name:
                    raise AlreadyExists(f"a dataset named '{existing.name}' exists; choose another name or replace it")
                session.delete(existing)
                session.flush()
            dataset = Dataset(
                name=name,
                source_path=source_path,
                format=fmt,
                n_examples=len(records),
                n_rejected=len(rejections),
                content_hash=content_hash(r.id for r in records),
                created_by=created_by,
                meta=meta or {},
            )
            session.add(dataset)
            session.flush()
            self.db.bulk_insert(session, Example, [_example_row(dataset.id, i, r) for i, r in enumerate(records)])
            self.db.bulk_insert(session, RejectedRow, [_rejection_row(dataset.id, i, r) for i, r in enumerate(rejections)])
            return _info(dataset)

    def all(self) -> list[DatasetInfo]:
        with self.db.session() as session:
            return [_info(d) for d in session.scalars(select(Dataset).order_by(Dataset.id))]

    def get(self, name_or_id: str | int) -> DatasetInfo:
        with self.db.session() as session:
            column = Dataset.id if isinstance(name_or_id, int) else Dataset.name
            dataset = session.scalar(select(Dataset).where(column == name_or_id))
            if dataset is None:
                names = ", ".join(session.scalars(select(Dataset.name).order_by(Dataset.id))) or "none yet"
                raise NotFound(f"no dataset '{name_or_id}' in the store (datasets: {names})")
            return _info(dataset)

    def delete(self, name: str) -> None:
        info = self.get(name)
        with self.db.session() as session:
            session.execute(delete(Dataset).where(Dataset.id == info.id))

    def records(self, dataset_id: int) -> list[Record]:
        """The examples in import order."""
        with self.db.session() as session:
            rows = session.execute(
                select(Example.instruction, Example.input, Example.output, Example.category, Example.source, Example.meta)
                .where(Example.dataset_id == dataset_id)
                .order_by(Example.position)
            )
            return [Record(*row[:5], meta=row[5] or {}) for row in rows]

    def frame(self, dataset_id: int, with_text: bool = True) -> pd.DataFrame:
        """Examples as a DataFrame indexed by position, with ``id`` and optionally the texts."""
        columns = [Example.position, Example.record_id.label("id"), Example.category, Example.source]
        if with_text:
            columns += [Example.instruction, Example.input, Example.output]
        query = select(*columns).where(Example.dataset_id == dataset_id).order_by(Example.position)
        with self.db.engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(query).mappings().all(), columns=[c.key for c in columns])
        return frame.set_index("position")

    def example(self, dataset_id: int, record_id: str) -> Record:
        with self.db.session() as session:
            row = session.get(Example, (dataset_id, record_id))
            if row is None:
                raise NotFound(f"no example {record_id} in dataset {dataset_id}")
            return Record(row.instruction, row.input, row.output, row.category, row.source, row.meta or {})

    def rejections(self, dataset_id: int) -> list[Rejection]:
        with self.db.session() as session:
            rows = session.scalars(
                select(RejectedRow).where(RejectedRow.dataset_id == dataset_id).order_by(RejectedRow.position)
            )
            return [Rejection(r.location, r.reason, r.raw) for r in rows]

    def categories(self, dataset_id: int) -> dict[str, int]:
        with self.db.session() as session:
            rows = session.execute(
                select(Example.category, func.count())
                .where(Example.dataset_id == dataset_id)
                .group_by(Example.category)
                .order_by(func.count().desc())
            )
            return {category or "(none)": count for category, count in rows}

    def sources(self, dataset_id: int) -> dict[str, int]:
        with self.db.session() as session:
            rows = session.execute(
                select(Example.source, func.count()).where(Example.dataset_id == dataset_id).group_by(Example.source)
            )
            return {source or "(none)": count for source, count in rows}


def _example_row(dataset_id: int, position: int, record: Record) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "record_id": record.id,
        "position": position,
        "instruction": record.instruction,
        "input": record.input,
        "output": record.output,
        "category": record.category,
        "source": record.source,
        "meta": record.meta,
    }


def _rejection_row(dataset_id: int, position: int, rejection: Rejection) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "position": position,
        "location": rejection.location,
        "reason": rejection.reason,
        "raw": rejection.raw,
    }


def _info(dataset: Dataset) -> DatasetInfo:
    return DatasetInfo(
        id=dataset.id,
        name=dataset.name,
        n_examples=dataset.n_examples,
        n_rejected=dataset.n_rejected,
        format=dataset.format,
        source_path=dataset.source_path,
        content_hash=dataset.content_hash,
        created_by=dataset.created_by,
        created_at=dataset.created_at,
        meta=dict(dataset.meta or {}),
    )
