"""The demo workspace: the bundled Alpaca and Dolly pools, CaR's selection and the eight test sets.

Entry point: :func:`build_demo`. It is idempotent: what is already in the store is left alone, so the
studio can call it on every first start and a half-built demo completes on the next run.
"""

from __future__ import annotations

from dataclasses import dataclass

from curation.config import BUNDLED_DATA_DIR, Settings
from curation.formats import read_file
from curation.progress import ProgressFn, silent
from curation.store import Store
from curation.testsets import BUILTIN, BUILTIN_DIR, read_testset


@dataclass(frozen=True)
class DemoPool:
    name: str
    file: str
    description: str


DEMO_POOLS = (
    DemoPool("alpaca-9k", "alpaca_random_9k.json", "9,229 random Alpaca-52k records (AlpaGasus' random baseline)"),
    DemoPool("dolly-15k", "dolly_15k.jsonl", "databricks-dolly-15k with its 8 categories"),
    DemoPool("car-selected-1k", "car_selected_1k.json", "CaR's own 1k selection from Alpaca (IQS score, cluster)"),
)


def build_demo(store: Store, settings: Settings, progress: ProgressFn | None = None) -> list[str]:
    """Import whatever of the demo is missing; returns the names added."""
    progress = progress or silent
    existing = {d.name for d in store.datasets.all()}
    existing_testsets = {t.name for t in store.testsets.all()}
    steps = len(DEMO_POOLS) + len(BUILTIN)
    added: list[str] = []
    for step, pool in enumerate(DEMO_POOLS):
        progress(step, steps, f"dataset {pool.name}")
        if pool.name in existing:
            continue
        path = BUNDLED_DATA_DIR / "pools" / pool.file
        result = read_file(path, max_field_chars=settings.validation.max_field_chars, source=pool.file)
        store.datasets.create(
            pool.name, result.records, result.rejections, source_path=f"bundled:{pool.file}", fmt=result.format,
            created_by="demo", meta={"description": pool.description, "demo": True},
        )
        added.append(pool.name)
    for step, spec in enumerate(BUILTIN, start=len(DEMO_POOLS)):
        progress(step, steps, f"test set {spec.name}")
        if spec.name in existing_testsets:
            continue
        items = read_testset(BUILTIN_DIR / spec.path, spec.category_field)
        store.testsets.create(spec.name, items, source_path=f"bundled:{spec.path}", category_field=spec.category_field)
        added.append(spec.name)
    progress(steps, steps, "demo ready")
    return added


def demo_is_built(store: Store) -> bool:
    names = {d.name for d in store.datasets.all()}
    testsets = {t.name for t in store.testsets.all()}
    return all(p.name in names for p in DEMO_POOLS) and all(s.name in testsets for s in BUILTIN)
