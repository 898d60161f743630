"""explain: the IQS explanation of every example of a workspace dataset, computed and stored.

``python -m curation explain DATASET [--show 5]`` finds, for every IQS rating of the dataset by the
installed scorer, the sentence whose removal moves the score most (leave-one-sentence-out, batched) and
stores it with the rating, so Explore and Map open those examples without computing; then prints the
first few explanations with their standing in the dataset (and cluster, when the dataset has a map).
"""

from __future__ import annotations

import argparse

from curation.cli import CommandError
from curation.cli.common import open_store, progress_bar
from curation.config import Settings


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "explain", help="IQS: store the sentence that moves each score of a dataset; print a few explanations"
    )
    parser.add_argument("dataset", help="a workspace dataset rated with IQS (python -m curation rate --dataset NAME)")
    parser.add_argument("--show", type=int, default=5, help="explanations to print (default 5)")
    parser.set_defaults(run=run_explain)


def run_explain(args: argparse.Namespace, settings: Settings) -> int:
    import numpy as np

    from curation import explain
    from curation.cluster import dataset_map
    from curation.studio_auth import cli_person

    store = open_store(settings)
    info = store.datasets.get(args.dataset)
    records = store.datasets.records(info.id)
    progress, close = progress_bar("explain")
    try:
        computed = explain.explain_dataset(store, settings, records, cli_person(), progress=progress)
    finally:
        close()
    version = explain.scorer_for(settings).version
    rows = store.ratings.stored(explain.IQS_RATER, version, [r.id for r in records])
    if not rows:
        raise CommandError(f"'{info.name}' has no ratings from the installed IQS scorer ({version}); "
                           f"rate it first: python -m curation rate --dataset {info.name}")
    ids = np.array([r.id for r in records])
    values = np.array([rows[i].score_0_5 if i in rows and rows[i].status == "ok" else np.nan for i in ids], float)
    the_map = dataset_map(store, settings, info.id)
    print(f"{info.name}: {computed} explanations computed now, {len(rows)} IQS ratings ({version})")
    for record in records[: args.show]:
        row = rows.get(record.id)
        place = explain.standing(record.id, ids, values, the_map)
        if row is None or place is None:
            continue
        print(f"- {record.id}: {place.text()} {row.explanation}")
    return 0
