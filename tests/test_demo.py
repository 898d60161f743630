"""The demo workspace: bundled pools and test sets, built once, completed if half-built."""

from __future__ import annotations

from curation.config import Settings
from curation.demo import DEMO_POOLS, build_demo, demo_is_built
from curation.store import Store
from curation.testsets import BUILTIN


def test_demo_builds_once_and_reports_progress(sqlite_store: Store, settings: Settings) -> None:
    seen: list[tuple[str, int, int]] = []
    added = build_demo(sqlite_store, settings, lambda d, t, m: seen.append((m, d, t)))
    assert set(added) == {p.name for p in DEMO_POOLS} | {s.name for s in BUILTIN}
    assert seen[-1] == ("demo ready", len(added), len(added)) and demo_is_built(sqlite_store)
    sizes = {d.name: (d.n_examples, d.n_rejected) for d in sqlite_store.datasets.all()}
    assert sizes["alpaca-9k"] == (9225, 4) and sizes["dolly-15k"][0] + sizes["dolly-15k"][1] == 15011
    assert build_demo(sqlite_store, settings) == []


def test_half_built_demo_is_completed(sqlite_store: Store, settings: Settings) -> None:
    build_demo(sqlite_store, settings)
    sqlite_store.datasets.delete("dolly-15k")
    assert not demo_is_built(sqlite_store)
    assert build_demo(sqlite_store, settings) == ["dolly-15k"]
