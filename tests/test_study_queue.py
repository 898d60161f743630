"""The voters' queue on SQLite and PostgreSQL: many voters at once, exactly N votes per item, leases."""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import update

from curation.store import Store, utcnow
from curation.store.studies import RESERVATIONS, ItemRow, LeaseLost, StudyError, StudyInfo


def make_study(store: Store, n_items: int = 40, votes: int = 3, repeat_share: float = 0.0, lease_s: float = 600,
               name: str = "s1") -> StudyInfo:
    items = [ItemRow(f"q{i}", f"Question {i}?", "", f"model answer {i}", f"baseline answer {i}",
                     category="c" + str(i % 3)) for i in range(n_items)]
    return store.studies.create(name, "curated-9k", "full-52k", items, created_by="lea", votes_per_item=votes,
                                repeat_share=repeat_share, lease_s=lease_s)


def vote_until_done(store: Store, study: StudyInfo, voter: str, seed: int, start: threading.Barrier) -> list[int]:
    rng = random.Random(seed)
    start.wait(timeout=60)
    voted = []
    shown = store.studies.next_for(study, voter, rng)
    while shown is not None:
        choice = rng.choice(["A", "B", "neither"])
        if seed % 2:  # half the voters use the one-transaction path the benchmark measures
            receipt, following = store.studies.submit_and_next(study, voter, shown, choice, rng=rng)
        else:
            receipt, following = store.studies.submit(study, voter, shown, choice), store.studies.next_for(study, voter, rng)
        assert not receipt.duplicate
        voted.append(shown.item_id)
        shown = following
    return voted


def test_twenty_concurrent_voters_fill_every_item_exactly_to_three_votes(store):
    study = make_study(store)
    voters = [f"voter{i:02d}" for i in range(20)]
    start = threading.Barrier(len(voters))
    with ThreadPoolExecutor(len(voters)) as pool:
        futures = {v: pool.submit(vote_until_done, store, study, v, i, start) for i, v in enumerate(voters)}
        submitted = {v: f.result(timeout=600) for v, f in futures.items()}
    votes = store.studies.votes_frame(study.id)
    # No vote lost: every submit the voters made is a stored row, and nothing else is.
    assert len(votes) == sum(len(ids) for ids in submitted.values()) == 40 * 3
    assert Counter(votes["item_key"]) == {f"q{i}": 3 for i in range(40)}
    assert not votes.duplicated(["item_key", "voter"]).any()
    items = store.studies.items_frame(study.id)
    assert (items["votes"] == 3).all() and (items["held"] == 0).all()
    assert store.studies.get(study.id).n_votes == 120


def test_fewest_votes_first_and_never_the_same_item_twice(store):
    study = make_study(store, n_items=3, votes=2)
    rng = random.Random(0)
    first = store.studies.next_for(study, "ann", rng)
    # ann holds item 0; bob is handed the next one with fewest votes + reservations.
    second = store.studies.next_for(study, "bob", rng)
    assert first.item_id != second.item_id
    assert store.studies.next_for(study, "ann", rng).item_id == first.item_id  # a reload shows the same item
    store.studies.submit(study, "ann", first, "A")
    again = store.studies.next_for(study, "ann", rng)
    assert again.item_id not in (first.item_id, second.item_id)  # the untouched third item, not bob's
    store.studies.submit(study, "ann", again, "B")
    store.studies.submit(study, "bob", second, "neither")
    last = store.studies.next_for(study, "ann", rng)
    assert last.item_id == second.item_id  # the only item ann has not voted
    store.studies.submit(study, "ann", last, "A")
    assert store.studies.next_for(study, "ann", rng) is None
    assert store.studies.progress(study, "ann") == (3, 0)


def test_submit_and_next_hands_the_next_item_in_one_call(store):
    study = make_study(store, n_items=2, votes=1)
    shown = store.studies.next_for(study, "ann")
    receipt, following = store.studies.submit_and_next(study, "ann", shown, "neither")
    assert receipt.verdict == "tie" and following.item_id != shown.item_id
    receipt, last = store.studies.submit_and_next(study, "ann", following, "A")
    assert last is None and len(store.studies.votes_frame(study.id)) == 2


