"""Human study under load: many simulated voters submitting continuously against PostgreSQL.

    .venv/bin/python benchmarks/study_votes.py [--url postgresql://…] [--voters 50] [--seconds 60] [--processes 2]

The URL defaults to $CURATION_TEST_POSTGRES_URL; the script creates a database of its own and drops it.
Each voter loops "submit my answer, get my next item" (``store.studies.submit_and_next``: the vote's
transaction, then the next reservation's) with no pause; the latency of that pair is measured where it is called (the
server side of the page). Voters run as threads spread over ``--processes`` worker processes (each its
own interpreter and connection pool, as several studio server processes would).
Rows: baseline = one voter alone for a few seconds (same run, same database); then N voters at once.
Checks after the run: every receipt is exactly one stored row (0 lost), no voter has two votes on an
item (0 duplicates), no item above its target, ``taken − votes`` equals the live reservations.
Floors: 0 lost or duplicate votes, p95 ≤ 200 ms (checked on the no-pause run). ``--think-s`` adds a run
where each voter pauses about that long between answers, as people reading two answers do.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, func, select, text

from curation.store import Store
from curation.store.db import make_engine
from curation.store.studies import ITEMS, RESERVATIONS, VOTES, ItemRow


def create_database(url: str) -> tuple[str, str]:
    name = f"curation_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, f"{url.rpartition('/')[0]}/{name}"


def drop_database(url: str, name: str) -> None:
    admin = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_study(store: Store, name: str, n_items: int, votes: int) -> int:
    answer = "An answer of a few sentences. " * 20
    items = [ItemRow(f"{name}-{i}", f"Question {i}: explain something.", "", "model: " + answer, "baseline: " + answer,
                     category=f"c{i % 9}") for i in range(n_items)]
    return store.studies.create(name, "model", "baseline", items, created_by="bench", votes_per_item=votes,
                                repeat_share=0.05).id


def voter_loop(store: Store, study_id: int, voter: str, until: float, think_s: float, latencies: list[float],
               receipts: list[int]) -> None:
    rng = random.Random(voter)
    study = store.studies.get(study_id)
    shown = store.studies.next_for(study, voter, rng)
    while shown is not None and time.perf_counter() < until:
        start = time.perf_counter()
        choice = rng.choice(("A", "B", "neither", "A", "B", "skip"))
        receipt, shown = store.studies.submit_and_next(study, voter, shown, choice, rng=rng)
        latencies.append(time.perf_counter() - start)
        receipts.append(receipt.vote_id)
        if think_s:  # reading the next question (not measured)
            time.sleep(rng.uniform(0.5, 1.5) * think_s)


def worker(url: str, study_id: int, voters: list[str], start_at: float, seconds: float, think_s: float,
           out: multiprocessing.Queue) -> None:
    store = Store(url, run_migrations=False)
    # One pooled connection per simulated voter: waiting for the pool would measure the pool, not the queue.
    store.db.engine.dispose()
    store.db.engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1], pool_size=len(voters),
                                    max_overflow=5, pool_pre_ping=True)
    latencies: list[float] = []
    receipts: list[int] = []
    time.sleep(max(0.0, start_at - time.time()))
    until = time.perf_counter() + seconds
    threads = [threading.Thread(target=voter_loop, args=(store, study_id, v, until, think_s, latencies, receipts)) for v in voters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((latencies, receipts))
    store.close()


def run(url: str, study_id: int, n_voters: int, seconds: float, processes: int, prefix: str,
        think_s: float = 0.0) -> tuple[list[float], list[int]]:
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = context.Queue()
    voters = [f"{prefix}{i:03d}" for i in range(n_voters)]
    groups = [voters[p::processes] for p in range(processes) if voters[p::processes]]
    start_at = time.time() + 3.0  # every process is up before the clock starts
    workers = [context.Process(target=worker, args=(url, study_id, group, start_at, seconds, think_s, queue)) for group in groups]
    for process in workers:
        process.start()
    latencies: list[float] = []
    receipts: list[int] = []
    for _ in workers:
        got_latencies, got_receipts = queue.get(timeout=seconds + 300)
        latencies += got_latencies
        receipts += got_receipts
    for process in workers:
        process.join()
    return latencies, receipts


def check(store: Store, study_id: int, receipts: list[int], votes_per_item: int) -> dict[str, int]:
    """lost: a receipt without its row; duplicates: a second row for one (item, voter) or a receipt twice."""
    with store.db.engine.connect() as conn:
        stored = set(conn.scalars(select(VOTES.c.id).where(VOTES.c.study_id == study_id)))
        twice = conn.scalar(select(func.count()).select_from(
            select(VOTES.c.item_id, VOTES.c.voter, VOTES.c.is_repeat).where(VOTES.c.study_id == study_id)
            .group_by(VOTES.c.item_id, VOTES.c.voter, VOTES.c.is_repeat).having(func.count() > 1).subquery()))
        over = conn.scalar(select(func.count()).select_from(ITEMS).where(
            ITEMS.c.study_id == study_id, (ITEMS.c.taken > votes_per_item) | (ITEMS.c.votes > ITEMS.c.taken)))
        counted = conn.scalar(select(func.count()).select_from(VOTES).where(
            VOTES.c.study_id == study_id, ~VOTES.c.is_repeat, VOTES.c.choice != "skip"))
        counter = conn.scalar(select(func.sum(ITEMS.c.votes)).where(ITEMS.c.study_id == study_id)) or 0
        held = conn.scalar(select(func.sum(ITEMS.c.taken - ITEMS.c.votes)).where(ITEMS.c.study_id == study_id)) or 0
        live = conn.scalar(select(func.count()).select_from(RESERVATIONS).where(
            RESERVATIONS.c.study_id == study_id, ~RESERVATIONS.c.is_repeat))
    return {"lost": len(set(receipts) - stored) + len(stored - set(receipts)),
            "duplicates": int(twice) + (len(receipts) - len(set(receipts))), "over target": int(over),
            "counter drift": abs(int(counter) - int(counted)) + abs(int(held) - int(live))}


def row(label: str, latencies: list[float], receipts: list[int], seconds: float, checks: dict[str, int]) -> str:
    ms = np.array(latencies) * 1000 if latencies else np.array([float("nan")])
    return (f"{label:<22} {len(receipts):>7} {len(receipts) / seconds:>8.1f} {np.percentile(ms, 50):>8.1f} "
            f"{np.percentile(ms, 95):>8.1f} {np.percentile(ms, 99):>8.1f} {checks['lost']:>5} {checks['duplicates']:>5} "
            f"{checks['over target']:>5} {checks['counter drift']:>6}")


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], check=False, capture_output=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "unknown")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("CURATION_TEST_POSTGRES_URL", ""))
    parser.add_argument("--voters", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--votes-per-item", type=int, default=3)
    parser.add_argument("--think-s", type=float, default=0.0,
                        help="also run the voters with this mean pause between answers (a person reading)")
    args = parser.parse_args()
    if not args.url.startswith("postgresql"):
        parser.error("give --url postgresql://… or set CURATION_TEST_POSTGRES_URL")
    name, url = create_database(args.url)
    try:
        store = Store(url)
        print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); PostgreSQL database {name}; {args.items} items × "
              f"{args.votes_per_item} votes; {args.processes} processes")
        print(f"{'run':<22} {'votes':>7} {'votes/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'lost':>5} "
              f"{'dup':>5} {'over':>5} {'drift':>6}")
        base_id = make_study(store, "baseline", 2000, args.votes_per_item)
        lat, rec = run(url, base_id, 1, args.baseline_seconds, 1, "solo")
        print(row("baseline: 1 voter", lat, rec, args.baseline_seconds, check(store, base_id, rec, args.votes_per_item)))
        study_id = make_study(store, "load", args.items, args.votes_per_item)
        lat, rec = run(url, study_id, args.voters, args.seconds, args.processes, "voter")
        checks = check(store, study_id, rec, args.votes_per_item)
        print(row(f"{args.voters} voters at once", lat, rec, args.seconds, checks))
        if args.think_s:
            think_id = make_study(store, "think", args.items, args.votes_per_item)
            t_lat, t_rec = run(url, think_id, args.voters, args.seconds, args.processes, "reader", args.think_s)
            print(row(f"{args.voters} voters, {args.think_s:g} s pause", t_lat, t_rec, args.seconds,
                      check(store, think_id, t_rec, args.votes_per_item)))
        p95 = float(np.percentile(np.array(lat) * 1000, 95))
        ok = checks["lost"] == checks["duplicates"] == checks["over target"] == checks["counter drift"] == 0
        print(f"floors: 0 lost/duplicate votes {'OK' if ok else 'FAILED'}; p95 {p95:.1f} ms ≤ 200 ms "
              f"{'OK' if p95 <= 200 else 'FAILED'}")
        store.close()
        return 0 if ok and p95 <= 200 else 1
    finally:
        drop_database(args.url, name)


if __name__ == "__main__":
    sys.exit(main())
