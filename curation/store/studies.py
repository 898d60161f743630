"""The human study's storage: studies, items, the voters' queue (reservations with a lease) and votes.

The queue is the part many voters hit at once. Invariant, kept inside every transaction:
``item.taken <= study.votes_per_item`` where ``taken`` = counted first-time votes (``item.votes``) + live
first-time reservations. Allocation locks one candidate item row and bumps ``taken``:
PostgreSQL picks it with ``FOR UPDATE SKIP LOCKED`` (voters never wait for each other's item), SQLite
runs the whole allocation in one ``BEGIN IMMEDIATE`` write transaction. Lock order is always the
voter's own reservation row first, then items, so transactions do not deadlock; a conflict that still
happens (two tabs of one voter) is retried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import Connection, and_, delete, exists, func, insert, not_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from curation.store.db import Database
from curation.store.schema import utcnow
from curation.store.schema_studies import Study, StudyItem, StudyReservation, StudyVote

STUDIES = Study.__table__
ITEMS = StudyItem.__table__
VOTES = StudyVote.__table__
RESERVATIONS = StudyReservation.__table__
CHOICES = ("A", "B", "neither", "skip")
RELEASE_EVERY_S = 5.0  # how often a process looks for abandoned reservations (and whenever the queue is empty)
T = TypeVar("T")


class StudyError(ValueError):
    """A study request that cannot be honoured; the message says why and what to do."""


class LeaseLost(StudyError):
    """The voter's reservation expired and the item was completed by others meanwhile."""


@dataclass(frozen=True)
class StudyInfo:
    id: int
    name: str
    model: str
    baseline: str
    votes_per_item: int
    voters: tuple[str, ...]
    repeat_share: float
    lease_s: float
    created_by: str
    created_at: datetime
    meta: dict[str, Any]
    n_items: int
    n_votes: int  # counted first-time votes

    @property
    def target_votes(self) -> int:
        return self.n_items * self.votes_per_item

    @property
    def started(self) -> bool:
        return self.n_votes > 0 or bool(self.meta.get("started"))

    def open_to(self, voter: str) -> bool:
        return not self.voters or voter in self.voters


@dataclass(frozen=True)
class ItemRow:
    """An item as the lead creates it: the question and the two sides' answers."""

    item_key: str
    instruction: str
    input: str
    model_answer: str
    baseline_answer: str
    category: str = ""
    testset: str = ""


@dataclass(frozen=True)
class Assignment:
    """What a voter is shown. ``model_shown_as`` stays on the server: pages never render it."""

    study_id: int
    item_id: int
    instruction: str
    input: str
    answer_a: str
    answer_b: str
    model_shown_as: str
    is_repeat: bool
    shown_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class VoteReceipt:
    vote_id: int
    item_id: int
    voter: str
    choice: str
    verdict: str
    duplicate: bool  # True when this exact vote was stored before (a retried submit)


def verdict_for(choice: str, model_shown_as: str) -> str:
    """The study model's result from one vote: win, tie or lose (skip stays skip)."""
    if choice == "skip":
        return "skip"
    if choice == "neither":
        return "tie"
    return "win" if choice == model_shown_as else "lose"


