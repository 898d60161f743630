"""Clusters and the 2-D map of a dataset: PCA(0.95) + k-means (CaR's k = ⌊√(n/2)⌋), names, UMAP.

Entry points: :func:`cluster_records` (labels, names and sizes, cached) and :func:`build_map`
(``id, x, y, cluster, cluster_name``, cached). Vectors are put in record-id order before fitting, so the
same examples give the same clusters whatever order a file lists them in. Heavy libraries (sklearn,
umap) are imported inside the functions that need them: a warm reopen reads two Parquet files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curation.config import ClusterConfig, Settings
from curation.embed import embed_records, model_slug
from curation.progress import ProgressFn, silent
from curation.records import Record
from curation.store.datasets import content_hash

# (message, done, total), like the demo builder: a map goes through several stages.
NAME_TERMS = 3
# Bump when the way clusters or maps are computed changes, so old cache files are not reused.
ALGORITHM_VERSION = "2"  # 2: cluster names by sklearn c-TF-IDF, three terms


@dataclass
class ClusterResult:
    labels: np.ndarray  # cluster of each input row, in input order
    names: list[str]  # by cluster number
    sizes: list[int]  # by cluster number
    k: int
    n_components: int  # PCA components kept
    explained_variance: float

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame({"cluster": range(self.k), "name": self.names, "size": self.sizes})


def default_k(n: int) -> int:
    """CaR's number of clusters: ⌊√(n/2)⌋, at least 1."""
    return max(1, math.isqrt(n // 2)) if n else 0


def choose_k(n: int, config: ClusterConfig) -> int:
    return min(n, config.k if config.k > 0 else default_k(n))


def cluster_vectors(
    vectors: np.ndarray, instructions: Sequence[str], config: ClusterConfig, ids: Sequence[str] | None = None
) -> ClusterResult:
    """PCA keeping ``config.pca_variance`` of the variance, then k-means; clusters numbered by size."""
    n = len(vectors)
    if n == 0:
        return ClusterResult(np.zeros(0, np.int64), [], [], 0, 0, 0.0)
    order = np.argsort(np.asarray(ids), kind="stable") if ids is not None else np.arange(n)
    reduced, n_components, explained = reduce(vectors[order], config)
    k = choose_k(n, config)
    # Numbered in id order, so equal-sized clusters are numbered the same whatever the input order.
    labels_sorted = _number_by_size(_kmeans(reduced, k, config.seed), k)
    labels = np.empty(n, np.int64)
    labels[order] = labels_sorted
    texts = list(instructions)
    names = cluster_names(texts, labels, k)
    sizes = np.bincount(labels, minlength=k).tolist()
    return ClusterResult(labels, names, sizes, k, n_components, explained)


def reduce(vectors: np.ndarray, config: ClusterConfig) -> tuple[np.ndarray, int, float]:
    """PCA down to the fewest components that keep ``pca_variance`` of the variance.

    Computed from the d x d covariance (d = 384) rather than an SVD of the n x d data: the same
    components, in well under a second for 52k rows where sklearn's full SVD took tens of seconds here.
    """
    if len(vectors) < 3 or not 0 < config.pca_variance < 1:
        return vectors, vectors.shape[1], 1.0
    centred = np.asarray(vectors, np.float64) - np.asarray(vectors, np.float64).mean(axis=0)
    variances, axes = np.linalg.eigh(centred.T @ centred / (len(centred) - 1))
    variances, axes = np.clip(variances[::-1], 0.0, None), axes[:, ::-1]
    if variances.sum() <= 0:
        return np.zeros((len(vectors), 1), np.float32), 1, 1.0
    ratio = variances / variances.sum()
    n_components = min(int(np.searchsorted(np.cumsum(ratio), config.pca_variance, side="right")) + 1, len(ratio))
    axes = axes[:, :n_components]
    # The sign of an axis is arbitrary; fixing it keeps the numbers the same on every machine.
    axes = axes * np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(n_components)])
    return (centred @ axes).astype(np.float32), n_components, float(ratio[:n_components].sum())


def _kmeans(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    if k <= 1:
        return np.zeros(len(points), np.int64)
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, random_state=seed, n_init="auto").fit_predict(points).astype(np.int64)


