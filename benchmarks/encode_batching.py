"""Encoding 500 records: CaR's way (one record per ``model.encode`` call) against ``curation.embed``.

    .venv/bin/python benchmarks/encode_batching.py [--records 500] [--threads N]

Every row embeds the same records (a fixed random draw from the bundled Alpaca and Dolly pools, as
CaR's "Instruction: … Input: … Response: …" text) in the same process, nothing cached:
- baseline: sentence-transformers as CaR calls it, one record per call, fp32, max_seq_length 256;
- the same model batched (fp32, 256): what batching alone buys;
- bf16 at 256 and bf16 at 128 word pieces, longest first, batched: ``curation.embed`` with the
  given settings; the last row is the shipped default (``EmbedConfig``).
Accuracy is the cosine of each row's vectors to the baseline's (fp32, 256): all texts, and separately
those that fit in 128 word pieces (where the 128 window changes nothing).
Prints a markdown table and the speed-up of the default over the baseline; the floor is ≥ 5×.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from curation.config import BUNDLED_DATA_DIR, EmbedConfig, load_settings
from curation.embed import Encoder, load_model, record_text
from curation.formats import read_file

POOLS = ("alpaca_random_9k.json", "dolly_15k.jsonl")


def sample_texts(n: int, template: str) -> list[str]:
    records = [r for pool in POOLS for r in read_file(BUNDLED_DATA_DIR / "pools" / pool, source=pool).records]
    random.Random(0).shuffle(records)
    return [record_text(r, template) for r in records[:n]]


def one_per_call(texts: list[str], config: EmbedConfig) -> tuple[float, np.ndarray]:
    model = load_model(config)
    model.encode(texts[:2])  # warm-up, as for every row
    started = time.perf_counter()
    vectors = np.stack([model.encode(text, normalize_embeddings=True) for text in texts])
    return time.perf_counter() - started, vectors.astype(np.float32)


def batched(texts: list[str], config: EmbedConfig) -> tuple[float, np.ndarray]:
    encoder = Encoder(config)
    for _ in encoder.encode(texts[:8]):  # warm-up
        pass
    started = time.perf_counter()
    vectors = np.zeros((len(texts), encoder.dimension), np.float32)
    for index, batch in encoder.encode(texts):
        vectors[index] = batch
    return time.perf_counter() - started, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    args = parser.parse_args()
    settings = load_settings(env={})
    default = settings.embed.model_copy(update={"threads": args.threads})
    texts = sample_texts(args.records, default.template)
    car_config = default.model_copy(update={"dtype": "float32", "max_length": 256})
    rows = [
        ("CaR's way: one record per call, fp32, 256 (baseline)", one_per_call, car_config),
        ("batched longest first, fp32, 256", batched, car_config),
        ("batched longest first, bf16, 256", batched, default.model_copy(update={"max_length": 256})),
        (f"batched longest first, {default.dtype}, {default.max_length} (default)", batched, default),
    ]
    model = load_model(car_config)
    pieces = np.array([len(ids) for ids in model.tokenizer(texts, truncation=False)["input_ids"]])
    short = pieces <= 128
    results = []
    for label, method, config in rows:
        seconds, vectors = method(texts, config)
        results.append((label, config, seconds, vectors))
    baseline_seconds, reference = results[0][2], results[0][3]
    print(
        f"\n{len(texts)} records, {short.sum()} of them within 128 word pieces; torch threads "
        f"{args.threads or 'default'}; load average {os.getloadavg()[0]:.2f}\n"
    )
    print("| encoding | batch | s | records/s | speed-up | cosine to baseline: mean / min (all) | min (≤128 pieces) |")
    print("|---|---|---|---|---|---|---|")
    for label, config, seconds, vectors in results:
        cosine = (vectors * reference).sum(axis=1)
        batch = 1 if method_is_single(label) else config.batch_size
        print(
            f"| {label} | {batch} | {seconds:.1f} | {len(texts) / seconds:.1f} | {baseline_seconds / seconds:.1f}× "
            f"| {cosine.mean():.4f} / {cosine.min():.4f} | {cosine[short].min():.4f} |"
        )
    print(f"\nspeed-up of the default over CaR's way: {baseline_seconds / results[-1][2]:.1f}× (floor 5×)")


def method_is_single(label: str) -> bool:
    return label.startswith("CaR's way")


if __name__ == "__main__":
    main()