def test_a_retried_submit_stores_one_vote(store):
    study = make_study(store, n_items=2)
    shown = store.studies.next_for(study, "ann")
    first = store.studies.submit(study, "ann", shown, "A", comment="clearer")
    again = store.studies.submit(study, "ann", shown, "A", comment="clearer")
    assert again.duplicate and again.vote_id == first.vote_id
    assert len(store.studies.votes_frame(study.id)) == 1


def test_the_vote_keeps_the_side_the_model_was_shown_on(store):
    study = make_study(store, n_items=1)
    shown = store.studies.next_for(study, "ann", random.Random(3))
    model_is_a = shown.answer_a == "model answer 0"
    assert model_is_a == (shown.model_shown_as == "A")
    store.studies.submit(study, "ann", shown, "A")
    vote = store.studies.votes_frame(study.id).iloc[0]
    assert vote["model_shown_as"] == shown.model_shown_as
    assert vote["verdict"] == ("win" if model_is_a else "lose")


def expire(store: Store, study: StudyInfo, voter: str) -> None:
    with store.db.engine.begin() as conn:
        conn.execute(update(RESERVATIONS).where(RESERVATIONS.c.voter == voter)
                     .values(expires_at=utcnow() - timedelta(seconds=1)))


def test_an_abandoned_reservation_returns_to_the_queue(store):
    study = make_study(store, n_items=1, votes=1, lease_s=600)
    shown = store.studies.next_for(study, "ann")
    assert store.studies.next_for(study, "bob") is None  # the only slot is held by ann
    expire(store, study, "ann")
    taken = store.studies.next_for(study, "bob")
    assert taken is not None and taken.item_id == shown.item_id
    store.studies.submit(study, "bob", taken, "B")
    # ann comes back: her answer cannot push the item over its target, and she is told why.
    with pytest.raises(LeaseLost, match="expired"):
        store.studies.submit(study, "ann", shown, "A")
    assert len(store.studies.votes_frame(study.id)) == 1


def test_a_late_vote_counts_when_the_item_still_has_room(store):
    study = make_study(store, n_items=1, votes=2, lease_s=600)
    shown = store.studies.next_for(study, "ann")
    expire(store, study, "ann")
    assert store.studies.release_expired(study.id) == 1
    store.studies.submit(study, "ann", shown, "A")
    assert store.studies.items_frame(study.id)["votes"].tolist() == [1]


def test_skip_is_kept_not_counted_and_not_asked_again(store):
    study = make_study(store, n_items=2, votes=1)
    shown = store.studies.next_for(study, "ann")
    store.studies.submit(study, "ann", shown, "skip")
    other = store.studies.next_for(study, "ann")
    assert other.item_id != shown.item_id
    assert store.studies.next_for(study, "bob").item_id == shown.item_id  # the skipped item is still open
    votes = store.studies.votes_frame(study.id)
    assert votes["choice"].tolist() == ["skip"]


def test_hidden_repeats_come_back_to_the_same_voter_only(store):
    study = make_study(store, n_items=12, votes=1, repeat_share=0.5)
    rng = random.Random(1)
    while (shown := store.studies.next_for(study, "ann", rng)) is not None:
        store.studies.submit(study, "ann", shown, rng.choice("AB"))
    votes = store.studies.votes_frame(study.id)
    repeats = votes[votes["is_repeat"]]
    assert len(repeats) >= 1
    assert set(repeats["item_key"]) <= set(votes[~votes["is_repeat"]]["item_key"])
    assert not repeats.duplicated("item_key").any()
    assert (store.studies.items_frame(study.id)["votes"] == 1).all()  # repeats do not count toward targets


def test_a_study_is_frozen_once_voting_starts(store):
    study = make_study(store, n_items=2)
    store.studies.update(study.id, votes_per_item=5)
    shown = store.studies.next_for(study, "ann")
    store.studies.submit(store.studies.get(study.id), "ann", shown, "A")
    with pytest.raises(StudyError, match="frozen"):
        store.studies.update(study.id, votes_per_item=3)


def test_progress_counts_done_and_to_go(store):
    study = make_study(store, n_items=5, votes=1)
    assert store.studies.progress(study, "ann") == (0, 5)
    shown = store.studies.next_for(study, "ann")
    assert store.studies.progress(study, "ann") == (0, 5)  # ann's own reservation is still hers to do
    store.studies.next_for(study, "bob")
    assert store.studies.progress(study, "ann") == (0, 4)
    store.studies.submit(study, "ann", shown, "A")
    assert store.studies.progress(study, "ann") == (1, 3)

