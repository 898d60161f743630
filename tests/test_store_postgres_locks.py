"""PostgreSQL under a frozen writer: waits end, and the frozen holder's locks are freed.

SQLite's busy timeout bounds how long a write waits for the lock; the store gives PostgreSQL the same
bound (lock_timeout) and ends a session that sits idle inside a transaction for as long
(idle_in_transaction_session_timeout), so a worker frozen mid-transaction -- SIGSTOP, a paused VM, a lost
network -- cannot hold the job's row, and every writer behind it, until it comes back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, exc, text
from waiting import wait_for

from curation.records import Record
from curation.store import Store

pytestmark = pytest.mark.postgres

TIMEOUT_S = 1.0


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    store = Store(postgres_url, busy_timeout_s=TIMEOUT_S)
    store.datasets.create("contested", [Record("Name a fruit.", "", "Apple.")], created_by="tests")
    yield store
    store.close()


def source_path(store: Store) -> str:
    with store.db.session() as session:
        return str(session.scalar(text("SELECT source_path FROM datasets WHERE name = 'contested'")))


def write_source_path(store: Store, value: str) -> None:
    with store.db.session() as session:
        session.execute(text("UPDATE datasets SET source_path = :v WHERE name = 'contested'"), {"v": value})


def backend_alive(store: Store, pid: int) -> bool:
    with store.db.session() as session:
        return bool(session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}))


def test_the_server_ends_a_session_left_idle_inside_a_write_and_frees_its_locks(
    pg_store: Store, postgres_url: str
) -> None:
    other = Store(postgres_url, busy_timeout_s=TIMEOUT_S)  # another process's store, as a job's next owner
    try:
        frozen = pg_store.db.engine.connect()
        frozen.begin()
        frozen.execute(text("UPDATE datasets SET source_path = 'frozen' WHERE name = 'contested'"))
        pid = int(frozen.execute(text("SELECT pg_backend_pid()")).scalar_one())
        # The holder now does nothing, like a worker stopped between two statements of one transaction.
        wait_for(lambda: not backend_alive(other, pid), "the server to end the idle-in-transaction session")
        write_source_path(other, "next owner")  # would fail on lock_timeout if the row were still locked
        assert source_path(other) == "next owner"
        with pytest.raises(exc.DBAPIError):  # the frozen process learns on its next statement
            frozen.execute(text("SELECT 1"))
        frozen.close()
    finally:
        other.close()


def test_a_write_behind_a_lock_gives_up_after_the_busy_timeout_instead_of_hanging(
    pg_store: Store, postgres_url: str
) -> None:
    # A holder outside the store (no timeouts of its own) keeps the row locked for as long as the test wants.
    foreign = create_engine("postgresql+psycopg://" + postgres_url.removeprefix("postgresql://"))
    outcome: list[BaseException | None] = []
    with foreign.connect() as holder:
        holder.begin()
        holder.execute(text("UPDATE datasets SET source_path = 'held' WHERE name = 'contested'"))

        def write() -> None:
            try:
                write_source_path(pg_store, "blocked")
                outcome.append(None)
            except BaseException as err:  # noqa: BLE001 -- handed to the test thread
                outcome.append(err)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(timeout=120)  # generous: the bound under test is TIMEOUT_S, the join only stops a hang
        alive = writer.is_alive()
        holder.rollback()
    foreign.dispose()
    assert not alive, "the write waited on the lock with no end"
    assert len(outcome) == 1 and isinstance(outcome[0], exc.OperationalError), outcome
    assert "lock timeout" in str(outcome[0]).lower()
    assert source_path(pg_store) == ""  # neither the holder's nor the blocked write landed