class Studies:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._released_at: dict[int, float] = {}

    # ------------------------------------------------------------------------------------------------
    # Creating and reading studies

    def create(self, name: str, model: str, baseline: str, items: list[ItemRow], created_by: str,
               votes_per_item: int = 3, voters: list[str] | None = None, repeat_share: float = 0.1,
               lease_s: float = 600.0, meta: dict[str, Any] | None = None) -> StudyInfo:
        if not items:
            raise StudyError(f"study '{name}' has no items: give answers that share ids on both sides")
        with self.db.session() as session:
            if session.scalar(select(Study.id).where(Study.name == name)) is not None:
                raise StudyError(f"a study named '{name}' exists already; choose another name")
            study = Study(name=name, model=model, baseline=baseline, votes_per_item=votes_per_item,
                          voters=sorted(set(voters or [])), repeat_share=repeat_share, lease_s=lease_s,
                          created_by=created_by, meta=meta or {})
            session.add(study)
            session.flush()
            rows = [{"study_id": study.id, "position": i, "votes": 0, "taken": 0, **item.__dict__}
                    for i, item in enumerate(items)]
            self.db.bulk_insert(session, StudyItem, rows)
            study_id = study.id
        return self.get(study_id)

    def get(self, study: int | str) -> StudyInfo:
        found = self._infos(Study.id == study if isinstance(study, int) else Study.name == study)
        if not found:
            raise StudyError(f"no study '{study}'; `python -m curation study list` shows the studies")
        return found[0]

    def all(self) -> list[StudyInfo]:
        return self._infos(None)

    def _infos(self, where: Any) -> list[StudyInfo]:
        counts = (select(ITEMS.c.study_id, func.count().label("n_items"), func.sum(ITEMS.c.votes).label("n_votes"))
                  .group_by(ITEMS.c.study_id).subquery())
        query = select(STUDIES, counts.c.n_items, counts.c.n_votes).join(
            counts, counts.c.study_id == STUDIES.c.id, isouter=True).order_by(STUDIES.c.id)
        if where is not None:
            query = query.where(where)
        with self.db.engine.connect() as conn:
            return [_info(row) for row in conn.execute(query).mappings()]

    def update(self, study_id: int, **changes: Any) -> StudyInfo:
        """Change votes per item, voters, repeat share or lease; refused once voting has started."""
        allowed = {"votes_per_item", "voters", "repeat_share", "lease_s"}
        unknown = set(changes) - allowed
        if unknown:
            raise StudyError(f"cannot change {sorted(unknown)}; only {sorted(allowed)}")
        if "voters" in changes:
            changes["voters"] = sorted(set(changes["voters"] or []))
        info = self.get(study_id)
        # One conditional statement: no vote and no reservation may exist when the settings change.
        untouched = and_(~exists().where(VOTES.c.study_id == study_id), ~exists().where(RESERVATIONS.c.study_id == study_id))
        with self.db.engine.connect() as conn, self._write(conn):
            changed = conn.execute(update(STUDIES).where(STUDIES.c.id == study_id, untouched).values(**changes)).rowcount
        if not changed:
            raise StudyError(f"study '{info.name}' is frozen: voting has started; create a new study instead")
        return self.get(study_id)

    # ------------------------------------------------------------------------------------------------
    # The voters' queue

    def next_for(self, study: StudyInfo, voter: str, rng: random.Random | None = None) -> Assignment | None:
        """The voter's current item: the one they hold, else a fresh one (fewest votes first), else None.

        With probability ``repeat_share`` (and never right after the same item) it is instead one the
        voter already answered, shown again unmarked to measure their self-consistency. Abandoned
        reservations are released every few seconds, and whenever the queue looks empty.
        """
        with self.db.engine.connect() as conn:
            return self._next(conn, study, voter, rng or random.Random())

    def submit_and_next(self, study: StudyInfo, voter: str, shown: Assignment, choice: str, comment: str = "",
                        rng: random.Random | None = None) -> tuple[VoteReceipt, Assignment | None]:
        """:meth:`submit` and :meth:`next_for` in one transaction (what a voter's click does)."""
        if choice not in CHOICES:
            raise StudyError(f"choice must be one of {CHOICES}, got {choice!r}")
        rng = rng or random.Random()
        with self.db.engine.connect() as conn:
            self._release_when_due(conn, study.id)

            def attempt() -> tuple[VoteReceipt, Assignment | None]:
                with self._write(conn):
                    return _record(conn, study, voter, shown, choice, comment), _allocate(conn, study, voter, rng)

            receipt, found = self._retry(attempt)
            if found is None and self.release_expired(study.id, conn):
                found = self._retry(lambda: self._next_once(conn, study, voter, rng))
            return receipt, found

    def _next(self, conn: Connection, study: StudyInfo, voter: str, rng: random.Random) -> Assignment | None:
        self._release_when_due(conn, study.id)
        found = self._retry(lambda: self._next_once(conn, study, voter, rng))
        if found is None and self.release_expired(study.id, conn):
            found = self._retry(lambda: self._next_once(conn, study, voter, rng))
        return found

    def _release_when_due(self, conn: Connection, study_id: int) -> None:
        if time.monotonic() - self._released_at.get(study_id, 0.0) > RELEASE_EVERY_S:
            self.release_expired(study_id, conn)

    def _next_once(self, conn: Connection, study: StudyInfo, voter: str, rng: random.Random) -> Assignment | None:
        now = utcnow()
        with self._write(conn):
            held = _own_reservation(conn, study.id, voter)
            if held is not None and held.expires_at > now:
                expires = now + timedelta(seconds=study.lease_s)
                conn.execute(update(RESERVATIONS).where(_reservation_of(study.id, voter)).values(expires_at=expires))
                return _assignment(held, _item_texts(conn, held.item_id), expires)
            if held is not None:
                _drop_reservation(conn, held)
            return _allocate(conn, study, voter, rng)

    def submit(self, study: StudyInfo, voter: str, shown: Assignment, choice: str, comment: str = "") -> VoteReceipt:
        """Store the voter's answer on ``shown`` (choice A, B, neither or skip) and free their reservation.

        A retried submit returns the stored vote (``duplicate``), never a second one. If the reservation
        expired and other voters completed the item meanwhile, raises :class:`LeaseLost`.
        """
        if choice not in CHOICES:
            raise StudyError(f"choice must be one of {CHOICES}, got {choice!r}")
        with self.db.engine.connect() as conn:

            def attempt() -> VoteReceipt:
                with self._write(conn):
                    return _record(conn, study, voter, shown, choice, comment)

            return self._retry(attempt)

    def release_expired(self, study_id: int, conn: Connection | None = None) -> int:
        """Return abandoned reservations to the queue; how many were released."""
        if conn is None:
            with self.db.engine.connect() as own:
                return self.release_expired(study_id, own)
        now = utcnow()
        self._released_at[study_id] = time.monotonic()
        waiting = conn.scalar(select(func.count()).select_from(RESERVATIONS).where(
            RESERVATIONS.c.study_id == study_id, RESERVATIONS.c.expires_at <= now))
        conn.commit()  # end the read's implicit transaction before the write one
        if not waiting:
            return 0  # the common case: a read, no write lock
        return self._retry(lambda: self._release_once(conn, study_id, now))

    def _release_once(self, conn: Connection, study_id: int, now: datetime) -> int:
        with self._write(conn):
            expired = (select(RESERVATIONS.c.voter)
                       .where(RESERVATIONS.c.study_id == study_id, RESERVATIONS.c.expires_at <= now)
                       .with_for_update(skip_locked=True))
            voters = list(conn.scalars(expired))
            freed = sorted(_delete_reservations(conn, study_id, voters))
            for item_id in freed:  # in id order, so two releases never wait on each other crosswise
                conn.execute(update(ITEMS).where(ITEMS.c.id == item_id).values(taken=ITEMS.c.taken - 1))
            return len(freed)

    # ------------------------------------------------------------------------------------------------
    # Progress and reading votes

    def progress(self, study: StudyInfo, voter: str) -> tuple[int, int]:
        """(answered, still open to this voter): the voter's stored answers, and fresh items they could get."""
        with self.db.engine.connect() as conn:
            done = conn.scalar(select(func.count()).select_from(VOTES).where(
                VOTES.c.study_id == study.id, VOTES.c.voter == voter))
            own = func.coalesce(select(func.count()).where(RESERVATIONS.c.item_id == ITEMS.c.id,
                                                           RESERVATIONS.c.voter == voter,
                                                           ~RESERVATIONS.c.is_repeat).scalar_subquery(), 0)
            to_go = conn.scalar(select(func.count()).select_from(ITEMS).where(
                ITEMS.c.study_id == study.id, ITEMS.c.taken - own < study.votes_per_item,
                not_(_voted_by(voter))))
            return int(done or 0), int(to_go or 0)

    def votes_frame(self, study_id: int) -> pd.DataFrame:
        """Every stored answer with its item: one row per vote (skips and repeats included, marked)."""
        query = (select(VOTES.c.id.label("vote_id"), ITEMS.c.item_key, ITEMS.c.category, ITEMS.c.testset,
                        VOTES.c.voter, VOTES.c.choice, VOTES.c.model_shown_as, VOTES.c.verdict,
                        VOTES.c.is_repeat, VOTES.c.comment, VOTES.c.shown_at, VOTES.c.voted_at)
                 .join(ITEMS, ITEMS.c.id == VOTES.c.item_id).where(VOTES.c.study_id == study_id)
                 .order_by(VOTES.c.id))
        with self.db.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=[
                "vote_id", "item_key", "category", "testset", "voter", "choice", "model_shown_as", "verdict",
                "is_repeat", "comment", "shown_at", "voted_at"])
        frame["is_repeat"] = frame["is_repeat"].astype(bool)
        return frame

    def items_frame(self, study_id: int, with_text: bool = False) -> pd.DataFrame:
        columns = [ITEMS.c.id.label("item_id"), ITEMS.c.position, ITEMS.c.item_key, ITEMS.c.category, ITEMS.c.testset,
                   ITEMS.c.votes, (ITEMS.c.taken - ITEMS.c.votes).label("held")]
        if with_text:
            columns += [ITEMS.c.instruction, ITEMS.c.input, ITEMS.c.model_answer, ITEMS.c.baseline_answer]
        query = select(*columns).where(ITEMS.c.study_id == study_id).order_by(ITEMS.c.position)
        with self.db.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).mappings().all(), columns=[c.name for c in columns])

    def version(self, study_id: int) -> tuple[int, int]:
        """Changes whenever a vote lands: (number of stored answers, newest answer id)."""
        with self.db.engine.connect() as conn:
            row = conn.execute(select(func.count(), func.max(VOTES.c.id)).where(VOTES.c.study_id == study_id)).one()
        return int(row[0]), int(row[1] or 0)

    # ------------------------------------------------------------------------------------------------
    # Transactions

    @contextmanager
    def _write(self, conn: Connection) -> Iterator[Connection]:
        """One write transaction on ``conn``; on SQLite it takes the write lock first (BEGIN IMMEDIATE)."""
        with conn.begin():
            if self.db.dialect == "sqlite":  # pysqlite would only begin (deferred) at the first write
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    def _retry(self, attempt: Callable[[], T], tries: int = 8) -> T:
        """Run ``attempt`` again after a deadlock or a lost unique race (PostgreSQL's answer to contention)."""
        for n in range(tries):
            try:
                return attempt()
            except (IntegrityError, DBAPIError) as err:
                if n == tries - 1 or not _transient(err):
                    raise
                time.sleep(0.005 * (n + 1) * random.random())
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class _Reservation:
    study_id: int
    voter: str
    item_id: int
    model_shown_as: str
    is_repeat: bool
    reserved_at: datetime
    expires_at: datetime


