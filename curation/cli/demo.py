"""demo: build the demo workspace."""

from __future__ import annotations

import argparse

from curation.cli.common import open_store
from curation.config import Settings
from curation.demo import build_demo


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="build the demo workspace (bundled pools and test sets); idempotent")
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)

    def report(done: int, total: int, message: str = "") -> None:
        print(f"[{done}/{total}] {message}", flush=True)

    added = build_demo(store, settings, report)
    print(f"demo workspace at {settings.workspace.resolve()}: added {len(added)} ({', '.join(added) or 'nothing new'})")
    return 0
