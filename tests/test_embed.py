"""Embeddings with the real offline all-MiniLM-L6-v2: vectors, the on-disk cache, exact long-text cuts.

The model is loaded once per test process (``curation.embed`` keeps it), so only the first test pays.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from curation import embed
from curation.config import ConfigError, Settings
from curation.embed import cache_dir, embed_records, embed_texts, model_slug
from curation.embed_cache import VectorCache, digest
from curation.records import Record

TEXTS = [
    "How do I reverse a list in Python?",
    "Write a Python function that reverses a list.",
    "Give me a recipe for banana bread.",
    "How do I reverse a list in Python?",
]


def no_model(*_args, **_kwargs):
    raise AssertionError("the model was asked for although everything is cached")


@pytest.mark.slow  # loads the sentence-transformers model
def test_vectors_are_unit_float32_and_mean_something(settings: Settings) -> None:
    vectors = embed_texts(TEXTS, settings)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[3])
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.6 and unrelated < 0.3


@pytest.mark.slow  # loads the sentence-transformers model
def test_the_cache_answers_the_second_time_without_the_model(settings: Settings, monkeypatch) -> None:
    calls: list[tuple[int, int]] = []
    first = embed_texts(TEXTS, settings, progress=lambda d, t, _m: calls.append((d, t)))
    assert calls[0] == (0, 3) and calls[-1] == (3, 3), "progress counts distinct texts"
    monkeypatch.setattr(embed, "Encoder", no_model)
    calls.clear()
    again = embed_texts(list(reversed(TEXTS)), settings, progress=lambda d, t, _m: calls.append((d, t)))
    assert np.array_equal(again, first[::-1]) and calls == [(3, 3)]
    assert [p.suffix for p in VectorCache(cache_dir(settings)).shards()] == [".vec"]


@pytest.mark.slow  # loads the sentence-transformers model
def test_without_the_cache_the_same_vectors_are_computed_and_nothing_is_written(settings: Settings) -> None:
    fresh = embed_texts(TEXTS[:2], settings, cache=False)
    assert not cache_dir(settings).exists()
    assert np.allclose(fresh, embed_texts(TEXTS[:2], settings), atol=1e-6)


@pytest.mark.slow  # loads the sentence-transformers model
def test_records_are_embedded_through_the_template_and_cached_by_template(settings: Settings, monkeypatch) -> None:
    records = [Record("Name a fruit", "", "Apple"), Record("Translate", "bonjour", "hello", category="translation")]
    vectors = embed_records(records, settings)
    as_text = embed_texts(["Instruction: Name a fruit\nInput: \nResponse: Apple"], settings)
    assert np.allclose(vectors[0], as_text[0], atol=1e-6)
    monkeypatch.setattr(embed, "Encoder", no_model)
    assert np.array_equal(embed_records(records, settings), vectors)
    monkeypatch.undo()
    other = settings.model_copy(update={"embed": settings.embed.model_copy(update={"template": "{instruction} => {output}"})})
    assert not np.allclose(embed_records(records, other)[1], vectors[1], atol=1e-3)


@pytest.mark.slow  # loads the sentence-transformers model
def test_long_texts_are_cut_at_a_word_boundary_without_changing_the_word_pieces(settings: Settings) -> None:
    encoder = embed.Encoder(settings.embed)
    window = settings.embed.max_length
    long_prose = " ".join(f"word{i} and more text" for i in range(400))  # thousands of characters
    huge_words = " ".join("x" * 150 for _ in range(12))  # each word is one [UNK]: the cut would not fill 128
    no_spaces = "y" * 5000
    texts = [long_prose, huge_words, no_spaces, "short text"]
    cut = encoder._features(texts)
    full = encoder.model.preprocess(texts)
    assert cut["input_ids"].shape[1] <= window
    assert np.array_equal(cut["input_ids"].numpy(), full["input_ids"].numpy())
    assert np.array_equal(cut["attention_mask"].numpy(), full["attention_mask"].numpy())


@pytest.mark.slow  # loads the sentence-transformers model
def test_bf16_stays_within_cosine_0_999_of_fp32(settings: Settings) -> None:
    fp32 = settings.model_copy(update={"embed": settings.embed.model_copy(update={"dtype": "float32"})})
    assert model_slug(fp32.embed) != model_slug(settings.embed), "precision is part of the cache folder"
    cosine = (embed_texts(TEXTS, settings, cache=False) * embed_texts(TEXTS, fp32, cache=False)).sum(axis=1)
    assert cosine.min() > 0.999


def test_configuration_mistakes_are_one_sentence(settings: Settings) -> None:
    missing = settings.model_copy(update={"embed": settings.embed.model_copy(update={"model": "/nowhere/model"})})
    with pytest.raises(ConfigError, match="not a local directory"):
        embed_texts(["x"], missing)
    bad_template = settings.model_copy(update={"embed": settings.embed.model_copy(update={"template": "{prompt}"})})
    with pytest.raises(ConfigError, match=r"embed.template uses \{prompt\}"):
        embed_records([Record("a", "", "b")], bad_template)
    assert embed_texts([], settings).shape == (0, 384)


# --- the vector cache on its own (no model) -------------------------------------------------------


def _write_shard(directory: str, start: int) -> None:
    keys = np.array([digest("t", str(i)) for i in range(start, start + 500)], "S16")
    VectorCache(Path(directory)).add(keys, np.full((500, 8), start, np.float32))


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_shard, args=(str(tmp_path), start)) for start in (0, 500, 1000, 1500)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    cache = VectorCache(tmp_path)
    keys = np.array([digest("t", str(i)) for i in range(2000)], "S16")
    found, vectors = cache.lookup(keys)
    assert found.all() and np.array_equal(vectors[:, 0], np.repeat([0, 500, 1000, 1500], 500).astype(np.float32))
    assert not list(tmp_path.glob(".*.tmp"))


def test_merging_shards_keeps_every_vector_and_ignores_half_written_files(tmp_path: Path) -> None:
    cache = VectorCache(tmp_path)
    for start in range(0, 1300, 100):
        keys = np.array([digest("t", str(i)) for i in range(start, start + 100)], "S16")
        cache.add(keys, np.arange(start, start + 100, dtype=np.float32)[:, None].repeat(4, axis=1))
    (tmp_path / ".abandoned.tmp").write_bytes(b"half a shard")
    assert cache.compact_if_fragmented(max_shards=12) and len(cache.shards()) == 1
    found, vectors = cache.lookup(np.array([digest("t", str(i)) for i in (5, 1299, 5000)], "S16"))
    assert found.tolist() == [True, True, False]
    assert vectors[:2, 0].tolist() == [5.0, 1299.0] and vectors[2].tolist() == [0.0] * 4