def _transient(err: DBAPIError) -> bool:
    if isinstance(err, IntegrityError):
        return True  # a concurrent twin inserted the same reservation or vote: the retry sees it
    code = getattr(getattr(err, "orig", None), "sqlstate", None)
    return code in ("40P01", "40001", "55P03")  # deadlock, serialization failure, lock not available


def _info(row: Any) -> StudyInfo:
    return StudyInfo(row["id"], row["name"], row["model"], row["baseline"], row["votes_per_item"],
                     tuple(row["voters"] or ()), row["repeat_share"], row["lease_s"], row["created_by"],
                     row["created_at"], dict(row["meta"] or {}), int(row["n_items"] or 0), int(row["n_votes"] or 0))


def _reservation_of(study_id: int, voter: str) -> Any:
    return and_(RESERVATIONS.c.study_id == study_id, RESERVATIONS.c.voter == voter)


def _own_reservation(conn: Connection, study_id: int, voter: str) -> _Reservation | None:
    row = conn.execute(select(RESERVATIONS).where(_reservation_of(study_id, voter)).with_for_update()).mappings().first()
    return _Reservation(**row) if row else None


def _drop_reservation(conn: Connection, held: _Reservation) -> None:
    conn.execute(delete(RESERVATIONS).where(_reservation_of(held.study_id, held.voter)))
    if not held.is_repeat:
        conn.execute(update(ITEMS).where(ITEMS.c.id == held.item_id).values(taken=ITEMS.c.taken - 1))