def _number_by_size(labels: np.ndarray, k: int) -> np.ndarray:
    """Cluster 0 is the largest: numbers then mean something to a reader and do not depend on k-means."""
    sizes = np.bincount(labels, minlength=k)
    first_seen = np.full(k, len(labels))
    np.minimum.at(first_seen, labels, np.arange(len(labels)))
    rank = np.lexsort((first_seen, -sizes))
    renumber = np.empty(k, np.int64)
    renumber[rank] = np.arange(k)
    return renumber[labels]


def cluster_names(texts: Sequence[str], labels: np.ndarray, k: int, terms: int = NAME_TERMS) -> list[str]:
    """Each cluster's ``terms`` most distinctive words, by class-based TF-IDF as BERTopic does it: all of a
    cluster's instructions are one document, and scikit-learn's CountVectorizer + TfidfTransformer weigh the
    words of the k documents (a word frequent in one cluster and rare in the others ranks first)."""
    if k == 0:
        return []
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    documents = [[] for _ in range(k)]
    for text, label in zip(texts, labels):
        documents[int(label)].append(text)
    # Words start with a letter, have two characters or more (no stray "s" from "summer's") and may carry
    # + or # so that C++ and C# stay themselves.
    # With four clusters or more, a word used in every cluster names none of them (the dataset's template
    # words: "walk question place" everywhere); with fewer, or if nothing else is left, it may.
    joined = ["\n".join(parts) for parts in documents]
    counts = vectorizer = None
    for max_df in ([0.99, 1.0] if k >= 4 else [1.0]):
        vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][\w+#]+", max_features=30000,
                                     max_df=max_df)
        try:
            counts = vectorizer.fit_transform(joined)
            break
        except ValueError:  # nothing but stop words (or, with max_df, only words every cluster uses)
            continue
    if counts is None:
        return [f"cluster {c}" for c in range(k)]
    scores = TfidfTransformer(sublinear_tf=True).fit_transform(counts).toarray()
    vocabulary = vectorizer.get_feature_names_out()
    names = []
    for cluster in range(k):
        best = np.argsort(-scores[cluster], kind="stable")[:terms]
        chosen = [str(vocabulary[i]) for i in best if scores[cluster, i] > 0]
        names.append(", ".join(chosen) or f"cluster {cluster}")
    return names


def estimate_map_seconds(n: int) -> float:
    """Rough wall time of a map job for ``n`` examples on a small CPU machine (2 cores): start-up, embedding
    (about 150 examples/s with all-MiniLM-L6-v2), k-means, and UMAP past its minimum size. An estimate to show
    before launching, proportional to the count, not a promise."""
    embed = n / 150
    umap = 15 + n / 1500 if n >= 64 else 0
    return 10 + embed + umap


def describe_seconds(seconds: float) -> str:
    """"about 40 s", "about 3 min", "about 1 h 10 min"."""
    if seconds < 90:
        return f"about {max(5, round(seconds / 5) * 5):.0f} s"
    minutes = round(seconds / 60)
    return f"about {minutes} min" if minutes < 60 else f"about {minutes // 60} h {minutes % 60} min"


def project_2d(vectors: np.ndarray, config: ClusterConfig, progress: ProgressFn | None = None) -> np.ndarray:
    """UMAP to 2-D (cosine); above ``umap_fit_sample`` points it is fitted on a sample and the rest placed.

    The neighbour graph UMAP starts from is computed exactly by matrix products (rows are unit vectors,
    so cosine is a dot product): on two cores that is faster than pynndescent, whose compilation alone
    takes most of a minute in every new process. The points outside the sample are placed as UMAP's
    transform starts them: at the membership-weighted mean of their nearest sample points.
    """
    progress = progress or silent
    n = len(vectors)
    if n < 20:
        return _pca_2d(vectors)  # UMAP's spectral layout needs more points than its neighbourhood
    vectors = _unit_rows(vectors)
    k = min(config.umap_neighbors, n - 1)
    sample = np.arange(n)
    if 0 < config.umap_fit_sample < n:
        sample = np.sort(np.random.default_rng(config.seed).choice(n, config.umap_fit_sample, replace=False))
    fitted = vectors[sample]
    progress(0, n, f"finding neighbours of {len(sample)} points")
    indices, distances = nearest(fitted, fitted, k, same=True)
    progress(0, n, f"fitting UMAP on {len(sample)} points")
    coords = np.zeros((n, 2), np.float32)
    coords[sample] = _fit_umap(config, k, indices, distances, fitted)
    rest = np.setdiff1d(np.arange(n), sample)
    if len(rest):
        progress(len(sample), n, f"placing the other {len(rest)} points")
        near, near_distances = nearest(vectors[rest], fitted, k)
        coords[rest] = _weighted_place(coords[sample], near, near_distances)
    progress(n, n, "map ready")
    return coords


