"""Small pieces every command uses: opening the store, reading input, background jobs, progress, tables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from curation import jobs
from curation.config import Settings
from curation.formats import READ_FORMATS, ReadResult, parse_mapping, read_file
from curation.store import NotFound, Store
from curation.studio_auth import Person

INPUT_HELP = "JSON, JSONL, CSV, Parquet or a datasets directory"


def open_store(settings: Settings) -> Store:
    return Store.open(settings)


def local_lead(name: str = "cli") -> Person:
    """Who a CLI call acts as: the machine's owner, a lead (README: the CLI is the local lead's tool)."""
    return Person(name or "cli", "lead", via="cli")


def add_input_arguments(parser: argparse.ArgumentParser, name: str = "input", optional: bool = True, help: str = INPUT_HELP) -> None:
    """The input file, ``--format`` and ``--map``: the same three arguments wherever a command reads a file."""
    parser.add_argument(name, nargs="?" if optional else None, type=Path, help=help)
    parser.add_argument("--format", dest="input_format", choices=READ_FORMATS, help="override detection by extension")
    parser.add_argument("--map", dest="mapping", help="column mapping, e.g. prompt=instruction,completion=output")


def read_input(path: Path, args: argparse.Namespace, settings: Settings) -> ReadResult:
    """Read a command's input file with its --format/--map and the configured validation limits."""
    return read_file(
        path,
        fmt=args.input_format,
        mapping=parse_mapping(args.mapping),
        max_field_chars=settings.validation.max_field_chars,
        source=path.name,
    )


def add_background_arguments(parser: argparse.ArgumentParser, what_wait_prints: str) -> None:
    """``--background``, ``--wait`` and ``--user``: the same three wherever a command can run as a job."""
    group = parser.add_argument_group("background")
    group.add_argument("--background", action="store_true", help="run as a job (see `jobs`) and print its id")
    group.add_argument("--wait", action="store_true", help=f"with --background: wait for the job and print {what_wait_prints}")
    group.add_argument("--user", default="cli", help="who started it (kept with the job)")


def start_background_job(
    store: Store, settings: Settings, kind: str, params: dict[str, Any], title: str, args: argparse.Namespace
) -> jobs.JobInfo | None:
    """Start the job and say how to follow it; with ``--wait`` its final state, else None.

    A job that did not finish well has its error printed here; the caller prints a done job's result.
    """
    job_id = jobs.start(
        store, settings, kind, params, title=title, by=local_lead(args.user), dataset_id=dataset_id_of(store, params)
    )
    print(f"job {job_id} started: follow it with `python -m curation jobs show {job_id}`")
    if not args.wait:
        return None
    info = jobs.wait(store, settings, job_id, timeout_s=7 * 24 * 3600)
    print(f"job {job_id}: {info.state}")
    if info.status != "done":
        print(f"  {info.error or info.message}", file=sys.stderr)
    return info


def dataset_id_of(store: Store, params: dict[str, Any]) -> int | None:
    """The job's dataset as a column (params name it for the handler; lists filter on the column)."""
    name = params.get("dataset")
    if not name:
        return None
    try:
        return store.datasets.get(str(name)).id
    except NotFound:
        return None  # the handler says so in one sentence when it runs


def progress_bar(total: int, description: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar on stderr, driven by (done, total) callbacks as the library reports them."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=description, unit="rec", file=sys.stderr, dynamic_ncols=True)

    def update(done: int, new_total: int) -> None:
        if new_total != bar.total:
            bar.total = new_total
        bar.n = done
        bar.refresh()

    return update, bar.close


def print_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
    rows = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