def _delete_reservations(conn: Connection, study_id: int, voters: list[str]) -> list[int]:
    """Delete these voters' reservations; the item ids of the first-time ones (their ``held`` to free)."""
    if not voters:
        return []
    query = (delete(RESERVATIONS).where(RESERVATIONS.c.study_id == study_id, RESERVATIONS.c.voter.in_(voters))
             .returning(RESERVATIONS.c.item_id, RESERVATIONS.c.is_repeat))
    return [item_id for item_id, is_repeat in conn.execute(query) if not is_repeat]


def _voted_by(voter: str) -> Any:
    return exists().where(VOTES.c.item_id == ITEMS.c.id, VOTES.c.voter == voter, ~VOTES.c.is_repeat)


TEXTS = (ITEMS.c.id, ITEMS.c.instruction, ITEMS.c.input, ITEMS.c.model_answer, ITEMS.c.baseline_answer)


def _pick_fresh(conn: Connection, study: StudyInfo, voter: str) -> Any:
    """A fresh item for the voter with room left, fewest votes first, with its texts; locked rows are skipped.

    On PostgreSQL the row comes locked (FOR UPDATE SKIP LOCKED, rechecked after the lock), so the
    ``taken`` bump that follows cannot push it over the target; SQLite holds the write lock already.
    """
    query = (select(*TEXTS)
             .where(ITEMS.c.study_id == study.id, ITEMS.c.taken < study.votes_per_item, not_(_voted_by(voter)))
             .order_by(ITEMS.c.taken, ITEMS.c.position)
             .limit(1).with_for_update(skip_locked=True, of=ITEMS))
    return conn.execute(query).first()


