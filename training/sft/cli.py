"""Arguments of ``python -m training sft`` and the run they start."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from typing import Any

from training.sft.presets import OVERRIDABLE, PRESETS

# Flags that set one preset field each (the rest go through --set FIELD=VALUE).
FIELD_FLAGS = {
    "epochs": float, "learning_rate": float, "global_batch": int, "per_device_batch": int, "max_length": int,
    "lora_r": int, "seed": int,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="a selection export (its .manifest.json beside it) or any dataset file")
    parser.add_argument("--out", required=True, help="output folder: metrics.jsonl, checkpoints/, adapter/ or model/, result.json")
    parser.add_argument("--base-model", default="", help="Hugging Face name or local folder; smollm2-135m is the bundled "
                        "SmolLM2-135M-Instruct (default: the preset's)")
    parser.add_argument("--preset", default="local", choices=sorted(PRESETS), help="training settings (default: local)")
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after N optimiser steps (default: the preset's epochs)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    kind.add_argument("--lora", action="store_true", help="LoRA even where the preset fine-tunes fully")
    for name, kind_of in FIELD_FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind_of, default=None, help=f"override the preset's {name}")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help=f"override any preset field: {', '.join(OVERRIDABLE)}")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in OUT/checkpoints")
    parser.add_argument("--no-register", action="store_true", help="do not record the model in the workspace's registry")
    parser.add_argument("--job-id", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--role", default="", help="what the run is in a comparison: selection, full pool, random")
    parser.add_argument("--name", default="", help="the registry name (default: the output folder's name)")
    parser.add_argument("--user", default="cli", help="who launched it, for the registry")


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name in FIELD_FLAGS:
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected FIELD=VALUE")
        overrides[key.strip()] = value.strip()
    if args.full:
        overrides["lora"] = False
    if args.lora:
        overrides["lora"] = True
    return overrides


def die_with_parent() -> None:
    """Under a studio job: stop if the job's worker dies, so a resumed job never meets a second trainer."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(args: argparse.Namespace) -> int:
    from training.sft.data import LossMaskError
    from training.sft.run import CANCELLED_EXIT, RunConfig, train

    if args.job_id is not None:
        die_with_parent()
    config = RunConfig(
        data=args.data, out_dir=args.out, base_model=args.base_model, preset=args.preset,
        overrides=overrides_from(args), max_steps=args.max_steps, resume=args.resume, register=not args.no_register,
        job_id=args.job_id, role=args.role, name=args.name, created_by=args.user,
        command=shlex.join(["python", "-m", "training", *sys.argv[1:]]) if sys.argv[1:2] == ["sft"] else "",
    )
    try:
        result = train(config)
    except (LossMaskError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":  # under accelerate, one summary, from the main process
        print(json.dumps(result.to_dict(), indent=2))
    return CANCELLED_EXIT if result.status == "cancelled" else 0
