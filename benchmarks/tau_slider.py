"""Moving τ on 52,000 rated rows: how long the server needs to recompute the histogram and the counts.

    .venv/bin/python benchmarks/tau_slider.py [--rows 52000] [--repeats 30] [--no-page]

Rows measured (each the median over τ positions spread across the score range):
- naive baseline: a per-row Python loop over the scores (what a straightforward page would do);
- uncached baseline: re-reading the ratings from the store and aligning them on every move;
- explore.summarize_tau: the studio's computation (counts, split histogram, kept share per category);
- + histogram figure: the same plus building the plotly figure the page sends;
- whole Explore rerun: a real AppTest rerun of the page after moving the slider, on a SQLite store holding
  the 52k examples and ratings (store queries, table filter and serialisation included).
Floor: histogram and counts recomputed in ≤ 150 ms server-side.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from curation import explore, select
from curation.config import load_settings
from curation.records import Record
from curation.store import RatingRow, Store

CATEGORIES = [f"category-{i}" for i in range(24)]


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def make_store(rows: int, workspace: Path) -> tuple[Store, int]:
    rng = np.random.default_rng(0)
    records = [Record(f"Instruction {i}: do thing {i % 977}", "", f"Output {i} " * (1 + i % 9),
                      category=CATEGORIES[i % len(CATEGORIES)], source="bench") for i in range(rows)]
    settings = load_settings(env={"CURATION_WORKSPACE": str(workspace)})
    store = Store.open(settings)
    info = store.datasets.create("bench-52k", records, created_by="bench")
    scores = rng.normal(3.5, 0.8, rows).clip(0, 5)
    store.ratings.save([RatingRow(r.id, "llm", "bench", "ok", score=float(s), score_0_5=float(s), explanation="e")
                        for r, s in zip(records, scores)])
    return store, info.id


def naive_tau_summary(values: list[float | None], categories: list[str], tau: float, edges: list[float]) -> dict:
    """The same numbers with a per-row Python loop: the baseline the library is compared against."""
    kept = 0
    hist_kept = [0] * (len(edges) - 1)
    hist_dropped = [0] * (len(edges) - 1)
    per_category: dict[str, list[int]] = {}
    for value, category in zip(values, categories):
        entry = per_category.setdefault(category, [0, 0])
        entry[0] += 1
        if value is None or math.isnan(value):
            continue
        bucket = min(max(int((value - edges[0]) / (edges[-1] - edges[0]) * (len(edges) - 1)), 0), len(edges) - 2)
        if value >= tau:
            kept += 1
            entry[1] += 1
            hist_kept[bucket] += 1
        else:
            hist_dropped[bucket] += 1
    return {"kept": kept, "hist_kept": hist_kept, "hist_dropped": hist_dropped, "by_category": per_category}


def time_calls(function, taus: list[float]) -> list[float]:
    samples = []
    for tau in taus:
        started = time.perf_counter()
        function(tau)
        samples.append(time.perf_counter() - started)
    return samples


def library_rows(store: Store, dataset_id: int, taus: list[float]) -> list[tuple[str, float]]:
    examples = store.datasets.frame(dataset_id, with_text=False).reset_index(drop=True)
    ratings = store.ratings.frame(dataset_id)
    scores = explore.align_scores(examples, ratings)
    keep, drop = select.override_masks(scores.ids, {})
    values = [None if math.isnan(v) else float(v) for v in scores.values]
    categories = list(examples["category"])
    edges = list(scores.edges)
    rows = [
        ("naive baseline: per-row Python loop", median_ms(time_calls(
            lambda tau: naive_tau_summary(values, categories, tau, edges), taus[:5]))),
        ("uncached baseline: reload ratings + align + summarize", median_ms(time_calls(
            lambda tau: explore.summarize_tau(explore.align_scores(examples, store.ratings.frame(dataset_id)), tau),
            taus[:5]))),
        ("explore.summarize_tau (counts + histogram + per category)", median_ms(time_calls(
            lambda tau: explore.summarize_tau(scores, tau, keep, drop), taus))),
        ("  + plotly histogram figure", median_ms(time_calls(
            lambda tau: explore.histogram_figure(explore.summarize_tau(scores, tau, keep, drop)).to_json(), taus))),
    ]
    return rows


def page_row(workspace: Path, taus: list[float]) -> tuple[str, float]:
    from streamlit.testing.v1 import AppTest

    os.environ["CURATION_WORKSPACE"] = str(workspace)
    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
    app.run()
    app.switch_page("pages/explore.py")
    app.run()  # first visit: loads and caches the examples, ratings and table
    key = next(k for k in app.session_state if str(k).startswith("tau_"))
    samples = []
    for tau in taus:
        app.slider(key=key).set_value(round(tau, 4))
        started = time.perf_counter()
        app.run()
        samples.append(time.perf_counter() - started)
        assert not app.exception, app.exception
    return "whole Explore page rerun after a τ move (AppTest, SQLite store)", median_ms(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=52_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--no-page", action="store_true", help="skip the whole-page AppTest measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder) / "workspace"
        started = time.perf_counter()
        store, dataset_id = make_store(args.rows, workspace)
        setup_s = time.perf_counter() - started
        taus = list(np.linspace(1.0, 4.8, args.repeats))
        rows = library_rows(store, dataset_id, taus)
        if not args.no_page:
            rows.append(page_row(workspace, taus[:10]))
        store.close()
    load = os.getloadavg()[0]
    print(f"\n### τ slider on {args.rows:,} rated rows (load average {load:.2f}, setup {setup_s:.1f} s)\n")
    print("| what is recomputed per τ move | median ms |")
    print("|---|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} |")
    print("\nFloor: histogram and counts ≤ 150 ms server-side.")


if __name__ == "__main__":
    main()
