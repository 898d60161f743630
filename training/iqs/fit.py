"""The training loop: pairwise loss, AdamW with warm-up, periodic valid checks that choose the checkpoint."""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from curation.raters.iqs import base_model_path
from training.iqs.batches import Tokenized, bucketed_batches, collate
from training.iqs.data import Pair
from training.iqs.length import fit_length_beta, length_delta
from training.iqs.metrics import pair_metrics
from training.iqs.model import IQSModel

# --select choice -> the valid metric the checkpoint is chosen by
# ("last": the step count only grows, so the latest check always wins -- what --all-pairs uses)
SELECT = {"acc": "valid_acc", "balanced": "valid_acc_balanced", "last": "step"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fit(model: IQSModel, train: Sequence[Pair], valid: Sequence[Pair], args: argparse.Namespace) -> dict[str, Any]:
    """Train; return the trainable state with the best valid accuracy (and when it was reached)."""

    base = args.base or base_model_path()
    data = Tokenized(train, base, args.max_length)
    data.weights = np.array([args.not_longer_weight if p.expert_not_longer else 1.0 for p in train])
    data.length_delta = length_delta(train)
    data.beta = fit_length_beta(train) if args.length_prior == "poe" else 0.0
    log(f"length prior {args.length_prior}: beta {data.beta:.3f}")
    vdata = Tokenized(valid, base, args.max_length)
    lengths = np.array([max(len(a[0]), len(b[0])) for a, b in zip(data.pos, data.neg)])
    rng = np.random.default_rng(args.seed)
    steps_per_epoch = math.ceil(len(train) / args.batch_pairs)
    total_steps = steps_per_epoch * args.epochs
    optimizer, scheduler = make_optimizer(model, args, total_steps)
    eval_every = max(1, steps_per_epoch // max(1, args.evals_per_epoch))
    best: dict[str, Any] = {}
    history: list[dict[str, float]] = []
    step = 0
    for epoch in range(args.epochs):
        model.train(True)
        t_epoch, running = time.time(), []
        for index in bucketed_batches(lengths, args.batch_pairs, rng):
            loss = train_step(model, data, index, optimizer, scheduler, use_bf16=not args.no_bf16)
            running.append(loss)
            step += 1
            if step % 50 == 0:
                log(f"epoch {epoch + 1} step {step}/{total_steps} loss {np.mean(running[-50:]):.4f}")
            if step % eval_every == 0 or step == total_steps:
                result = evaluate(model, vdata, valid, use_bf16=not args.no_bf16)
                result.update(epoch=epoch + 1, step=step, train_loss=float(np.mean(running[-eval_every:])))
                history.append(result)
                log(f"valid {json.dumps(result)}")
                if result[SELECT[args.select]] > best.get(SELECT[args.select], -1.0):
                    best = {**result, "state": model.trainable_state()}
                model.train(True)
        log(f"epoch {epoch + 1} took {time.time() - t_epoch:.0f}s")
    best["history"] = history
    best["length_beta"] = data.beta
    return best


def make_optimizer(model: IQSModel, args: argparse.Namespace, total_steps: int) -> tuple[Any, Any]:
    import torch

    enc, head = model.parameters()
    optimizer = torch.optim.AdamW(
        [{"params": enc, "lr": args.lr}, {"params": head, "lr": args.head_lr}], weight_decay=args.weight_decay
    )
    warmup = max(1, int(total_steps * args.warmup))

    def factor(step: int) -> float:
        # Linear warm-up then linear decay to zero.
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_step(
    model: IQSModel, data: Tokenized, index: np.ndarray, optimizer: Any, scheduler: Any, use_bf16: bool
) -> float:
    import torch

    batch = data.batch(index)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
        scores = model(batch).float()
    n = len(index)
    weights = torch.tensor(data.weights[index], dtype=torch.float32)
    # Product of experts: the fixed length model's log-odds join the margin, so pairs that length
    # already explains give little gradient and pairs it gets wrong give a lot (beta 0 = plain loss).
    prior = torch.tensor(data.beta * data.length_delta[index], dtype=torch.float32)
    margin = scores[:n] - scores[n:] + prior
    loss = (torch.nn.functional.softplus(-margin) * weights).sum() / weights.sum()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
    optimizer.step()
    scheduler.step()
    return float(loss.detach())


def evaluate(model: IQSModel, data: Tokenized, pairs: Sequence[Pair], use_bf16: bool) -> dict[str, float]:
    """Valid pairwise accuracy, overall and on pairs whose expert response is not longer."""
    pos, neg = pair_scores(model, data, len(pairs), use_bf16)
    return pair_metrics(pos, neg, pairs)


def pair_scores(model: IQSModel, data: Tokenized, n: int, use_bf16: bool) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores of the expert and of the original side of each of the ``n`` tokenised pairs."""
    import torch

    model.train(False)
    pos, neg = [], []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
        for start in range(0, n, 32):
            index = np.arange(start, min(start + 32, n))
            scores = model(data.batch(index)).float().numpy()
            pos.append(scores[: len(index)])
            neg.append(scores[len(index) :])
    return np.concatenate(pos), np.concatenate(neg)


def record_scores(model: IQSModel, tokenizer: Any, prompts: Sequence[str], responses: Sequence[str],
                  max_length: int, use_bf16: bool) -> np.ndarray:
    """Raw scores of formatted (prompt, response) records, in order, batched by length."""
    import torch

    enc = tokenizer(list(prompts), list(responses), truncation="longest_first", max_length=max_length)
    rows = list(zip(enc["input_ids"], enc["token_type_ids"]))
    order = np.argsort([len(ids) for ids, _ in rows], kind="stable")
    scores = np.zeros(len(rows))
    model.train(False)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
        for start in range(0, len(rows), 64):
            index = order[start : start + 64]
            scores[index] = model(collate([rows[i] for i in index], tokenizer.pad_token_id)).float().numpy()
    return scores
