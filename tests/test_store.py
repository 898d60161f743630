"""The store against SQLite and a real PostgreSQL server: datasets, ratings, flags, overrides, users."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from curation.config import Settings
from curation.formats import Rejection
from curation.records import Record
from curation.store import AlreadyExists, FlagRow, NotFound, RatingRow, Store
from curation.store.db import head_revision, migrate

REPO = Path(__file__).resolve().parent.parent


def sample_records(n: int = 5) -> list[Record]:
    return [
        Record(f"Question {i}?", "" if i % 2 else f"context {i}", f"Answer {i}.", category="qa" if i < 3 else "math", source="t")
        for i in range(n)
    ]


def test_dataset_round_trip_keeps_order_fields_and_rejections(store: Store) -> None:
    records = sample_records()
    records[1] = Record("Q?", "", "A.", meta={"score": 4.5, "nested": {"k": [1, 2]}})
    info = store.datasets.create("pool", records, [Rejection("f.jsonl:3", "missing output", "{}")], created_by="ann")
    assert (info.n_examples, info.n_rejected, info.created_by) == (5, 1, "ann")
    loaded = store.datasets.records(info.id)
    assert [r.id for r in loaded] == [r.id for r in records]
    assert loaded[1].meta == {"score": 4.5, "nested": {"k": [1, 2]}}
    frame = store.datasets.frame(info.id)
    assert list(frame["id"]) == [r.id for r in records] and list(frame.index) == list(range(5))
    assert store.datasets.rejections(info.id) == [Rejection("f.jsonl:3", "missing output", "{}")]
    assert store.datasets.categories(info.id) == {"math": 2, "qa": 2, "(none)": 1}
    assert store.datasets.example(info.id, records[0].id).instruction == "Question 0?"


def test_names_are_unique_unless_replaced(store: Store) -> None:
    store.datasets.create("pool", sample_records(3))
    with pytest.raises(AlreadyExists, match="choose another name"):
        store.datasets.create("pool", sample_records(2))
    replaced = store.datasets.create("pool", sample_records(2), replace=True)
    assert store.datasets.get("pool").n_examples == 2 == replaced.n_examples
    with pytest.raises(NotFound, match=r"datasets: pool"):
        store.datasets.get("missing")


def test_ratings_keep_one_row_per_record_rater_version(store: Store) -> None:
    info = store.datasets.create("pool", sample_records())
    ids = [r.id for r in store.datasets.records(info.id)]
    store.ratings.save([RatingRow(i, "iqs", "v1", "ok", score=0.1 * n, score_0_5=n / 2) for n, i in enumerate(ids)])
    store.ratings.save([RatingRow(ids[0], "iqs", "v1", "ok", score=9.0, score_0_5=5.0)])
    store.ratings.save([RatingRow(ids[1], "llm:m:accuracy", "p1", "unparsed", raw="I think it's fine")])
    store.ratings.save([RatingRow(ids[2], "llm:m:accuracy", "p1", "error", raw="timeout")])
    frame = store.ratings.frame(info.id, rater="iqs")
    assert len(frame) == 5 and frame.set_index("id").loc[ids[0], "score"] == 9.0
    assert store.ratings.rated_ids("iqs", "v1") == set(ids)
    # An error is not a finished rating: a resumed job must try it again.
    assert store.ratings.rated_ids("llm:m:accuracy", "p1") == {ids[1]}
    summary = {(s.rater, s.n, s.n_ok) for s in store.ratings.raters(info.id)}
    assert summary == {("iqs", 5, 5), ("llm:m:accuracy", 2, 0)}
    unparsed = next(r for r in store.ratings.for_record(ids[1]) if r["rater"].startswith("llm"))
    assert unparsed["score"] is None and unparsed["raw"] == "I think it's fine"
    with pytest.raises(ValueError, match="status"):
        store.ratings.save([RatingRow(ids[0], "iqs", "v1", "great")])


def test_ratings_are_shared_by_datasets_with_the_same_text(store: Store) -> None:
    a = store.datasets.create("a", sample_records(3))
    b = store.datasets.create("b", sample_records(5))
    store.ratings.save([RatingRow(r.id, "iqs", "v1", "ok", score=1.0) for r in store.datasets.records(a.id)])
    assert len(store.ratings.frame(b.id)) == 3


def test_overrides_are_an_append_only_audit_with_the_latest_in_force(store: Store) -> None:
    info = store.datasets.create("pool", sample_records())
    rid = store.datasets.records(info.id)[0].id
    store.overrides.add(info.id, rid, "drop", "ann", "hallucinated date")
    store.overrides.add(info.id, rid, "keep", "lead", "date is right, checked")
    other = store.datasets.records(info.id)[1].id
    store.overrides.add(info.id, other, "drop", "ann", "")
    store.overrides.add(info.id, other, "clear", "ann", "back to the machine")
    history = store.overrides.history(info.id, rid)
    assert [(d.decision, d.user) for d in history] == [("drop", "ann"), ("keep", "lead")]
    in_force = store.overrides.in_force(info.id)
    assert set(in_force) == {rid} and in_force[rid].reason == "date is right, checked"
    with pytest.raises(ValueError, match="decision"):
        store.overrides.add(info.id, rid, "maybe", "ann")
    with pytest.raises(ValueError, match="name of the person"):
        store.overrides.add(info.id, rid, "keep", "")


def test_flags_are_replaced_per_rule(store: Store) -> None:
    info = store.datasets.create("pool", sample_records())
    ids = [r.id for r in store.datasets.records(info.id)]
    store.flags.replace(info.id, ["refusal", "echo"], [FlagRow(ids[0], "refusal", "says 'I cannot'"), FlagRow(ids[1], "echo", "repeats")])
    store.flags.replace(info.id, ["refusal"], [FlagRow(ids[2], "refusal", "as an AI")])
    assert store.flags.counts(info.id) == {"refusal": 1, "echo": 1}
    assert store.flags.for_record(info.id, ids[2]) == [FlagRow(ids[2], "refusal", "as an AI")]
    assert set(store.flags.frame(info.id)["id"]) == {ids[1], ids[2]}
    before = store.flags.version(info.id)
    store.flags.replace(info.id, ["refusal"], [FlagRow(ids[3], "refusal", "as an AI")])  # same counts, other hit
    assert store.flags.version(info.id) != before


def test_deleting_a_dataset_removes_its_examples_flags_and_overrides(store: Store) -> None:
    info = store.datasets.create("pool", sample_records())
    rid = store.datasets.records(info.id)[0].id
    store.flags.replace(info.id, ["x"], [FlagRow(rid, "x", "y")])
    store.overrides.add(info.id, rid, "drop", "ann")
    store.datasets.delete("pool")
    again = store.datasets.create("pool", sample_records())
    assert store.flags.counts(again.id) == {} and store.overrides.in_force(again.id) == {}
    assert len(store.datasets.frame(again.id)) == 5


def test_accounts_store_only_a_salted_hash(store: Store) -> None:
    store.users.create("alice", "s3cret-pass", "lead")
    store.users.create("bob", "another-pass")
    assert store.users.verify("alice", "s3cret-pass").role == "lead"
    assert store.users.verify("alice", "wrong") is None and store.users.verify("nobody", "x") is None
    with store.db.session() as session:
        from curation.store.schema import User

        hashes = [u.password_hash for u in session.query(User)]
    assert all("s3cret" not in h and h.startswith("scrypt$") for h in hashes) and len(set(hashes)) == 2
    with pytest.raises(ValueError, match="exists"):
        store.users.create("alice", "whatever")


def test_migrations_create_exactly_the_models(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from curation.store.schema import Base

    with store.db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_migrating_twice_is_a_no_op(store: Store) -> None:
    migrate(store.db.engine)
    from curation.store.db import current_revision

    assert current_revision(store.db.engine) == head_revision()


def test_two_processes_opening_a_new_sqlite_store_at_once(settings: Settings) -> None:
    code = "import sys; from curation.store import Store; Store(sys.argv[1]).datasets.all()"
    url = settings.db_url
    processes = [subprocess.Popen([sys.executable, "-c", code, url], cwd=REPO, stderr=subprocess.PIPE) for _ in range(3)]
    errors = [p.communicate()[1].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    engine = create_engine(url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