def _take_fresh(conn: Connection, study: StudyInfo, voter: str) -> Any:
    """Bump ``taken`` of the fresh item :func:`_pick_fresh` would pick, in one statement; its texts, or None."""
    pick = (select(ITEMS.c.id)
            .where(ITEMS.c.study_id == study.id, ITEMS.c.taken < study.votes_per_item, not_(_voted_by(voter)))
            .order_by(ITEMS.c.taken, ITEMS.c.position)
            .limit(1).with_for_update(skip_locked=True).scalar_subquery())
    return conn.execute(update(ITEMS).where(ITEMS.c.id == pick, ITEMS.c.taken < study.votes_per_item)
                        .values(taken=ITEMS.c.taken + 1).returning(*TEXTS)).first()


def _item_texts(conn: Connection, item_id: int) -> Any:
    return conn.execute(select(*TEXTS).where(ITEMS.c.id == item_id)).one()


def _pick_repeat(conn: Connection, study: StudyInfo, voter: str, rng: random.Random) -> int | None:
    """An item the voter answered once (not skipped, not yet repeated, not their latest answer)."""
    repeated = select(VOTES.c.item_id).where(VOTES.c.study_id == study.id, VOTES.c.voter == voter, VOTES.c.is_repeat)
    latest = select(func.max(VOTES.c.id)).where(VOTES.c.study_id == study.id, VOTES.c.voter == voter).scalar_subquery()
    candidates = conn.scalars(select(VOTES.c.item_id).where(
        VOTES.c.study_id == study.id, VOTES.c.voter == voter, ~VOTES.c.is_repeat, VOTES.c.choice != "skip",
        VOTES.c.id != latest, VOTES.c.item_id.not_in(repeated))).all()
    return rng.choice(candidates) if candidates else None


