"""Saved selections: a name and the manifest from which the subset is rebuilt exactly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from curation.store.db import Database
from curation.store.schema import Selection


@dataclass(frozen=True)
class SelectionInfo:
    id: int
    dataset_id: int
    name: str
    method: str
    manifest: dict[str, Any]
    n_kept: int
    created_by: str
    created_at: datetime


class Selections:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, dataset_id: int, name: str, manifest: dict[str, Any], created_by: str = "") -> SelectionInfo:
        """Keep a selection's manifest; saving a name again adds a newer version (the older ones stay)."""
        if not name:
            raise ValueError("a saved selection needs a name")
        with self.db.session() as session:
            row = Selection(
                dataset_id=dataset_id,
                name=name,
                method=str(manifest.get("method", "")),
                manifest=manifest,
                n_kept=int(manifest.get("counts", {}).get("kept", 0)),
                created_by=created_by,
            )
            session.add(row)
            session.flush()
            return _info(row)

    def all(self, dataset_id: int | None = None) -> list[SelectionInfo]:
        query = select(Selection).order_by(Selection.id)
        if dataset_id is not None:
            query = query.where(Selection.dataset_id == dataset_id)
        with self.db.session() as session:
            return [_info(row) for row in session.scalars(query)]

    def get(self, selection_id: int) -> SelectionInfo:
        with self.db.session() as session:
            row = session.get(Selection, selection_id)
            if row is None:
                raise LookupError(f"no saved selection {selection_id}")
            return _info(row)

    def find(self, dataset_id: int, name: str) -> SelectionInfo:
        """The latest selection saved under this name for the dataset."""
        query = (
            select(Selection)
            .where(Selection.dataset_id == dataset_id, Selection.name == name)
            .order_by(Selection.id.desc())
            .limit(1)
        )
        with self.db.session() as session:
            row = session.scalar(query)
            if row is None:
                names = sorted(set(session.scalars(select(Selection.name).where(Selection.dataset_id == dataset_id))))
                raise LookupError(f"no selection named '{name}' for this dataset (saved: {', '.join(names) or 'none'})")
            return _info(row)

    def delete(self, selection_id: int) -> None:
        with self.db.session() as session:
            session.execute(delete(Selection).where(Selection.id == selection_id))


def _info(row: Selection) -> SelectionInfo:
    return SelectionInfo(
        id=row.id,
        dataset_id=row.dataset_id,
        name=row.name,
        method=row.method,
        manifest=dict(row.manifest or {}),
        n_kept=row.n_kept,
        created_by=row.created_by,
        created_at=row.created_at,
    )
