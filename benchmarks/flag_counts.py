"""How many rows each rule flag hits on the bundled Alpaca and Dolly pools, and what it costs.

    python benchmarks/flag_counts.py [--no-embeddings] [--workspace DIR]

Prints three markdown tables:
1. rows hit per flag on each pool, text rules only and with embeddings (off_topic, near_duplicate);
2. time per step (reading, text rules, embedding, embedding rules);
3. the near-duplicate search blockwise (what the rule does) against the baseline of one full n x n
   similarity matrix, both timed and their peak memory traced, in the same run and on the same vectors.

Embeddings come from ``curation.embed.embed_texts`` and are cached in the workspace, so a second run
measures the cached path; the first run on a 2-core machine takes minutes per pool.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from curation.config import BUNDLED_DATA_DIR, FlagConfig, load_settings
from curation.flags import RULE_ORDER, FlagEmbeddings, flag_records
from curation.flags.dataset import dataset_embeddings
from curation.flags.duplicates import NearDuplicateRule
from curation.formats import read_file

POOLS = {"Alpaca (alpaca_random_9k)": "alpaca_random_9k.json", "Dolly (dolly_15k)": "dolly_15k.jsonl"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-embeddings", action="store_true", help="only the text rules")
    parser.add_argument("--workspace", default=os.environ.get("CURATION_WORKSPACE", "workspace"),
                        help="where the embedding cache lives (default ./workspace)")
    args = parser.parse_args()
    settings = load_settings(overrides=[f"workspace={args.workspace}"])
    counts: dict[tuple[str, str], dict[str, int]] = {}
    timings: list[tuple[str, str, float]] = []
    memory_rows: list[str] = []
    for label, file in POOLS.items():
        started = time.perf_counter()
        records = read_file(BUNDLED_DATA_DIR / "pools" / file, source=file).records
        timings.append((label, f"read {len(records)} records", time.perf_counter() - started))
        started = time.perf_counter()
        counts[(label, "text rules")] = _count(flag_records(records, settings.flags))
        timings.append((label, "text rules", time.perf_counter() - started))
        if args.no_embeddings:
            continue
        started = time.perf_counter()
        embeddings = dataset_embeddings(records, settings, lambda *_: None)
        timings.append((label, "embed instructions, outputs, inputs (cache as found)", time.perf_counter() - started))
        started = time.perf_counter()
        counts[(label, "with embeddings")] = _count(flag_records(records, settings.flags, embeddings))
        timings.append((label, "all rules, vectors given", time.perf_counter() - started))
        memory_rows += _near_duplicate_versus_full_matrix(label, records, embeddings, settings.flags)
    _print_counts(counts)
    print("\n| pool | step | seconds |\n|---|---|---:|")
    for label, step, seconds in timings:
        print(f"| {label} | {step} | {seconds:.1f} |")
    if memory_rows:
        print("\n| pool | near-duplicate search | seconds | peak MB | rows hit |\n|---|---|---:|---:|---:|")
        print("\n".join(memory_rows))
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")


def _count(hits: list) -> dict[str, int]:
    counts = dict.fromkeys(RULE_ORDER, 0)
    for found in hits:
        for hit in found:
            counts[hit.name] += 1
    counts["any flag"] = sum(1 for found in hits if found)
    counts["records"] = len(hits)
    return counts


def _print_counts(counts: dict[tuple[str, str], dict[str, int]]) -> None:
    columns = list(counts)
    print("| flag | " + " | ".join(f"{pool}, {mode}" for pool, mode in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for name in (*RULE_ORDER, "any flag", "records"):
        cells = []
        for column in columns:
            value = counts[column].get(name, 0)
            ran = column[1] == "with embeddings" or name not in ("off_topic", "near_duplicate")
            share = f" ({100 * value / counts[column]['records']:.2f}%)" if name != "records" else ""
            cells.append(f"{value}{share}" if ran else "–")
        print(f"| {name} | " + " | ".join(cells) + " |")


def _near_duplicate_versus_full_matrix(label: str, records: list, embeddings: FlagEmbeddings, config: FlagConfig) -> list[str]:
    rows = []
    tracemalloc.start()
    started = time.perf_counter()
    found = NearDuplicateRule(config).find(records, embeddings)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    rows.append(f"| {label} | blockwise (the rule) | {seconds:.1f} | {peak:.0f} | {len(found)} |")
    tracemalloc.start()
    started = time.perf_counter()
    baseline = _full_matrix_hits(records, embeddings, config)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    rows.append(f"| {label} | baseline: one n x n matrix | {seconds:.1f} | {peak:.0f} | {baseline} |")
    return rows


def _full_matrix_hits(records: list, embeddings: FlagEmbeddings, config: FlagConfig) -> int:
    """The same search as the rule with the whole similarity matrix in memory at once."""
    from curation.flags.duplicates import _ids, prompt_keys

    rule = NearDuplicateRule(config)
    vectors = np.asarray(embeddings.instructions, dtype=np.float32)
    instructions, inputs = prompt_keys(records)
    input_ids = _ids(inputs)
    prompt_ids = _ids([f"{a}\x00{b}" for a, b in zip(instructions, inputs)])
    sims = vectors @ vectors.T
    sims[np.triu_indices(len(vectors))] = -np.inf
    sims[input_ids[None, :] != input_ids[:, None]] = -np.inf
    sims[prompt_ids[None, :] == prompt_ids[:, None]] = -np.inf
    candidates = np.nonzero(sims.max(axis=1) >= rule.threshold)[0]
    return sum(rule._closest_same_question(records, int(i), sims[i]) is not None for i in candidates)


if __name__ == "__main__":
    main()
