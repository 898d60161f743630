"""The IQS scorer (CaR) behind the Rater protocol: scored in chunks, each chunk stored as it is done.

Every ok rating carries an explanation (:func:`curation.explain.reference_text`: the score and its place
in the Alpaca reference pool); the sentence that moves it is added later by :mod:`curation.explain`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

from curation.config import IQSConfig
from curation.explain import load_meaning, reference_text
from curation.progress import ProgressFn
from curation.raters.base import RatingResult, ResultsFn
from curation.records import Record


class IQSRater:
    name = "iqs"
    dimension: str | None = None

    def __init__(self, scorer: Any, chunk_size: int = 512) -> None:
        self.scorer = scorer
        # The card's pool quantiles place each score at rating time (the rating's non-empty explanation).
        weights_dir = getattr(scorer, "weights_dir", None)
        self.pool_quantiles = load_meaning(weights_dir).get("pool_quantiles") if weights_dir else None
        # A chunk is the unit that survives a kill: small enough to lose little, large enough for full batches.
        self.chunk_size = chunk_size

    @classmethod
    def load(cls, config: IQSConfig) -> IQSRater:
        from curation.raters.iqs import IQSScorer  # torch: only where scoring happens

        scorer = IQSScorer.load(
            weights_dir=config.weights or None,
            device=config.device,
            batch_size=config.batch_size,
            max_length=config.max_length,
        )
        # A whole number of batches per chunk keeps each chunk's batches those of one big call.
        return cls(scorer, chunk_size=config.batch_size * max(4, math.ceil(256 / config.batch_size)))

    @property
    def version(self) -> str:
        return str(self.scorer.version)

    def rate(
        self, records: Sequence[Record], progress: ProgressFn | None = None, on_results: ResultsFn | None = None
    ) -> list[RatingResult]:
        total = len(records)
        in_input_order: list[RatingResult | None] = [None] * total
        encoded = self.scorer.encode([r.instruction for r in records], [r.input for r in records],
                                     [r.output for r in records])
        # Chunks follow the scorer's own token-length order, so they hold its very batches: ordering by
        # characters and re-sorting inside 256-record chunks padded ~10-20% more on Alpaca.
        order = encoded.length_order()
        for start in range(0, total, self.chunk_size):
            positions = order[start : start + self.chunk_size]
            chunk = [records[i] for i in positions]
            chunk_progress = None
            if progress is not None:
                chunk_progress = lambda done, _total, offset=start: progress(offset + done, total, f"scored {offset + done}/{total}")
            raw = self.scorer.score_encoded(encoded.take(positions), progress=chunk_progress)
            scaled = self.scorer.to_0_5(raw)
            texts = reference_text(raw, scaled, self.pool_quantiles)
            batch = [
                _result(record, float(value), float(value_0_5), text)
                for record, value, value_0_5, text in zip(chunk, raw, scaled, texts)
            ]
            if on_results is not None:
                on_results(batch)
            for position, result in zip(positions, batch):
                in_input_order[position] = result
            if progress is not None:
                progress(start + len(chunk), total, f"scored {start + len(chunk)}/{total}")
        return cast(list[RatingResult], in_input_order)  # length_order is a permutation: every slot is filled


def _result(record: Record, raw: float, scaled: float, explanation: str) -> RatingResult:
    if not (math.isfinite(raw) and math.isfinite(scaled)):
        return RatingResult(record.id, "error", None, None, None, f"the scorer returned {raw} for this example")
    return RatingResult(record.id, "ok", raw, scaled, explanation)