def nearest(
    queries: np.ndarray, points: np.ndarray, k: int, same: bool = False, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest ``points`` of each query by cosine distance, closest first (itself first if ``same``)."""
    k = min(k, len(points))
    indices = np.empty((len(queries), k), np.int64)
    distances = np.empty((len(queries), k), np.float32)
    for start in range(0, len(queries), chunk):
        similarity = queries[start : start + chunk] @ points.T
        if same:
            rows = np.arange(len(similarity))
            similarity[rows, rows + start] = 2.0  # a point is its own first neighbour, even beside a duplicate
        part = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(similarity, part, axis=1)
        order = np.argsort(-values, axis=1, kind="stable")
        indices[start : start + chunk] = np.take_along_axis(part, order, axis=1)
        distances[start : start + chunk] = np.clip(1.0 - np.take_along_axis(values, order, axis=1), 0.0, 2.0)
    return indices, distances


def _weighted_place(fitted_coords: np.ndarray, indices: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """UMAP's transform start: neighbours weighted by exp(-(d - d_nearest) / mean spread)."""
    spread = np.maximum((distances - distances[:, :1]).mean(axis=1, keepdims=True), 1e-6)
    weights = np.exp(-(distances - distances[:, :1]) / spread)
    weights /= weights.sum(axis=1, keepdims=True)
    return (fitted_coords[indices] * weights[..., None]).sum(axis=1).astype(np.float32)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _fit_umap(
    config: ClusterConfig, k: int, indices: np.ndarray, distances: np.ndarray, points: np.ndarray
) -> np.ndarray:
    import warnings

    import umap

    seeded = config.umap_seed >= 0
    reducer = umap.UMAP(
        n_components=2,
        metric="cosine",
        n_neighbors=k,
        min_dist=config.umap_min_dist,
        random_state=config.umap_seed if seeded else None,
        precomputed_knn=(indices, distances, None),
        low_memory=True,
    )
    with warnings.catch_warnings():
        # UMAP warns that a precomputed graph rules out its own transform (we place the rest ourselves).
        warnings.simplefilter("ignore")
        return np.asarray(reducer.fit_transform(points), np.float32)


def _pca_2d(vectors: np.ndarray) -> np.ndarray:
    if len(vectors) == 0:
        return np.zeros((0, 2), np.float32)
    centred = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ components[:2].T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords.astype(np.float32)


# --- cached entry points over records -------------------------------------------------------------


def cluster_records(
    records: Sequence[Record],
    settings: Settings,
    progress: ProgressFn | None = None,
    vectors: np.ndarray | None = None,
) -> ClusterResult:
    """Clusters of the records (embedding them if needed), cached by content and configuration."""
    progress = progress or silent
    ids = [r.id for r in records]
    path = cache_path(settings, "clusters", cluster_key(ids, settings))
    cached = _read_clusters(path, ids)
    if cached is not None:
        return cached
    if vectors is None:
        vectors = embed_records(records, settings, progress)
    progress(0, 1, "clustering")
    result = cluster_vectors(vectors, [r.instruction for r in records], settings.cluster, ids)
    _write_clusters(path, ids, result)
    progress(1, 1, "clustering")
    return result


def build_map(records: Sequence[Record], settings: Settings, progress: ProgressFn | None = None) -> pd.DataFrame:
    """``id, x, y, cluster, cluster_name`` for every record, in input order; cached on disk."""
    progress = progress or silent
    ids = [r.id for r in records]
    path = cache_path(settings, "maps", map_key(ids, settings))
    cached = _read_frame(path, ids)
    if cached is not None:
        return cached
    vectors = embed_records(records, settings, progress)
    clusters = cluster_records(records, settings, progress, vectors=vectors)
    coords = project_2d(vectors, settings.cluster, progress)
    frame = map_frame(ids, coords, clusters)
    _write_parquet(frame, path, {"clusters": clusters.summary().to_dict(orient="list")})
    return frame


def map_frame(ids: Sequence[str], coords: np.ndarray, clusters: ClusterResult) -> pd.DataFrame:
    names = np.array(clusters.names, dtype=object)
    return pd.DataFrame(
        {
            "id": list(ids),
            "x": coords[:, 0].astype(np.float32),
            "y": coords[:, 1].astype(np.float32),
            "cluster": clusters.labels.astype(np.int64),
            "cluster_name": names[clusters.labels] if len(names) else np.array([], dtype=object),
        }
    )


def cached_map(ids: Sequence[str] | str, settings: Settings) -> pd.DataFrame | None:
    """The map if it was built already (``ids`` or a dataset's content hash), else None; never computes."""
    key = map_key(ids, settings)
    path = cache_path(settings, "maps", key)
    if not path.is_file():
        return None
    frame = pd.read_parquet(path)
    return frame if isinstance(ids, str) else _reorder(frame, list(ids))


def dataset_map(store, settings: Settings, dataset: str | int) -> pd.DataFrame | None:  # type: ignore[no-untyped-def]
    """The cached map of a workspace dataset (what the Map page shows), or None until a map job ran."""
    info = store.datasets.get(dataset)
    return cached_map(info.content_hash, settings)


def cluster_key(ids: Sequence[str] | str, settings: Settings) -> str:
    config = settings.cluster
    parts = {
        "data": ids if isinstance(ids, str) else content_hash(ids),
        "model": model_slug(settings.embed),
        "template": settings.embed.template,
        "pca_variance": config.pca_variance,
        "k": config.k,
        "seed": config.seed,
        "version": ALGORITHM_VERSION,
    }
    return _hash(parts)


def map_key(ids: Sequence[str] | str, settings: Settings) -> str:
    config = settings.cluster
    parts = {
        "clusters": cluster_key(ids, settings),
        "neighbors": config.umap_neighbors,
        "min_dist": config.umap_min_dist,
        "fit_sample": config.umap_fit_sample,
        "umap_seed": config.umap_seed,
    }
    return _hash(parts)


def _hash(parts: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def cache_path(settings: Settings, kind: str, key: str) -> Path:
    return settings.cache_dir / kind / f"{key}.parquet"


def _read_clusters(path: Path, ids: list[str]) -> ClusterResult | None:
    frame = _read_frame(path, ids)
    if frame is None:
        return None
    import pyarrow.parquet as pq

    meta = json.loads(pq.read_schema(path).metadata[b"curation"])
    info = meta["result"]
    return ClusterResult(
        frame["cluster"].to_numpy(np.int64),
        info["names"],
        info["sizes"],
        info["k"],
        info["n_components"],
        info["explained_variance"],
    )


def _write_clusters(path: Path, ids: list[str], result: ClusterResult) -> None:
    frame = pd.DataFrame({"id": ids, "cluster": result.labels})
    info = {k: v for k, v in asdict(result).items() if k != "labels"}
    _write_parquet(frame, path, {"result": info})


def _read_frame(path: Path, ids: list[str]) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError):
        return None  # a damaged cache file is rebuilt
    return _reorder(frame, ids)


def _reorder(frame: pd.DataFrame, ids: list[str]) -> pd.DataFrame | None:
    if len(frame) == len(ids) and frame["id"].tolist() == ids:
        return frame
    indexed = frame.drop_duplicates("id").set_index("id")
    if not set(ids) <= set(indexed.index):
        return None
    return indexed.loc[ids].reset_index()


def _write_parquet(frame: pd.DataFrame, path: Path, meta: dict[str, object]) -> None:
    """Temporary file then rename, so a reader never sees half a file and two writers do not clash."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[b"curation"] = json.dumps(meta, default=_plain).encode()
    temporary = path.parent / f".{uuid.uuid4().hex}.tmp"
    pq.write_table(table.replace_schema_metadata(metadata), temporary)
    os.replace(temporary, path)


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in cache metadata")


def map_job(context) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Job "map": params ``{"dataset": name or id}``; the result is cached where :func:`dataset_map` reads it."""
    store, settings = context.store, context.settings
    info = store.datasets.get(context.params["dataset"])
    records = store.datasets.records(info.id)
    frame = build_map(records, settings, context.progress)
    return {"dataset": info.name, "n": len(frame), "k": int(frame["cluster"].nunique()) if len(frame) else 0}
