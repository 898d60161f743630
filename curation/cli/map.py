"""map: embed, cluster and project a file or a workspace dataset to 2-D (all cached).

``python -m curation map INPUT --out MAP.parquet`` writes ``id, x, y, cluster, cluster_name``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from curation.cli import CommandError
from curation.cli.common import add_input_arguments, open_store, print_table, progress_bar, read_input
from curation.config import Settings

SHOWN_CLUSTERS = 15


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "map", help="embed + cluster + UMAP a file or dataset; writes id, x, y, cluster, cluster_name"
    )
    add_input_arguments(parser)
    parser.add_argument("--dataset", help="map a workspace dataset instead of a file (the studio's Map page reads it)")
    parser.add_argument("--out", type=Path, help="output .parquet (or .csv) file")
    parser.set_defaults(run=run_map)


def run_map(args: argparse.Namespace, settings: Settings) -> int:
    from curation.cluster import build_map

    if (args.input is None) == (args.dataset is None):
        raise CommandError("give either an INPUT file or --dataset NAME (not both)")
    if args.out and args.out.suffix.lower() not in (".parquet", ".csv"):
        raise CommandError(f"{args.out.name}: the map is written as .parquet or .csv")
    if args.dataset:
        store = open_store(settings)
        info = store.datasets.get(args.dataset)
        records, name = store.datasets.records(info.id), info.name
    else:
        result = read_input(args.input, args, settings)
        if not result.records:
            raise CommandError(f"{args.input.name}: no loadable rows ({result.summary()})")
        if result.rejections:
            print(f"note: {len(result.rejections)} rows of {args.input.name} could not be read and are not on the map")
        records, name = result.records, args.input.name
    progress, close = progress_bar("map")
    try:
        frame = build_map(records, settings, progress)
    finally:
        close()
    sizes = frame.groupby(["cluster", "cluster_name"]).size().reset_index(name="size").sort_values("cluster")
    print(f"{name}: {len(frame):,} examples in {len(sizes)} clusters")
    print_table(sizes.head(SHOWN_CLUSTERS).itertuples(index=False), ["cluster", "name", "size"])
    if len(sizes) > SHOWN_CLUSTERS:
        print(f"… and {len(sizes) - SHOWN_CLUSTERS} more")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.suffix.lower() == ".csv":
            frame.to_csv(args.out, index=False)
        else:
            frame.to_parquet(args.out, index=False)
        print(f"wrote {args.out}")
    return 0
