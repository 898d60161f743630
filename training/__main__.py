"""``python -m training <command>``: one subcommand per training module.

Each module listed in :data:`COMMANDS` provides ``add_arguments(parser)`` and ``main(args) -> int``
and is imported only when its command runs (they pull in torch). Adding a command such as ``sft``
is one more module plus one line here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "iqs": ("training.iqs", "train the IQS quality scorer (CaR expert-revised pairs, MiniLM cross-encoder)"),
    "sft": ("training.sft", "fine-tune a causal LM on a selection (TRL SFTTrainer + PEFT LoRA, Alpaca template)"),
    "export": ("training.sft.export", "export a registry model: its LoRA adapter, or merged into the base weights"),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = argv[0] if argv else None
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        # Only the chosen command's module is imported: the others would load torch for nothing.
        if name == chosen:
            importlib.import_module(module_name).add_arguments(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.main(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
