"""``python -m curation``: every step of the studio, headless.

Each command lives in its own module with a ``register(subparsers)`` function; adding a command is one
module and one entry in ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from curation.config import ConfigError, load_settings

COMMAND_MODULES = (
    "curation.cli.answers",
    "curation.cli.data",
    "curation.cli.demo",
    "curation.cli.explain",
    "curation.cli.flags",
    "curation.cli.jobs",
    "curation.cli.judge",
    "curation.cli.map",
    "curation.cli.rate",
    "curation.cli.select",
    "curation.cli.study",
    "curation.cli.users",
)


class CommandError(Exception):
    """A failure the user can fix; printed as one sentence, exit status 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m curation",
        description="Curate instruction-tuning data: import, validate, rate, flag, select, export.",
    )
    parser.add_argument("--workspace", help="workspace folder (default: ./workspace or $CURATION_WORKSPACE)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the workspace, or $DATABASE_URL)")
    parser.add_argument("--config", help="TOML configuration file (default: ./curation.toml or $CURATION_CONFIG)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one setting (repeatable)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        overrides = list(args.set)
        if args.workspace:
            overrides.insert(0, f"workspace={args.workspace}")
        if args.database_url:
            overrides.insert(0, f"database_url={args.database_url}")
        settings = load_settings(args.config, overrides=overrides)
        return int(args.run(args, settings) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CommandError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        from curation.formats import UnreadableFile
        from curation.jobs import JobError
        from curation.store import AlreadyExists, NotFound

        if isinstance(err, (UnreadableFile, NotFound, AlreadyExists, JobError)):
            print(f"error: {err}", file=sys.stderr)
            return 1
        raise
