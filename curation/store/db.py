"""Opening the database: engine, SQLite pragmas, migrations to head, sessions."""

from __future__ import annotations

import fcntl
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, inspect, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


# Half of the default jobs.stale_after_s: a worker waiting on a lock gives up before it counts as stale
# (SQLite's busy timeout; PostgreSQL's lock_timeout and idle_in_transaction_session_timeout).
DEFAULT_BUSY_TIMEOUT_S = 15.0


def make_engine(url: str, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> Engine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        # Workers and the studio write from separate processes: wait for the lock instead of failing,
        # but less long than jobs.stale_after_s (see JobConfig.busy_timeout_s).
        engine = create_engine(url, connect_args={"timeout": busy_timeout_s})
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_timeout_ms=int(busy_timeout_s * 1000)))
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgresql") and "options=" not in url:  # options given in the URL are the user's
        return create_engine(url, pool_pre_ping=True, connect_args={"options": _postgres_options(busy_timeout_s)})
    return create_engine(url, pool_pre_ping=True)


def _postgres_options(busy_timeout_s: float) -> str:
    """SQLite's busy timeout on PostgreSQL, plus what SQLite cannot do: free the locks of a frozen holder.

    lock_timeout: a write waits that long for a lock, then fails (before its job could count as stale).
    idle_in_transaction_session_timeout: a session that sits inside a transaction that long is ended by the
    server and its locks are freed. Store transactions run their statements back to back, so only a frozen
    or cut-off process (SIGSTOP, a paused VM, a lost network) stays idle in one; without this its locks on
    the job row would hold every other writer, the job's next owner included, until the process came back.
    """
    ms = max(1, int(busy_timeout_s * 1000))
    return f"-c lock_timeout={ms} -c idle_in_transaction_session_timeout={ms}"


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, busy_timeout_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest revision (idempotent; safe from several processes at once)."""
    from alembic import command
    from alembic.config import Config

    if current_revision(engine) == head_revision():
        return
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with _migration_lock(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    # SQLite runs DDL outside transactions: two processes creating tables at once would collide.
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@functools.cache
def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str, run_migrations: bool = True, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout_s)
        if run_migrations:
            migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def bulk_insert(self, session: Session, model: Any, rows: list[dict[str, Any]], chunk: int = 5000) -> None:
        for start in range(0, len(rows), chunk):
            session.execute(insert(model), rows[start : start + chunk])

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()
