"""Small pieces every command uses: opening the store, progress bars, printing tables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from curation.config import Settings
from curation.formats import READ_FORMATS, ReadResult, parse_mapping, read_file
from curation.store import Store

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
