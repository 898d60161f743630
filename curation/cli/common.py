"""Small pieces every command uses: opening the store, progress bars, printing tables."""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterable, Sequence

from curation.config import Settings
from curation.store import Store


def open_store(settings: Settings) -> Store:
    return Store.open(settings)


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
