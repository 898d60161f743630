"""The Map page on 52,000 points: what a rerun costs once the map is cached (nothing is re-embedded or
re-projected), and what answering a box/lasso selection costs.

    .venv/bin/python benchmarks/map_52k.py [--points 52000] [--repeats 20] [--no-page]

The map (id, x, y, cluster, cluster_name with k = ⌊√(n/2)⌋ = 161 clusters) is synthetic: this measures the
studio's side, not UMAP. Rows:
- once per map (cached): reading the map Parquet, aligning it to the dataset, CaR ranks;
- per rerun: the n1/n2 CaR mask, the cluster table, the WebGL figure and its JSON payload;
- baseline for the sliders: running select_car itself per move (it also writes 52k reasons);
- per selection: turning a 5,000-point lasso event into the listed rows; baseline: a per-point Python
  lookup of each id;
- whole Map page rerun (AppTest) after moving n1, with the map in the workspace cache.
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
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from curation import explore
from curation.select import select_car


def timed(function, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def synthetic(points: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    k = math.floor(math.sqrt(points / 2))
    cluster = rng.integers(0, k, points)
    centres = rng.normal(0, 10, (k, 2))
    xy = centres[cluster] + rng.normal(0, 0.8, (points, 2))
    ids = np.array([f"{i:016x}" for i in rng.permutation(points)], dtype=object)
    the_map = pd.DataFrame({"id": ids, "x": xy[:, 0].astype(np.float32), "y": xy[:, 1].astype(np.float32),
                            "cluster": cluster, "cluster_name": np.array([f"topic {c} words" for c in range(k)])[cluster]})
    examples = pd.DataFrame({"id": ids[rng.permutation(points)], "category": "general",
                             "instruction": "Explain something in a few words.", "input": "", "output": "Because."})
    scores = rng.normal(3.5, 0.8, points)
    return the_map, examples, scores


def lasso_event(aligned: pd.DataFrame, size: int) -> dict:
    chosen = np.random.default_rng(1).choice(len(aligned), size, replace=False)
    return {"selection": {"points": [{"curve_number": 0, "point_index": int(i)} for i in chosen]}}


def library_rows(points: int, repeats: int, folder: Path) -> list[tuple[str, float, str]]:
    the_map, examples, scores = synthetic(points)
    parquet = folder / "map.parquet"
    the_map.to_parquet(parquet)
    rows: list[tuple[str, float, str]] = []
    rows.append(("read the cached map (Parquet)", timed(lambda: pd.read_parquet(parquet), 5), "once per map"))
    rows.append(("align the map to the dataset", timed(lambda: explore.align_map(examples, the_map), 5), "once per map"))
    aligned = explore.align_map(examples, the_map)
    rows.append(("CaR ranks (select_car's ranking)", timed(lambda: explore.car_ranks(aligned, scores), 3), "once per rater"))
    ranks = explore.car_ranks(aligned, scores)
    pool = pd.DataFrame({"id": aligned["id"], "score": scores[aligned["position"]], "cluster": aligned["cluster"],
                         "cluster_name": aligned["cluster_name"]})
    rows.append(("baseline: select_car per n1/n2 move", timed(lambda: select_car(pool, 1000, 1), 3), "per move"))
    rows.append(("n1/n2 mask from the cached ranks", timed(lambda: ranks.keep(1000, 1), repeats), "per move"))
    chosen = ranks.keep(1000, 1)
    rows.append(("cluster table (names, sizes, mean scores)",
                 timed(lambda: explore.cluster_table(aligned, scores, chosen), repeats), "per rerun"))
    colour = scores[aligned["position"].to_numpy()]
    figure = explore.map_figure(aligned, colour, "continuous", chosen)
    rows.append(("WebGL figure build", timed(lambda: explore.map_figure(aligned, colour, "continuous", chosen), repeats),
                 "per rerun"))
    payload = figure.to_json()
    rows.append(("figure JSON (what the browser receives)", timed(figure.to_json, 5),
                 f"per rerun, {len(payload) / 1e6:.1f} MB"))
    event = lasso_event(aligned, 5000)
    ids = examples["id"].to_numpy()

    def answer_selection() -> pd.DataFrame:
        picked = explore.selected_points(event)
        positions = aligned["position"].to_numpy()[picked]
        return pd.DataFrame({"id": ids[positions], "score": scores[positions]})

    def naive_selection() -> list:
        id_list = list(examples["id"])
        return [(aligned["id"].iloc[p["point_index"]], id_list.index(aligned["id"].iloc[p["point_index"]]))
                for p in event["selection"]["points"][:500]]

    rows.append(("5,000-point lasso → listed rows", timed(answer_selection, repeats), "per selection"))
    naive_ms = timed(naive_selection, 1) * 10  # measured on 500 points, scaled to 5,000
    rows.append(("baseline: per-point Python id lookup (5,000 points)", naive_ms, "per selection"))
    return rows


def page_row(points: int, folder: Path) -> tuple[str, float, str] | None:
    """A real Map page rerun on a workspace whose map cache holds the synthetic map."""
    try:
        from streamlit.testing.v1 import AppTest

        from curation import cluster
        from curation.config import load_settings
        from curation.records import Record
        from curation.store import RatingRow, Store
    except ImportError as err:
        print(f"(skipping the page rerun: {err})")
        return None
    workspace = folder / "workspace"
    settings = load_settings(env={"CURATION_WORKSPACE": str(workspace)})
    store = Store.open(settings)
    records = [Record(f"Instruction {i}", "", f"Output {i}", category="general") for i in range(points)]
    info = store.datasets.create("map-52k", records, created_by="bench")
    the_map, _, scores = synthetic(points)
    the_map["id"] = [r.id for r in records]
    store.ratings.save([RatingRow(r.id, "iqs", "bench", "ok", score=float(s)) for r, s in zip(records, scores)])
    path = cluster.cache_path(settings, "maps", cluster.map_key(info.content_hash, settings))
    path.parent.mkdir(parents=True, exist_ok=True)
    the_map.to_parquet(path)
    os.environ["CURATION_WORKSPACE"] = str(workspace)
    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
    app.run()
    app.switch_page("pages/map.py")
    app.run()
    assert not app.exception, app.exception
    samples = []
    for n1 in (500, 1500, 2500, 3500, 4500):
        app.slider(key=f"car_n1_{info.id}").set_value(n1)
        started = time.perf_counter()
        app.run()
        samples.append(time.perf_counter() - started)
        assert not app.exception, app.exception
    store.close()
    return "whole Map page rerun after an n1 move (AppTest)", statistics.median(samples) * 1000, "per move"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=52_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-page", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        rows = library_rows(args.points, args.repeats, folder)
        if not args.no_page:
            row = page_row(args.points, folder)
            if row:
                rows.append(row)
    print(f"\n### Map of {args.points:,} points (load average {os.getloadavg()[0]:.2f})\n")
    print("| step | median ms | when |")
    print("|---|---:|---|")
    for step, ms, when in rows:
        print(f"| {step} | {ms:.1f} | {when} |")
    print("\nNothing above embeds or projects: the map comes from the workspace cache.")


if __name__ == "__main__":
    main()
