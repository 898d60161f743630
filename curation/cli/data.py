"""import, validate, export, info."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from curation.cli.common import add_input_arguments, open_store, print_table, read_input
from curation.config import Settings
from curation.formats import EXTENSIONS, WRITE_FORMATS, ReadResult, write_dataset_info, write_records

SHOWN_REJECTIONS = 20


def register(commands: argparse._SubParsersAction) -> None:
    validate = commands.add_parser("validate", help="check a file and name every row that cannot be loaded")
    add_input_arguments(validate, "file", optional=False)
    validate.add_argument("--report", type=Path, help="write the rejected rows to this .csv or .jsonl file")
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    validate.set_defaults(run=run_validate)

    imp = commands.add_parser("import", help="load a file into the workspace as a named dataset")
    add_input_arguments(imp, "file", optional=False)
    imp.add_argument("--name", required=True, help="dataset name in the workspace")
    imp.add_argument("--replace", action="store_true", help="replace a dataset of the same name")
    imp.add_argument("--report", type=Path, help="also write the rejected rows to this .csv or .jsonl file")
    imp.add_argument("--user", default="cli", help="who is importing (kept with the dataset)")
    imp.set_defaults(run=run_import)

    export = commands.add_parser("export", help="write a dataset to a file")
    export.add_argument("dataset", help="dataset name")
    export.add_argument("--format", choices=WRITE_FORMATS, default="jsonl")
    export.add_argument("--out", type=Path, help="output file (default: <workspace>/exports/<dataset><ext>)")
    export.add_argument(
        "--dataset-info", action="store_true", help="also add a LLaMA-Factory dataset_info.json entry beside the file"
    )
    export.set_defaults(run=run_export)

    info = commands.add_parser("info", help="what the workspace holds")
    info.set_defaults(run=run_info)


def _print_rejections(result: ReadResult, limit: int | None) -> None:
    shown = result.rejections if limit is None else result.rejections[:limit]
    for rejection in shown:
        print(f"{rejection.location}: {rejection.reason}")
    if limit is not None and len(result.rejections) > limit:
        print(f"… and {len(result.rejections) - limit} more (use --report to get them all)")


def run_validate(args: argparse.Namespace, settings: Settings) -> int:
    result = read_input(args.file, args, settings)
    if args.report:
        result.write_report(args.report)
    if args.json:
        payload = {"file": str(args.file), "loadable": len(result.records), "rejected": [r.as_dict() for r in result.rejections]}
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return 0
    _print_rejections(result, None)
    print(result.summary())
    return 0


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    result = read_input(args.file, args, settings)
    store = open_store(settings)
    info = store.datasets.create(
        args.name,
        result.records,
        result.rejections,
        source_path=str(args.file.resolve()),
        fmt=result.format,
        created_by=args.user,
        replace=args.replace,
    )
    if args.report:
        result.write_report(args.report)
    _print_rejections(result, SHOWN_REJECTIONS)
    print(f"imported '{info.name}': {info.n_examples} examples, {info.n_rejected} rejected rows kept in the report")
    return 0


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    info = store.datasets.get(args.dataset)
    out = args.out or settings.workspace / "exports" / f"{info.name}{EXTENSIONS[args.format]}"
    count = write_records(store.datasets.records(info.id), out, args.format)
    print(f"wrote {count} records to {out}")
    if args.dataset_info:
        path = write_dataset_info(out.parent, info.name, out.name, args.format)
        print(f"added '{info.name}' to {path}")
    return 0


def run_info(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    print(f"workspace: {settings.workspace.resolve()}")
    print(f"database:  {settings.as_dict().get('database_url') or settings.db_url}")
    datasets = store.datasets.all()
    print(f"\n{len(datasets)} datasets")
    if datasets:
        print_table([(d.name, d.n_examples, d.n_rejected, d.format, d.created_at.strftime("%Y-%m-%d %H:%M")) for d in datasets],
                    ["name", "examples", "rejected", "format", "created"])
    testsets = store.testsets.all()
    print(f"\n{len(testsets)} test sets")
    if testsets:
        print_table([(t.name, t.n_items, t.category_field or "") for t in testsets], ["name", "items", "category field"])
    return 0
