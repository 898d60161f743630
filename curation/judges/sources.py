"""Where a model's answers to a test set come from, for the Compare page: the Answers store (one entry per
model and decoding) or an answer file in the workspace. Both sides of a comparison come from the same kind.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from curation.judges.answer_files import answer_sets
from curation.judges.run import JudgeRequest
from curation.store import Store


@dataclass(frozen=True)
class AnswerSource:
    kind: str  # store | file
    model: str  # the model id (store) or the folder name (file)
    path: str | None = None  # file
    decoding: str | None = None  # store


def answer_sources(store: Store, workspace: Path) -> dict[str, dict[str, AnswerSource]]:
    """Model label -> test set -> where its answers are. Stored models first; a file model is "name (file)"."""
    sources: dict[str, dict[str, AnswerSource]] = defaultdict(dict)
    stored = store.answers.sets()
    decodings: dict[str, set[str]] = defaultdict(set)
    for answer_set in stored:
        decodings[answer_set.model_id].add(answer_set.decoding_hash)
    for answer_set in stored:
        several = len(decodings[answer_set.model_id]) > 1
        label = f"{answer_set.model_id} · {answer_set.decoding_hash[:8]}" if several else answer_set.model_id
        sources[label][answer_set.testset] = AnswerSource("store", answer_set.model_id, decoding=answer_set.decoding_hash)
    for model, files in answer_sets(workspace).items():
        for testset, path in files.items():
            sources[f"{model} (file)"][testset] = AnswerSource("file", model, path=str(path))
    return dict(sources)


def comparison_request(
    judge: str,
    testset: str,
    a: AnswerSource,
    b: AnswerSource | None,
    model: str | None = None,
    base_url: str | None = None,
) -> JudgeRequest:
    """The request judging ``a`` against ``b`` (None: the test set's reference answers) on ``testset``."""
    common = {"judge": judge, "testset": testset, "model": model, "base_url": base_url, "model_a": a.model,
              "model_b": b.model if b else "reference", "reference": None if b else testset}
    if a.kind == "store":
        return JudgeRequest(**common, source="store", a=a.model, b=b.model if b else None, decoding_a=a.decoding,
                            decoding_b=b.decoding if b else None)
    return JudgeRequest(**common, a=a.path, b=b.path if b else None)