def _claim_lost_item(conn: Connection, study: StudyInfo, item_id: int) -> None:
    """A vote whose reservation expired: count it only if the item still has room, else refuse clearly."""
    taken = conn.scalar(select(ITEMS.c.taken).where(ITEMS.c.id == item_id).with_for_update())
    if taken >= study.votes_per_item:
        raise LeaseLost(
            f"your reservation of this item expired (after {study.lease_s:.0f} s) and other voters completed it "
            "meanwhile, so this answer was not counted; here is your next item")
    conn.execute(update(ITEMS).where(ITEMS.c.id == item_id).values(votes=ITEMS.c.votes + 1, taken=ITEMS.c.taken + 1))


def _allocate(conn: Connection, study: StudyInfo, voter: str, rng: random.Random) -> Assignment | None:
    """Reserve a fresh item (or, now and then, a hidden repeat) for a voter who holds none."""
    now = utcnow()
    expires = now + timedelta(seconds=study.lease_s)
    repeat = None
    if rng.random() < study.repeat_share:
        if _pick_fresh(conn, study, voter) is None:
            return None  # nothing left for this voter: no repeats either, they are done
        repeat = _pick_repeat(conn, study, voter, rng)
    texts = _item_texts(conn, repeat) if repeat is not None else _take_fresh(conn, study, voter)
    if texts is None:
        return None
    reservation = _Reservation(study.id, voter, texts.id, rng.choice("AB"), repeat is not None, now, expires)
    conn.execute(insert(RESERVATIONS).values(**reservation.__dict__))
    return _assignment(reservation, texts, expires)


def _record(conn: Connection, study: StudyInfo, voter: str, shown: Assignment, choice: str, comment: str) -> VoteReceipt:
    """Store one answer and free the voter's reservation, inside the caller's transaction."""
    mine = conn.execute(delete(RESERVATIONS).where(_reservation_of(study.id, voter)).returning(
        RESERVATIONS.c.item_id, RESERVATIONS.c.model_shown_as, RESERVATIONS.c.is_repeat)).first()
    if mine is not None and mine.item_id == shown.item_id:  # the usual case: the item they hold
        is_repeat, side = bool(mine.is_repeat), mine.model_shown_as
        if not is_repeat:  # a counted vote keeps its slot; a skip gives it back
            change = {"votes": ITEMS.c.votes + 1} if choice != "skip" else {"taken": ITEMS.c.taken - 1}
            conn.execute(update(ITEMS).where(ITEMS.c.id == shown.item_id).values(**change))
    else:  # a retry of a stored vote, a reservation that expired, or an answer from an older tab
        if mine is not None and not mine.is_repeat:  # the other item they held goes back to the queue
            conn.execute(update(ITEMS).where(ITEMS.c.id == mine.item_id).values(taken=ITEMS.c.taken - 1))
        is_repeat, side = shown.is_repeat, shown.model_shown_as
        stored = conn.execute(select(VOTES.c.id, VOTES.c.choice, VOTES.c.verdict).where(
            VOTES.c.item_id == shown.item_id, VOTES.c.voter == voter, VOTES.c.is_repeat == is_repeat)).first()
        if stored is not None:
            return VoteReceipt(stored.id, shown.item_id, voter, stored.choice, stored.verdict, True)
        if not is_repeat and choice != "skip":
            _claim_lost_item(conn, study, shown.item_id)
    verdict = verdict_for(choice, side)
    vote_id = conn.execute(insert(VOTES).values(
        study_id=study.id, item_id=shown.item_id, voter=voter, choice=choice, model_shown_as=side, verdict=verdict,
        is_repeat=is_repeat, comment=comment, shown_at=shown.shown_at, voted_at=utcnow())).inserted_primary_key[0]
    return VoteReceipt(vote_id, shown.item_id, voter, choice, verdict, False)


def _assignment(held: _Reservation, item: Any, expires_at: datetime) -> Assignment:
    a, b = ((item.model_answer, item.baseline_answer) if held.model_shown_as == "A"
            else (item.baseline_answer, item.model_answer))
    return Assignment(held.study_id, held.item_id, item.instruction, item.input, a, b, held.model_shown_as,
                      held.is_repeat, held.reserved_at, expires_at)
