"""52,000 records: embeddings + PCA + k-means + UMAP cold, then reopened from the cache.

    .venv/bin/python benchmarks/scale_52k.py [--records 52000] [--workspace DIR] [--no-baseline]

The records are the bundled pools (Alpaca random 9k, Dolly 15k, CaR's 1k: 25,234 records) replicated
with small perturbations (two neighbouring words swapped, a word dropped, a number changed, a polite
prefix) until there are 52,000 distinct ones. Each phase runs in a fresh process, as a user would meet it:
- cold: ``curation.cluster.build_map`` on an empty workspace cache (model load, embedding, PCA +
  k-means + names, neighbours + UMAP fit on a sample + placing the rest), stage by stage with the peak
  resident memory so far; then CaR and threshold selections over the result;
- reopen: the same calls again in a new process — map, clusters and 52k vectors read from the cache;
- baselines measured in the same run (skip with --no-baseline): sentence-transformers' plain
  ``encode`` (fp32, 256 word pieces, batch 32) on 2,000 of the records, extrapolated to all of them; and
  umap-learn's own path (pynndescent neighbours, fit, ``transform``) against ours on 10,000 of the vectors.
Floors: cold ≤ 6 min with peak memory ≤ 6 GiB; reopen ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

POOLS = ("alpaca_random_9k.json", "dolly_15k.jsonl", "car_selected_1k.json")
BASELINE_EMBED = 2000
BASELINE_UMAP = 10000


def build_records(n: int) -> list:
    """The pools, then perturbed copies of them until there are ``n`` distinct records."""
    from curation.config import BUNDLED_DATA_DIR
    from curation.formats import read_file
    from curation.records import Record

    base = [r for pool in POOLS for r in read_file(BUNDLED_DATA_DIR / "pools" / pool, source=pool).records]
    rng = random.Random(52)
    records, seen = [], set()
    for record in base:
        if record.id not in seen:
            seen.add(record.id)
            records.append(record)
    round_number = 0
    while len(records) < n:
        round_number += 1
        for record in base:
            if len(records) >= n:
                break
            copy = Record(
                _perturb(record.instruction, rng, round_number),
                record.input,
                _perturb(record.output, rng, round_number),
                record.category,
                record.source,
                dict(record.meta),
            )
            if copy.id not in seen:
                seen.add(copy.id)
                records.append(copy)
    return records[:n]


def _perturb(text: str, rng: random.Random, round_number: int) -> str:
    words = text.split(" ")
    kind = rng.randrange(4)
    if kind == 0 and len(words) > 3:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    elif kind == 1 and len(words) > 5:
        del words[rng.randrange(len(words))]
    elif kind == 2 and re.search(r"\d", text):
        return re.sub(r"\d", lambda m: str((int(m.group()) + round_number) % 10), text, count=1)
    else:
        return f"{['Please', 'Kindly', 'Now'][round_number % 3]}, {text[:1].lower()}{text[1:]}"
    return " ".join(words)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # kilobytes on Linux


def synthetic_scores(records: list):
    import numpy as np

    rng = np.random.default_rng(7)
    return np.round(rng.normal(3.5, 1.0, len(records)), 2)


# --- phases (each in its own process) -------------------------------------------------------------


def phase_cold(args: argparse.Namespace) -> dict:
    from curation.config import load_settings

    settings = load_settings(env={}, overrides=[f"workspace={args.workspace}"])
    started = time.perf_counter()
    records = build_records(args.records)
    build_seconds = time.perf_counter() - started
    from curation.cluster import build_map
    from curation.embed import load_model

    seen: set[str] = set()
    started = time.perf_counter()
    marks: list[tuple[str, float, float, float]] = [
        ("import sentence-transformers + load the model", started, 0.0, cpu_seconds())
    ]
    load_model(settings.embed)  # build_map would do it on its first miss: part of the cold cost
    marks.append(("record ids + cache lookup", time.perf_counter(), peak_rss_gib(), cpu_seconds()))

    def progress(message: str, done: int, total: int) -> None:
        stage = _stage(message)
        if stage not in seen:
            seen.add(stage)
            marks.append((stage, time.perf_counter(), peak_rss_gib(), cpu_seconds()))

    frame = build_map(records, settings, progress)
    marks.append(("end", time.perf_counter(), peak_rss_gib(), cpu_seconds()))
    total = marks[-1][1] - started
    stages = [
        {
            "stage": marks[i][0],
            "seconds": marks[i + 1][1] - marks[i][1],
            "cpu": marks[i + 1][3] - marks[i][3],
            "peak_gib": marks[i + 1][2],
        }
        for i in range(len(marks) - 1)
    ]
    selection = _selections(records, settings)
    return {
        "build_seconds": build_seconds,
        "total": total,
        "stages": stages,
        "k": int(frame["cluster"].nunique()),
        "peak_gib": peak_rss_gib(),
        "cpu": marks[-1][3] - marks[0][3],
        "selection": selection,
        "load": os.getloadavg()[0],
    }


def _stage(message: str) -> str:
    names = {
        "embedding": "embedding",
        "clustering": "PCA + k-means + cluster names",
        "finding neighbours": "exact neighbours of the UMAP sample",
        "fitting UMAP": "UMAP fit on the sample",
        "placing": "placing the rest",
        "map ready": "writing the map cache",
    }
    return next((name for prefix, name in names.items() if message.startswith(prefix)), message)


def _selections(records: list, settings) -> dict:  # type: ignore[no-untyped-def]
    from curation.cluster import cluster_records
    from curation.select import make_pool, select_car, select_threshold

    scores = synthetic_scores(records)
    started = time.perf_counter()
    pool = make_pool(records, scores, cluster_records(records, settings))
    pool_seconds = time.perf_counter() - started
    started = time.perf_counter()
    car = select_car(pool, 1000, 1)
    car_seconds = time.perf_counter() - started
    started = time.perf_counter()
    threshold = select_threshold(pool, 4.5)
    threshold_seconds = time.perf_counter() - started
    return {
        "pool": pool_seconds,
        "car": car_seconds,
        "car_kept": int(car["keep"].sum()),
        "threshold": threshold_seconds,
        "threshold_kept": int(threshold["keep"].sum()),
    }


def phase_reopen(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    from curation.cluster import build_map, cluster_records
    from curation.config import load_settings
    from curation.embed import embed_records

    imports = time.perf_counter() - started
    settings = load_settings(env={}, overrides=[f"workspace={args.workspace}"])
    records = build_records(args.records)
    timings = {"imports": imports}
    for name, call in (("map", build_map), ("clusters", cluster_records), ("vectors", embed_records)):
        started = time.perf_counter()
        result = call(records, settings)
        timings[name] = time.perf_counter() - started
        assert len(result if name != "clusters" else result.labels) == len(records)
    timings["torch_imported"] = "torch" in sys.modules
    timings["peak_gib"] = peak_rss_gib()
    return timings


def phase_baseline(args: argparse.Namespace) -> dict:
    import numpy as np

    from curation.config import load_settings
    from curation.embed import cache_dir, embed_records, load_model, record_text
    from curation.embed_cache import VectorCache

    settings = load_settings(env={}, overrides=[f"workspace={args.workspace}"])
    records = build_records(args.records)
    texts = [record_text(r, settings.embed.template) for r in random.Random(1).sample(records, BASELINE_EMBED)]
    model = load_model(type(settings.embed)(dtype="float32", max_length=256))
    model.encode(texts[:32])
    started = time.perf_counter()
    model.encode(texts, batch_size=32)
    embed_seconds = time.perf_counter() - started
    assert VectorCache(cache_dir(settings)).shards(), "run the cold phase first"
    vectors = embed_records(records, settings)[:BASELINE_UMAP]
    return {
        "embed_rate": BASELINE_EMBED / embed_seconds,
        "embed_seconds_52k": args.records * embed_seconds / BASELINE_EMBED,
        **_umap_baseline(vectors.astype(np.float32), settings),
    }


def _umap_baseline(vectors, settings) -> dict:  # type: ignore[no-untyped-def]
    import warnings

    import numpy as np

    from curation.cluster import project_2d

    half = len(vectors) // 2
    started = time.perf_counter()
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reducer = umap.UMAP(n_components=2, metric="cosine", n_neighbors=15, min_dist=0.1, low_memory=True)
        reducer.fit(vectors[:half])
        reducer.transform(vectors[half:])
    theirs = time.perf_counter() - started
    config = settings.cluster.model_copy(update={"umap_fit_sample": half})
    started = time.perf_counter()
    coords = project_2d(vectors, config)
    ours = time.perf_counter() - started
    assert np.isfinite(coords).all()
    return {"umap_theirs": theirs, "umap_ours": ours, "umap_n": len(vectors)}


# --- driver ---------------------------------------------------------------------------------------


def run_phase(name: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        __file__,
        "--phase",
        name,
        "--records",
        str(args.records),
        "--workspace",
        str(args.workspace),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(output.stdout.strip().splitlines()[-1])


def report(cold: dict, reopen: dict, baseline: dict | None, n: int) -> None:
    print(
        f"\n{n:,} records (built in {cold['build_seconds']:.1f} s); k = {cold['k']}; "
        f"load average at the end of the cold run {cold['load']:.2f}\n"
    )
    print("| phase | stage | s | CPU s | peak RSS GiB |")
    print("|---|---|---|---|---|")
    for stage in cold["stages"]:
        print(f"| cold | {stage['stage']} | {stage['seconds']:.1f} | {stage['cpu']:.0f} | {stage['peak_gib']:.2f} |")
    print(
        f"| **cold** | **embeddings + PCA + k-means + UMAP (floor ≤ 360 s, ≤ 6 GiB)** | **{cold['total']:.1f}** "
        f"| {cold['cpu']:.0f} | **{cold['peak_gib']:.2f}** |"
    )
    sel = cold["selection"]
    print(f"| cold | CPU seconds ÷ 2 cores: the cold wall time on an idle machine | {cold['cpu'] / 2:.0f} | | |")
    print(f"| selection | pool from the cached clusters | {sel['pool']:.2f} | | |")
    print(f"| selection | CaR n1=1000 n2=1 ({sel['car_kept']:,} kept, reasons for all) | {sel['car']:.2f} | | |")
    print(
        f"| selection | threshold τ=4.5 ({sel['threshold_kept']:,} kept, reasons for all) | {sel['threshold']:.3f} | | |"
    )
    print(f"| reopen | imports (curation.cluster, curation.embed) | {reopen['imports']:.2f} | | |")
    for name, label in (
        ("map", "map (id, x, y, cluster, cluster_name)"),
        ("clusters", "clusters"),
        ("vectors", f"{n:,} vectors"),
    ):
        print(f"| reopen | {label} from the cache | {reopen[name]:.2f} | | |")
    total = reopen["map"] + reopen["clusters"] + reopen["vectors"]
    print(f"| **reopen** | **map + clusters + vectors (floor ≤ 2 s)** | **{total:.2f}** | | {reopen['peak_gib']:.2f} |")
    print(f"\nreopen imported torch: {reopen['torch_imported']}")
    if baseline:
        print("\n| baseline (same run) | ours | theirs | ratio |")
        print("|---|---|---|---|")
        embed_stage = sum(s["seconds"] for s in cold["stages"][:3])  # model load, cache lookup, embedding
        print(
            f"| embed {n:,} (theirs: plain encode fp32/256 batch 32 at {baseline['embed_rate']:.0f}/s, extrapolated) "
            f"| {embed_stage:.0f} s | {baseline['embed_seconds_52k']:.0f} s | {baseline['embed_seconds_52k'] / embed_stage:.1f}× |"
        )
        print(
            f"| UMAP {baseline['umap_n']:,} (fit half, place half; theirs: pynndescent + transform) | {baseline['umap_ours']:.0f} s "
            f"| {baseline['umap_theirs']:.0f} s | {baseline['umap_theirs'] / baseline['umap_ours']:.1f}× |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=52000)
    parser.add_argument("--workspace", type=Path, help="workspace for the cache (default: a new temporary folder)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--phase", choices=("cold", "reopen", "baseline"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result = {"cold": phase_cold, "reopen": phase_reopen, "baseline": phase_baseline}[args.phase](args)
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(prefix="scale52k-") as temporary:
        args.workspace = args.workspace or Path(temporary) / "workspace"
        cold = run_phase("cold", args)
        reopen = run_phase("reopen", args)
        baseline = None if args.no_baseline else run_phase("baseline", args)
        report(cold, reopen, baseline, args.records)


if __name__ == "__main__":
    main()
