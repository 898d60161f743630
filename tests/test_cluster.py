"""Clusters (PCA + k-means, c-TF-IDF names), the UMAP map, their caches, and the embed/map jobs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curation import cluster, jobs
from curation.cluster import (
    build_map,
    cached_map,
    choose_k,
    cluster_names,
    cluster_records,
    cluster_vectors,
    dataset_map,
    default_k,
    nearest,
    project_2d,
)
from curation.config import ClusterConfig, Settings
from curation.records import Record
from curation.store import Store
from curation.studio_auth import Person

LEAD = Person("lead", "lead")  # jobs are launched by someone allowed to

TOPICS = {
    "python": ["Write a Python function to sort a list", "Fix this Python loop", "Explain Python decorators"],
    "poem": ["Write a poem about the sea", "Compose a short poem on autumn", "A poem about love and rain"],
    "recipe": ["Give me a recipe for soup", "A recipe for chocolate cake", "How do I bake bread? recipe please"],
}


def blobs(per_topic: int = 30, seed: int = 0) -> tuple[np.ndarray, list[str], list[str]]:
    """Three well-separated groups of unit vectors, with instructions that name their topic."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 16) * 5
    vectors, texts, ids = [], [], []
    for t, (topic, phrases) in enumerate(TOPICS.items()):
        for i in range(per_topic):
            vectors.append(centres[t] + rng.normal(0, 0.3, 16))
            texts.append(phrases[i % len(phrases)])
            ids.append(f"{topic}-{i:03d}")
    array = np.array(vectors, np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True), texts, ids


def test_k_is_cars_floor_of_root_n_over_two_unless_configured() -> None:
    assert [default_k(n) for n in (0, 1, 3, 8, 52_000)] == [0, 1, 1, 2, 161]
    assert choose_k(10, ClusterConfig(k=40)) == 10 and choose_k(100, ClusterConfig(k=4)) == 4


def test_clusters_recover_the_groups_are_named_by_their_words_and_numbered_by_size() -> None:
    vectors, texts, ids = blobs()
    # one extra python example makes that cluster the largest: it must be cluster 0
    vectors = np.vstack([vectors, vectors[:1]])
    texts, ids = texts + [texts[0]], ids + ["python-999"]
    result = cluster_vectors(vectors, texts, ClusterConfig(k=3), ids)
    assert result.k == 3 and sorted(result.sizes, reverse=True) == result.sizes == [31, 30, 30]
    by_topic = pd.Series(result.labels).groupby([i.split("-")[0] for i in ids]).nunique()
    assert (by_topic == 1).all(), "each topic is one cluster"
    assert result.labels[0] == 0 and "python" in result.names[0].split(", ")
    assert {"poem", "recipe"} <= {word for name in result.names for word in name.split(", ")}
    assert 0.95 <= result.explained_variance <= 1.0 and result.n_components <= 16


def test_clusters_do_not_depend_on_the_order_of_the_rows() -> None:
    vectors, texts, ids = blobs(per_topic=25, seed=1)
    first = cluster_vectors(vectors, texts, ClusterConfig(), ids)
    order = np.random.default_rng(5).permutation(len(ids))
    second = cluster_vectors(vectors[order], [texts[i] for i in order], ClusterConfig(), [ids[i] for i in order])
    assert first.k == default_k(75) == 6
    assert np.array_equal(first.labels[order], second.labels) and first.names == second.names


def test_names_keep_programming_languages_whole() -> None:
    texts = ["Write C++ code", "C++ templates", "C# generics", "C# events", "Java streams", "Java classes"]
    names = cluster_names(texts, np.array([0, 0, 1, 1, 2, 2]), 3, terms=1)
    assert names == ["c++", "c#", "java"]


def test_nearest_neighbours_are_exact_and_a_point_is_its_own_first() -> None:
    vectors, _, _ = blobs(per_topic=20, seed=4)
    vectors = np.vstack([vectors, vectors[:1]])  # a duplicate of row 0 must not displace row 60 from first place
    indices, distances = nearest(vectors, vectors, 5, same=True, chunk=7)
    expected = np.argsort(-(vectors @ vectors.T), axis=1, kind="stable")
    assert indices[:, 0].tolist() == list(range(61))
    for row in range(61):
        assert set(indices[row, 1:]) <= set(expected[row, :6]) and distances[row, 0] == 0.0
    assert (np.diff(distances[:, 1:], axis=1) >= -1e-6).all()


