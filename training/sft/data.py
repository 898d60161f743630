"""Training examples: read a selection export (with its manifest) or any dataset file, format, tokenize.

Every example is ``render_prompt(instruction, input)`` (the one Alpaca template, METHODS.md §1) followed by
the response and the end-of-text token. Labels are ``-100`` on the prompt, so the loss is on the response
only. Sequences are cut at ``max_length`` here (not inside TRL, which would drop fully masked examples
silently): an example whose prompt fills ``max_length`` stays, carries no loss, and is counted in the
run's report. :func:`check_loss_mask` refuses a run where a whole batch carries no loss.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.alpaca import render_prompt
from curation.records import Record

IGNORE = -100
Render = Callable[[str, str], str]


class LossMaskError(ValueError):
    """No token of a batch carries loss: training would silently learn nothing from it."""


@dataclass
class TrainingData:
    path: Path
    records: list[Record]
    manifest: dict[str, Any] | None
    data_hash: str  # the manifest's hash for a selection export, else a hash of the record ids
    rejected: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        if self.manifest:
            dataset = self.manifest.get("dataset", {}).get("name") or "?"
            return f"{self.manifest.get('method', '?')} selection of {dataset} ({self.path.name})"
        return self.path.name


def manifest_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def load_training_data(path: str | Path) -> TrainingData:
    """Records from ``path`` (any format the curation readers read) and the manifest beside it, if any."""
    from curation.formats import read_file

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; pass a selection export or a dataset file with --data")
    result = read_file(path)
    if not result.records:
        raise ValueError(f"{path}: no usable example ({result.summary()}); check the file with `python -m curation validate`")
    manifest = _read_manifest(path)
    records = [r for r in result.records if r.meta.get("keep", True) not in (False, "false", 0)]
    notes = []
    if len(records) < len(result.records):
        notes.append(f"{len(result.records) - len(records)} rows marked keep=false in the export are not trained on")
    if result.rejections:
        notes.append(f"{len(result.rejections)} unreadable rows skipped: {result.rejections[0]}")
    return TrainingData(path, records, manifest, data_hash(records, manifest), len(result.rejections), notes)


def _read_manifest(path: Path) -> dict[str, Any] | None:
    manifest_file = manifest_path_for(path)
    if not manifest_file.exists():
        return None
    from curation.select import read_manifest

    return read_manifest(manifest_file)


def data_hash(records: Sequence[Record], manifest: dict[str, Any] | None) -> str:
    """What the model was trained on: the selection's manifest (minus export details), else the record ids."""
    if manifest:
        core = {k: v for k, v in manifest.items() if k not in ("export", "created_at")}
        text = json.dumps(core, sort_keys=True, ensure_ascii=False)
    else:
        text = json.dumps(sorted(r.id for r in records))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def tokenize_example(record: Record, tokenizer: Any, max_length: int, render: Render = render_prompt) -> dict[str, Any]:
    """input_ids = prompt + response + EOS, cut at max_length; labels copy the response part only."""
    prompt_ids = tokenizer(render(record.instruction, record.input), add_special_tokens=False)["input_ids"]
    bos = [tokenizer.bos_token_id] if _adds_bos(tokenizer) else []
    response_ids = tokenizer(record.output, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    prompt = bos + prompt_ids
    input_ids = (prompt + response_ids)[:max_length]
    labels = ([IGNORE] * len(prompt) + response_ids)[:max_length]
    return {"input_ids": input_ids, "labels": labels, "length": len(input_ids), "id": record.id}


def _adds_bos(tokenizer: Any) -> bool:
    """Llama-style tokenizers expect BOS first; SmolLM2 has none to add."""
    return bool(getattr(tokenizer, "add_bos_token", False)) and tokenizer.bos_token_id is not None


def tokenize_records(records: Iterable[Record], tokenizer: Any, max_length: int, render: Render = render_prompt) -> Any:
    """A ``datasets.Dataset`` with input_ids, labels, length (for length-grouped batches) and id."""
    from datasets import Dataset

    rows = [tokenize_example(r, tokenizer, max_length, render) for r in records]
    return Dataset.from_list(rows)


def response_free_ids(dataset: Any) -> list[str]:
    """Examples left without a response token (the prompt fills max_length): kept, but they teach nothing."""
    return [row["id"] for row in dataset if all(label == IGNORE for label in row["labels"])]


def check_loss_mask(batches: Iterable[dict[str, Any]], max_length: int) -> int:
    """Refuse, before the first step, a run in which some batch has no token carrying loss; returns batches seen."""
    seen = 0
    for seen, batch in enumerate(batches, start=1):
        if int((batch["labels"] != IGNORE).sum()) == 0:
            raise LossMaskError(
                f"Refusing to train: batch {seen} has no response token carrying loss (the prompt fills all "
                f"{max_length} tokens or the template leaves no response), so the run would learn nothing; "
                "raise --max-length or fix the prompt template."
            )
    return seen
