"""import, validate, export, info."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from curation.cli.common import add_input_arguments, open_store, print_table
from curation.config import Settings
from curation.dataset_io import NothingToLoad, export_dataset, import_dataset, read_source
from curation.formats import WRITE_FORMATS, ReadResult, UnreadableFile, parse_mapping
from curation.select.manifest import UnsafeExportPath
from curation.store import InvalidName
from curation.store.datasets import check_name
from curation.studio_auth import cli_person

SHOWN_REJECTIONS = 20
EXIT_CODES = """exit status: 0 every row loads; 1 some rows are rejected (each is named with its file and line);
2 nothing can be loaded (unreadable, empty, header only, no row with the needed fields)"""


def register(commands: argparse._SubParsersAction) -> None:
    validate = commands.add_parser("validate", help="check a file and name every row that cannot be loaded",
                                   epilog=EXIT_CODES)
    add_input_arguments(validate, "file", optional=False)
    validate.add_argument("--report", type=Path, help="write the rejected rows to this .csv or .jsonl file")
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    validate.set_defaults(run=run_validate)

    imp = commands.add_parser("import", help="load a file into the workspace as a named dataset",
                              epilog=EXIT_CODES + "; with 2 no dataset is created")
    add_input_arguments(imp, "file", optional=False)
    imp.add_argument("--name", required=True,
                     help="dataset name in the workspace: up to 64 letters, digits, '.', '-', '_'")
    imp.add_argument("--replace", action="store_true", help="replace a dataset of the same name")
    imp.add_argument("--report", type=Path, help="also write the rejected rows to this .csv or .jsonl file")
    imp.add_argument("--user", default="cli", help="who is importing (kept with the dataset)")
    imp.set_defaults(run=run_import)

    export = commands.add_parser("export", help="write a dataset to a file")
    export.add_argument("dataset", help="dataset name")
    export.add_argument("--format", choices=WRITE_FORMATS, default="jsonl")
    export.add_argument("--out", type=Path,
                        help="output file chosen at the shell (default: <workspace>/exports/<dataset><ext>)")
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


def _read(args: argparse.Namespace, settings: Settings) -> ReadResult | None:
    """The file's rows, or None after printing why it cannot be read at all (exit status 2)."""
    try:
        mapping = parse_mapping(args.mapping)
        return read_source(settings, cli_person(getattr(args, "user", "cli")), args.file, args.input_format, mapping)
    except (UnreadableFile, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return None


def run_validate(args: argparse.Namespace, settings: Settings) -> int:
    result = _read(args, settings)
    if result is None:
        return 2
    if args.report:
        result.write_report(args.report)
    if args.json:
        payload = {"file": str(args.file), "loadable": len(result.records), "rejected": [r.as_dict() for r in result.rejections]}
        print(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        _print_rejections(result, None)
        print(result.summary())
    if result.nothing_loadable():
        print(f"error: {result.nothing_loadable()}", file=sys.stderr)
    return result.exit_code


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        check_name(args.name)
    except InvalidName as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = _read(args, settings)
    if result is None:
        return 2
    if args.report:
        result.write_report(args.report)
    _print_rejections(result, SHOWN_REJECTIONS)
    try:
        info = import_dataset(open_store(settings), cli_person(args.user), result, args.name, args.replace)
    except NothingToLoad as err:
        print(f"error: {err}; no dataset was created", file=sys.stderr)
        return 2
    print(f"imported '{info.name}': {info.n_examples} examples, {info.n_rejected} rejected rows kept in the report")
    return result.exit_code


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    try:
        out, count = export_dataset(open_store(settings), settings, cli_person("cli"), args.dataset, args.format,
                                    args.out, args.dataset_info)
    except (InvalidName, UnsafeExportPath) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {count} records to {out}")
    if args.dataset_info:
        print(f"added '{args.dataset}' to {out.parent / 'dataset_info.json'}")
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
