"""Helpers for the studio's tests: an AppTest on a given workspace/store, small rated datasets."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from curation.config import Settings
from curation.records import Record
from curation.store import DatasetInfo, FlagRow, RatingRow, Store

APP = Path(__file__).resolve().parent.parent / "app.py"
CATEGORIES = ("brainstorming", "classification", "open_qa")


def point_studio_at(monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store) -> None:
    """The studio reads its configuration from the environment, as `streamlit run` would."""
    monkeypatch.setenv("CURATION_WORKSPACE", str(settings.workspace))
    if store.url.startswith("postgresql"):
        monkeypatch.setenv("DATABASE_URL", settings.database_url)
    else:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("CURATION_CONFIG", raising=False)


def studio(page: str | None = None, person: tuple[str, str] | None = None, timeout: float = 60) -> AppTest:
    """A fresh session on the studio, optionally signed in and switched to ``pages/<page>.py``."""
    app = AppTest.from_file(str(APP), default_timeout=timeout)
    if person:
        app.session_state["studio_person"] = {"name": person[0], "role": person[1], "via": "local"}
    app.run()
    if page:
        app.switch_page(f"pages/{page}.py")
        app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def toy_records(n: int, seed: int = 0) -> list[Record]:
    rng = random.Random(seed)
    return [
        Record(f"Instruction number {i}: explain topic {rng.randint(0, 99)}", "", f"Answer {i}. " * (1 + i % 5),
               category=CATEGORIES[i % len(CATEGORIES)], source="toy.jsonl")
        for i in range(n)
    ]


def rated_dataset(store: Store, name: str = "toy", n: int = 60, rated: int | None = None, seed: int = 0) -> DatasetInfo:
    """A dataset whose first ``rated`` examples have IQS scores i/10 (so thresholds are predictable)."""
    records = toy_records(n, seed)
    info = store.datasets.create(name, records, created_by="tests")
    count = n if rated is None else rated
    store.ratings.save([
        RatingRow(r.id, "iqs", "test-1", "ok", score=i / 10, score_0_5=min(i / 10, 5.0), explanation=f"iqs says {i}")
        for i, r in enumerate(records[:count])
    ])
    return info


def flag_first(store: Store, info: DatasetInfo, how_many: int = 3) -> list[str]:
    records = store.datasets.records(info.id)[:how_many]
    store.flags.replace(info.id, ["short_output"], [FlagRow(r.id, "short_output", "the output has 2 words") for r in records])
    return [r.id for r in records]


def table_with(app: AppTest, column: str):
    """The first displayed table having ``column`` (read-only tables carry no key in AppTest)."""
    for frame in app.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with a '{column}' column on the page")
