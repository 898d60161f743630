"""Flag a workspace dataset and store the hits; the job handler for kind ``"flags"``."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from curation.config import Settings
from curation.flags.base import FlagEmbeddings
from curation.flags.rules import EMBEDDING_RULE_NAMES, flag_records, rules_to_run
from curation.progress import ProgressFn, silent
from curation.records import Record
from curation.store import FlagRow, Store

if TYPE_CHECKING:
    from curation.jobs import JobContext

def flag_dataset(
    store: Store,
    settings: Settings,
    dataset_name: str,
    progress: ProgressFn | None = None,
    with_embeddings: bool = True,
    rules: Collection[str] | None = None,
) -> dict[str, int]:
    """Run the rules on a stored dataset, replace their earlier findings, return the count per rule.

    Only the findings of the rules that ran are replaced: a run without embeddings leaves the stored
    off-topic and near-duplicate findings as they were.
    """
    report = progress or silent
    info = store.datasets.get(dataset_name)
    records = store.datasets.records(info.id)
    names = rules_to_run(with_embeddings, rules)
    embeddings = None
    if any(name in EMBEDDING_RULE_NAMES for name in names):
        embeddings = dataset_embeddings(records, settings, report)
    report(0, 1, f"checking {len(records)} examples against {len(names)} rules")
    hits = flag_records(records, settings.flags, embeddings, rules=names)
    rows = [FlagRow(record.id, hit.name, hit.reason) for record, found in zip(records, hits) for hit in found]
    store.flags.replace(info.id, names, rows)
    counts = {name: 0 for name in names}
    for row in rows:
        counts[row.name] += 1
    report(1, 1, ", ".join(f"{name}: {count}" for name, count in counts.items()))
    return counts


def dataset_embeddings(records: Sequence[Record], settings: Settings, progress: ProgressFn) -> FlagEmbeddings:
    """Instruction-only, output-only and input vectors (cached on disk by the embedding module)."""
    instructions = _embed([r.instruction for r in records], settings, progress, "instructions")
    outputs = _embed([r.output for r in records], settings, progress, "outputs")
    with_input = [i for i, r in enumerate(records) if r.input.strip()]
    inputs = np.zeros_like(outputs)
    if with_input:
        inputs[with_input] = _embed([records[i].input for i in with_input], settings, progress, "inputs")
    return FlagEmbeddings(instructions=instructions, outputs=outputs, inputs=inputs)


def _embed(texts: list[str], settings: Settings, progress: ProgressFn, label: str) -> np.ndarray:
    from curation.embed import embed_texts

    def step(done: int, total: int, _message: str = "") -> None:
        progress(done, total, f"embedding {label}")

    return embed_texts(texts, settings, progress=step)


def flag_job(ctx: JobContext) -> dict[str, Any]:
    """params: ``dataset`` (name), optional ``with_embeddings`` (default true) and ``rules`` (names).

    Re-runnable by construction: a run replaces the findings of the rules it ran, and embeddings
    come from the on-disk cache, so a resumed job redoes only the cheap part.
    """
    dataset = ctx.params.get("dataset")
    if not dataset:
        raise ValueError("a flags job needs the parameter 'dataset' (the dataset name)")
    with_embeddings = bool(ctx.params.get("with_embeddings", True))
    counts = flag_dataset(ctx.store, ctx.settings, dataset, ctx.progress, with_embeddings, ctx.params.get("rules"))
    ctx.log(f"flags on '{dataset}': " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    return {"dataset": dataset, "counts": counts}
