"""flags: run the rule flags on a file or a workspace dataset; print the count and examples per flag."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from curation.cli import CommandError
from curation.cli.common import (
    add_background_arguments,
    add_input_arguments,
    open_store,
    print_table,
    progress_bar,
    read_input,
    start_background_job,
)
from curation.config import Settings
from curation.progress import ProgressFn
from curation.records import Record

if TYPE_CHECKING:
    from curation.flags import FlagHit

EXAMPLES_PER_FLAG = 3


class FlagRun(NamedTuple):
    label: str
    records: Sequence[Record]
    hits: list[list[FlagHit]]
    names: list[str]
    locations: list[str]  # where each record is: "file.jsonl:691" like validate, or "dataset row 12"


def register(commands: argparse._SubParsersAction) -> None:
    from curation.flags import RULE_ORDER

    parser = commands.add_parser(
        "flags",
        help="flag placeholder, refused, truncated, looping, echoed, off-topic and duplicate examples",
        description="Every finding comes with a reason that quotes its evidence. With --dataset the findings "
        "are stored in the workspace (a re-run replaces those of the rules it ran).",
    )
    add_input_arguments(parser)
    parser.add_argument("--dataset", help="flag a workspace dataset instead of a file (the hits are stored)")
    parser.add_argument(
        "--no-embeddings", action="store_true", help="only the text rules: skip off_topic and near_duplicate"
    )
    parser.add_argument("--out", type=Path, help="write every hit to this .jsonl file (location, index, id, name, reason)")
    parser.add_argument("--rule", action="append", choices=RULE_ORDER, metavar="NAME",
                        help=f"run only this rule (repeatable): {', '.join(RULE_ORDER)}")
    add_background_arguments(parser, "its counts (needs --dataset)")
    parser.set_defaults(run=run_flags)


def run_flags(args: argparse.Namespace, settings: Settings) -> int:
    if bool(args.input) == bool(args.dataset):
        raise CommandError("give either an input file or --dataset NAME (not both)")
    if args.background:
        return _start_job(args, settings)
    progress, close = progress_bar("flags")
    try:
        run = _flag_dataset(args, settings, progress) if args.dataset else _flag_file(args, settings, progress)
    except ValueError as err:  # a rule choice that cannot run, said in one sentence
        raise CommandError(str(err)) from err
    finally:
        close()
    if args.out:
        count = _write_hits(args.out, run)
        print(f"wrote {count} hits to {args.out}")
    _print_summary(run, with_embeddings=not args.no_embeddings)
    return 0


def _flag_file(args: argparse.Namespace, settings: Settings, progress: ProgressFn) -> FlagRun:
    from curation.flags import flag_records, rules_to_run
    from curation.flags.dataset import dataset_embeddings

    result = read_input(args.input, args, settings)
    if result.rejections:
        print(f"{result.summary()} (run `validate` to see the rejected rows; they are not flagged)")
    names = rules_to_run(not args.no_embeddings, args.rule)
    embeddings = None
    if not args.no_embeddings and set(names) & {"off_topic", "near_duplicate"}:
        embeddings = dataset_embeddings(result.records, settings, progress)
    hits = flag_records(result.records, settings.flags, embeddings, rules=names)
    return FlagRun(args.input.name, result.records, hits, names, result.locations)


def _flag_dataset(args: argparse.Namespace, settings: Settings, progress: ProgressFn) -> FlagRun:
    from curation.flags import FlagHit, flag_dataset

    store = open_store(settings)
    try:
        counts = flag_dataset(store, settings, args.dataset, progress,
                              with_embeddings=not args.no_embeddings, rules=args.rule)
        info = store.datasets.get(args.dataset)
        records = store.datasets.records(info.id)
        stored = store.flags.frame(info.id)
    finally:
        store.close()
    found: dict[str, list[FlagHit]] = {}
    for row in stored.itertuples(index=False):
        if row.name in counts:
            found.setdefault(row.id, []).append(FlagHit(row.name, row.reason))
    hits = [found.get(record.id, []) for record in records]
    locations = [f"{args.dataset} row {i + 1}" for i in range(len(records))]  # 1-based, the dataset's order
    return FlagRun(f"dataset '{args.dataset}' (hits stored)", records, hits, list(counts), locations)


def _start_job(args: argparse.Namespace, settings: Settings) -> int:
    """The same work as ``--dataset`` in a worker process whose state lives in the store."""
    if not args.dataset:
        raise CommandError("--background works on a workspace dataset: import the file, then use --dataset NAME")
    params = {"dataset": args.dataset, "with_embeddings": not args.no_embeddings, "rules": args.rule}
    store = open_store(settings)
    try:
        store.datasets.get(args.dataset)  # an unknown name fails here, in one sentence, not in the worker
        info = start_background_job(store, settings, "flags", params, f"flags on {args.dataset}", args)
    finally:
        store.close()
    if info is None:
        return 0
    if info.status != "done":
        return 1
    for name, count in info.result["counts"].items():
        print(f"{name} {count}")
    return 0


def _write_hits(path: Path, run: FlagRun) -> int:
    """One line per hit: ``location`` (file:line, as validate names rows), ``index`` (0-based), id, flag, reason."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for index, (record, found) in enumerate(zip(run.records, run.hits)):
            for hit in found:
                row = {"location": run.locations[index], "index": index, "id": record.id, "name": hit.name,
                       "reason": hit.reason}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
    return count


def _print_summary(run: FlagRun, with_embeddings: bool) -> None:
    from curation.flags import DESCRIPTIONS, EMBEDDING_RULE_NAMES

    records = run.records
    flagged = sum(1 for found in run.hits if found)
    print(f"{run.label}: {len(records)} examples, {flagged} with at least one flag")
    examples: dict[str, list[str]] = {name: [] for name in run.names}
    counts = dict.fromkeys(run.names, 0)
    for index, found in enumerate(run.hits):
        for hit in found:
            counts[hit.name] = counts.get(hit.name, 0) + 1
            if len(examples.setdefault(hit.name, [])) < EXAMPLES_PER_FLAG:
                examples[hit.name].append(f"  {run.locations[index]}: {hit.reason}")
    share = lambda n: f"{100 * n / len(records):.2f}%" if records else "-"
    print_table([(name, counts[name], share(counts[name])) for name in counts], ["flag", "rows", "share"])
    if not with_embeddings:
        print(f"(without embeddings: {', '.join(EMBEDDING_RULE_NAMES)} not run)")
    for name in counts:
        if examples.get(name):
            print(f"\n{name}: {DESCRIPTIONS[name]}")
            print("\n".join(examples[name]))
