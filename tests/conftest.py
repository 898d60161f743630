"""Shared fixtures: a settings object on a temporary workspace, and a store on SQLite or PostgreSQL.

PostgreSQL tests use the server named by ``CURATION_TEST_POSTGRES_URL`` (the README's test command
starts one and sets it); each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from curation.config import Settings, load_settings
from curation.store import Store

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("CURATION_TEST_POSTGRES_URL", "")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Defaults on a fresh workspace; no file or environment configuration leaks in."""
    return load_settings(env={"CURATION_WORKSPACE": str(tmp_path / "workspace")})


@pytest.fixture
def sqlite_store(settings: Settings) -> Iterator[Store]:
    store = Store.open(settings)
    yield store
    store.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not POSTGRES_URL:
        reason = "CURATION_TEST_POSTGRES_URL is not set (the README's test command starts PostgreSQL and sets it)"
        if os.environ.get("CURATION_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    from sqlalchemy import text

    from curation.store.db import make_engine

    name = f"curation_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = POSTGRES_URL.rpartition("/")
    yield f"{base}/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Store]:
    """The same test against SQLite and against a real PostgreSQL server."""
    if request.param == "sqlite":
        opened = Store.open(settings)
    else:
        url = request.getfixturevalue("postgres_url")
        settings.database_url = url
        opened = Store(url)
    yield opened
    opened.close()
