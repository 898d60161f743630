"""Comparisons from the Answers store: model A's and model B's stored answers (or the references) to one
test set, paired by item id, with the item's instruction, input and category from the test set.

Items one of the two models has not answered are not judged; they are returned (and shown in the
summary as ``missing``), never dropped silently.
"""

from __future__ import annotations

from curation.judges.pairs import Pair, PairingError, reference_answers
from curation.store import Store

SHOWN_IDS = 3


def stored_outputs(store: Store, model: str, testset: str, decoding: str | None = None) -> dict[str, str]:
    """item id -> answer of ``model`` on ``testset`` (one decoding: named, or the only one stored)."""
    rows = store.answers.of(model, testset, decoding)
    if not rows:
        raise PairingError(
            f"no stored answers of '{model}' on {testset}"
            + (f" with decoding {decoding}" if decoding else "")
            + "; generate or import them first (Answers page, or `python -m curation answers`)"
        )
    decodings = sorted({row.decoding_hash for row in rows})
    if len(decodings) > 1:
        raise PairingError(
            f"'{model}' answered {testset} under {len(decodings)} decodings ({', '.join(decodings)}); "
            "name the one to judge (--decoding-a / --decoding-b)"
        )
    return {row.item_id: row.output for row in rows}


def stored_pairs(
    store: Store,
    testset: str,
    model_a: str,
    model_b: str | None,
    decoding_a: str | None = None,
    decoding_b: str | None = None,
) -> tuple[list[Pair], dict[str, list[str]]]:
    """(pairs in test-set order, {"a": ids A lacks, "b": ids B lacks}); B is the references when None."""
    from curation.answers.items import answer_items  # the Answers feature's view of test items

    items = answer_items(store, [testset])
    outputs_a = stored_outputs(store, model_a, testset, decoding_a)
    if model_b is None:
        outputs_b = {answer.id: answer.output for answer in reference_answers(testset)}
    else:
        outputs_b = stored_outputs(store, model_b, testset, decoding_b)
    missing = {
        "a": [item.item_id for item in items if item.item_id not in outputs_a],
        "b": [item.item_id for item in items if item.item_id not in outputs_b],
    }
    pairs = [
        Pair(item.item_id, item.instruction, item.input, outputs_a[item.item_id], outputs_b[item.item_id], item.category)
        for item in items
        if item.item_id in outputs_a and item.item_id in outputs_b
    ]
    if not pairs:
        raise PairingError(f"'{model_a}' and '{model_b or 'the references'}' have no answered item of {testset} in common")
    return pairs, missing
