"""Model inputs: pairs tokenised once, padded per batch, batched by similar length."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.iqs.data import Pair


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
