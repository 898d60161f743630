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
from curation.progress import ProgressFn
from curation.store import Store
from curation.studio_auth import cli_person

INPUT_HELP = "JSON, JSONL, CSV, Parquet or a datasets directory"


def open_store(settings: Settings) -> Store:
    return Store.open(settings)


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
    store: Store,
    settings: Settings,
    kind: str,
    params: dict[str, Any],
    title: str,
    args: argparse.Namespace,
    start: Callable[[], int] | None = None,
) -> jobs.JobInfo | None:
    """Start the job and say how to follow it; with ``--wait`` its final state, else None.

    ``start`` replaces ``jobs.start`` when the job is launched through a library call that checks who
    launches it (e.g. :func:`curation.raters.run.start_rating`). A job that did not finish well has its
    error printed here; the caller prints a done job's result.
    """
    dataset_id = jobs.dataset_id_named(store, params.get("dataset"))
    job_id = start() if start else jobs.start(
        store, settings, kind, params, title=title, by=cli_person(args.user), dataset_id=dataset_id
    )
    print(f"job {job_id} started: follow it with `python -m curation jobs show {job_id}`")
    if not args.wait:
        return None
    info = jobs.wait(store, settings, job_id, timeout_s=7 * 24 * 3600)
    print(f"job {job_id}: {info.state}")
    if info.status != "done":
        print(f"  {info.error or info.message}", file=sys.stderr)
    return info


class _StageBar:
    """tqdm bars on stderr, created with the first report; the message names the bar.

    A new stage (its total changes, or its count starts again) closes the bar and opens the next, so
    "embedding 0..n" then "clustering 0..1" draw as two bars rather than one that jumps back.
    """

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar: Any = None

    def __call__(self, done: int, total: int, message: str = "") -> None:
        text = message or self.description
        if self.bar is None or total != self.bar.total or done < self.bar.n:
            from tqdm import tqdm

            self.close()
            self.bar = tqdm(total=total, desc=text, unit="rec", file=sys.stderr, dynamic_ncols=True)
        elif text != self.bar.desc:
            self.bar.set_description(text, refresh=False)
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_bar(description: str = "") -> tuple[ProgressFn, Callable[[], None]]:
    """A :data:`~curation.progress.ProgressFn` that draws on stderr, and the function that closes it.

    Nothing is drawn until the library reports, so a command refused up front prints only its error.
    ``description`` names the bar when a report carries no message.
    """
    bar = _StageBar(description)
    return bar, bar.close


def print_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
    rows = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
