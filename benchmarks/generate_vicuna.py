"""Answer generation speed: SmolLM2-135M-Instruct (the bundled offline model) on Vicuna-80, max 256 new tokens.

Batched generation (left-padded, length-sorted batches, KV cache, bf16: what ``python -m curation generate``
does) against one prompt at a time, measured in the same run, same weights, same dtype, greedy. Tokens/s
counts the answer tokens (up to the end-of-text token), not the padding a finished row carries in its batch.

One prompt at a time over all 80 would take ~25 minutes on 2 cores, so the baseline runs on a fixed subset
(the first 8 questions, --baseline-items) and its tokens/s is compared with the batched run over all 80.
Floor (issue 12): batched ≥ 3x the one-at-a-time tokens/s.

    .venv/bin/python benchmarks/generate_vicuna.py [--batch-size 16] [--baseline-items 8] [--max-new-tokens 256]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from curation.answers.decoding import Decoding
from curation.answers.generators import Generated, LocalGenerator
from curation.answers.items import AnswerItem, alpaca_fields
from curation.answers.models import SMOLLM2, ModelSpec
from curation.config import load_settings
from curation.testsets import BUILTIN_DIR, read_testset

FLOOR = 3.0


def cpu() -> str:
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown (no lscpu)"
    fields = dict(line.split(":", 1) for line in output.splitlines() if ":" in line)
    flags = set(fields.get("Flags", "").split())
    wanted = [f for f in ("avx512_bf16", "amx_bf16", "avx512_vnni", "avx2") if f in flags]
    return f"{fields.get('Model name', '?').strip()} ({', '.join(wanted) or 'no bf16/vnni flags'}), {os.cpu_count()} CPUs"


def vicuna_items() -> list[AnswerItem]:
    items = read_testset(BUILTIN_DIR / "vicuna80.jsonl", "category")
    return [AnswerItem("vicuna80", i.item_id, *alpaca_fields(i), i.category, i.question) for i in items]


def run(generator: LocalGenerator, items: list[AnswerItem], decoding: Decoding, batch_size: int) -> dict:
    generator.batch_size = batch_size
    answers: list[Generated] = []
    started = time.monotonic()
    generator.run(items, decoding, answers.extend)
    seconds = time.monotonic() - started
    tokens = sum(a.completion_tokens for a in answers)
    return {"items": len(answers), "tokens": tokens, "seconds": seconds, "tok_s": tokens / seconds,
            "truncated": sum(a.finish_reason == "truncated" for a in answers)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--baseline-items", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--cache-dir", help="where the de-quantised SmolLM2 folder is kept (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workspace:
        settings = load_settings(env={"CURATION_WORKSPACE": workspace})
        settings.generate.dtype = args.dtype
        if args.cache_dir:
            settings.generate.model_cache_dir = args.cache_dir
        started = time.monotonic()
        generator = LocalGenerator.load(ModelSpec(SMOLLM2, "local", SMOLLM2), settings)
        load_s = time.monotonic() - started
        decoding = Decoding(max_new_tokens=args.max_new_tokens, dtype=args.dtype)
        items = vicuna_items()
        load_before = os.getloadavg()[0]
        single = run(generator, items[: args.baseline_items], decoding, 1)
        batched = run(generator, items, decoding, args.batch_size)
        load_after = os.getloadavg()[0]

    ratio = batched["tok_s"] / single["tok_s"]
    print(f"CPU: {cpu()}")
    print(f"model: SmolLM2-135M-Instruct ({args.dtype}), greedy, Alpaca prompt, max {args.max_new_tokens} new tokens; "
          f"loaded in {load_s:.1f} s")
    print(f"load average (1 min) before / after: {load_before:.1f} / {load_after:.1f} (other work shares the CPUs)")
    print()
    print("| run | items | answer tokens | wall s | tokens/s | truncated |")
    print("|---|---|---|---|---|---|")
    print(f"| one at a time (baseline, first {args.baseline_items} items only) | {single['items']} | {single['tokens']} | "
          f"{single['seconds']:.1f} | {single['tok_s']:.1f} | {single['truncated']} |")
    print(f"| batched, batch {args.batch_size}, length-sorted (all 80) | {batched['items']} | {batched['tokens']} | "
          f"{batched['seconds']:.1f} | {batched['tok_s']:.1f} | {batched['truncated']} |")
    print()
    print(f"batched / one at a time: {ratio:.2f}x tokens/s (floor {FLOOR:.0f}x: {'met' if ratio >= FLOOR else 'NOT met'})")
    print(f"Vicuna-80 wall time, batched: {batched['seconds']:.0f} s ({batched['seconds'] / 60:.1f} min); one at a time "
          f"would take ≈ {batched['tokens'] / single['tok_s'] / 60:.0f} min at the baseline's tokens/s")


if __name__ == "__main__":
    main()