def test_few_points_get_a_pca_layout_without_umap() -> None:
    vectors, _, _ = blobs(per_topic=3)
    coords = project_2d(vectors, ClusterConfig())
    assert coords.shape == (9, 2) and np.isfinite(coords).all() and coords.std() > 0


@pytest.mark.slow
def test_above_the_fit_sample_umap_fits_a_sample_and_places_the_rest() -> None:
    vectors, _, ids = blobs(per_topic=60, seed=2)
    stages: list[str] = []
    coords = project_2d(vectors, ClusterConfig(umap_fit_sample=100, umap_seed=3), lambda d, t, m: stages.append(m))
    assert coords.shape == (180, 2) and np.isfinite(coords).all()
    assert stages == [
        "finding neighbours of 100 points",
        "fitting UMAP on 100 points",
        "placing the other 80 points",
        "map ready",
    ]
    topic = np.array([i.split("-")[0] for i in ids])
    centres = {t: coords[topic == t].mean(axis=0) for t in TOPICS}
    spread = max(np.linalg.norm(coords[topic == t] - centres[t], axis=1).mean() for t in TOPICS)
    gap = min(np.linalg.norm(centres[a] - centres[b]) for a in TOPICS for b in TOPICS if a < b)
    assert gap > 2 * spread, "the three topics stay apart on the map"


def topic_records(per_topic: int = 8) -> list[Record]:
    return [
        Record(f"{phrase} (variant {i})", "", f"An answer about {topic} number {i}.", category=topic)
        for topic, phrases in TOPICS.items()
        for i in range(per_topic)
        for phrase in phrases[:1]
    ]


@pytest.mark.slow
def test_the_map_is_built_once_then_read_from_the_cache(settings: Settings, monkeypatch) -> None:
    records = topic_records()
    stages: set[str] = set()
    frame = build_map(records, settings, lambda d, t, m: stages.add(m))
    assert list(frame.columns) == ["id", "x", "y", "cluster", "cluster_name"]
    assert frame["id"].tolist() == [r.id for r in records] and {"embedding", "clustering"} <= stages
    assert frame["cluster"].nunique() == default_k(len(records)) == 3
    for name in ("embed_records", "project_2d", "cluster_vectors"):
        monkeypatch.setattr(cluster, name, lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = build_map(list(reversed(records)), settings)
    pd.testing.assert_frame_equal(again, frame.iloc[::-1].reset_index(drop=True))
    assert cluster_records(records, settings).labels.tolist() == frame["cluster"].tolist()
    changed = settings.model_copy(update={"cluster": settings.cluster.model_copy(update={"k": 2})})
    assert cached_map([r.id for r in records], changed) is None, "another k is another map"


@pytest.mark.slow
def test_the_map_job_computes_a_datasets_map_that_the_map_page_reads(store: Store, settings: Settings) -> None:
    info = store.datasets.create("topics", topic_records(), created_by="tests")
    assert dataset_map(store, settings, "topics") is None
    embedded = jobs.run(store, settings, jobs.submit(store, settings, "embed", {"dataset": "topics"}, by=LEAD))
    assert embedded.status == "done" and embedded.result["n"] == 24 and embedded.result["dimension"] == 384
    mapped = jobs.run(store, settings, jobs.submit(store, settings, "map", {"dataset": info.id}, by=LEAD))
    assert mapped.status == "done", mapped.error
    assert (mapped.result["n"], mapped.result["k"], mapped.done, mapped.total) == (24, 3, mapped.total, mapped.total)
    frame = dataset_map(store, settings, "topics")
    assert frame is not None and sorted(frame["id"]) == sorted(r.id for r in topic_records())


def test_names_are_the_top_three_c_tf_idf_terms_of_each_cluster() -> None:
    texts = ["Translate this sentence into French", "Translate the French poem", "French translation of a word",
             "Write a Python function to sort a list", "Python code for a list comprehension", "Fix my Python list"]
    names = cluster_names(texts, np.array([0, 0, 0, 1, 1, 1]), 2)
    assert names[0].split(", ")[0] == "french" and "translate" in names[0]
    assert set(names[1].split(", ")[:2]) == {"list", "python"}
    assert all(len(n.split(", ")) == 3 for n in names)


def test_words_every_cluster_uses_name_none_of_them() -> None:
    topics = ["sea beach", "mountain snow", "city street", "forest tree"]
    texts = [f"Walk question {i}: describe place {i}. {topics[i % 4]}" for i in range(40)]
    names = cluster_names(texts, np.array([i % 4 for i in range(40)]), 4)
    assert [set(n.split(", ")) for n in names] == [set(t.split()) for t in topics]
