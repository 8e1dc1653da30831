"""Exact k-nearest-neighbour search (KNN): the ground truth every approximate index is measured against.

Distances are squared L2, as in hnswlib's and faiss's default space. For unit-length embeddings the ranking is
the same as cosine similarity: ‖a − b‖² = 2 − 2·cos(a, b).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from engine.core.textinput import InputError

# Rows of the (queries × n) distance matrix computed at once; bounds the temporary to ~64 MB.
_CHUNK_FLOATS = 16_000_000


def make_vectors(n: int, dim: int, seed: int = 0, kind: str = "gaussian") -> np.ndarray:
    """(n, dim) float32 test vectors.

    gaussian: i.i.d. N(0, 1), the hard case for ANN (no structure to exploit);
    clustered: 50 Gaussian blobs, closer to real embeddings, where graph indexes shine.
    """
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return rng.standard_normal((n, dim), dtype=np.float32)
    if kind == "clustered":
        centers = rng.standard_normal((50, dim), dtype=np.float32) * 3.0  # (50, dim)
        labels = rng.integers(0, 50, size=n)  # (n,)
        return centers[labels] + rng.standard_normal((n, dim), dtype=np.float32)
    raise InputError(f"unknown vector kind {kind!r} (use 'gaussian' or 'clustered')")


def squared_l2(queries: np.ndarray, data: np.ndarray) -> np.ndarray:
    """(q, d) × (n, d) -> (q, n) squared distances, via ‖q‖² − 2 q·x + ‖x‖² (one matrix product)."""
    q_norm = np.einsum("ij,ij->i", queries, queries)[:, None]  # (q, 1)
    x_norm = np.einsum("ij,ij->i", data, data)[None, :]  # (1, n)
    return np.maximum(q_norm - 2.0 * queries @ data.T + x_norm, 0.0)


def exact_knn(data: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force: compare each query with every vector. Returns (ids, distances), both (q, k), nearest first."""
    data = np.ascontiguousarray(data, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    n = len(data)
    k = min(k, n)
    ids = np.empty((len(queries), k), dtype=np.int64)
    dists = np.empty((len(queries), k), dtype=np.float32)
    step = max(1, _CHUNK_FLOATS // max(n, 1))
    for start in range(0, len(queries), step):
        d = squared_l2(queries[start : start + step], data)  # (chunk, n)
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(d), 1))
        part_d = np.take_along_axis(d, part, axis=1)
        order = np.argsort(part_d, axis=1)
        ids[start : start + step] = np.take_along_axis(part, order, axis=1)
        dists[start : start + step] = np.take_along_axis(part_d, order, axis=1)
    return ids, dists


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int | None = None) -> float:
    """Fraction of the true k nearest neighbours that the index returned (order ignored), averaged over queries."""
    k = k or truth.shape[1]
    hits = sum(len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True))
    return hits / (len(truth) * k)


@dataclass(frozen=True)
class KnnVsAnn:
    n: int
    dim: int
    k: int
    exact_ms_per_query: float
    ann_ms_per_query: float
    ann_recall: float
    ann_build_s: float
    exact_distance_computations: int  # per query: every vector
    speedup: float


def knn_vs_ann(
    n: int = 20_000,
    dim: int = 128,
    k: int = 10,
    n_queries: int = 200,
    ef_search: int = 64,
    M: int = 16,
    seed: int = 0,
    kind: str = "clustered",
) -> KnnVsAnn:
    """Exact search (one query at a time, as a service would answer) against hnswlib on the same vectors."""
    import hnswlib

    from engine.ann.memory import check_fits

    check_fits(n + n_queries, dim, M)
    data = make_vectors(n + n_queries, dim, seed, kind)
    base, queries = data[:n], data[n:]
    start = time.perf_counter()
    truth = np.stack([exact_knn(base, q[None, :], k)[0][0] for q in queries])  # (q, k)
    exact_s = time.perf_counter() - start

    start = time.perf_counter()
    index = hnswlib.Index(space="l2", dim=dim)
    index.init_index(max_elements=n, M=M, ef_construction=100, random_seed=seed)
    index.add_items(base, np.arange(n), num_threads=2)
    build_s = time.perf_counter() - start
    index.set_ef(max(ef_search, k))
    start = time.perf_counter()
    found = np.stack([index.knn_query(q[None, :], k=k, num_threads=1)[0][0] for q in queries])
    ann_s = time.perf_counter() - start
    exact_ms, ann_ms = 1000 * exact_s / len(queries), 1000 * ann_s / len(queries)
    return KnnVsAnn(n, dim, k, exact_ms, ann_ms, recall_at_k(found, truth), build_s, n, exact_ms / max(ann_ms, 1e-9))


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, 2): the two directions of largest variance, for drawing high-dimensional points."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)  # vt: (d, d), rows = principal directions
    return (x @ vt[:2].T).astype(np.float32)
