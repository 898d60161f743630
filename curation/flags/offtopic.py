"""Outputs that ignore their instruction: low cosine between the instruction and the output vectors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from curation.config import FlagConfig
from curation.flags.base import FlagEmbeddings, words
from curation.records import Record


class OffTopicRule:
    name = "off_topic"
    description = "the output barely relates to the instruction (embedding cosine below the threshold)"

    def __init__(self, config: FlagConfig) -> None:
        self.threshold = config.off_topic_similarity
        self.min_words = config.off_topic_min_output_words

    def find(self, records: Sequence[Record], embeddings: FlagEmbeddings) -> dict[int, str]:
        outputs = np.asarray(embeddings.outputs, dtype=np.float32)
        relevance = np.einsum("ij,ij->i", np.asarray(embeddings.instructions, dtype=np.float32), outputs)
        has_input = np.array([bool(r.input.strip()) for r in records], dtype=bool)
        if embeddings.inputs is not None:
            to_input = np.einsum("ij,ij->i", np.asarray(embeddings.inputs, dtype=np.float32), outputs)
            relevance = np.where(has_input, np.maximum(relevance, to_input), relevance)
        found: dict[int, str] = {}
        for index in np.nonzero(relevance < self.threshold)[0]:
            record = records[index]
            # A one-word answer ("Yes", "42") shares little meaning with its question by nature; a task with
            # an input is judged only against that input's vector too.
            if len(words(record.output)) < self.min_words or (has_input[index] and embeddings.inputs is None):
                continue
            what = "the instruction or its input" if has_input[index] else "the instruction"
            found[int(index)] = (
                f"output barely relates to {what} (cosine {_below(relevance[index], self.threshold)} "
                f"< {self.threshold:.2f})"
            )
        return found


def _below(value: float, threshold: float) -> str:
    """Two decimals, or as many as it takes to stay below the threshold ("0.0996", not "0.10 < 0.10")."""
    for decimals in range(2, 6):
        shown = f"{value:.{decimals}f}"
        if float(shown) < threshold:
            return shown
    return shown
