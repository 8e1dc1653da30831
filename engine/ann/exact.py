"""Exact k-nearest-neighbour search (KNN): the ground truth every approximate index is measured against.

Distances are squared L2, as in hnswlib's and faiss's default space. For unit-length embeddings the ranking is
the same as cosine similarity: ‖a − b‖² = 2 − 2·cos(a, b).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from engine.core.progress import Cancelled, ProgressFn, null_progress
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
    raise InputError("ann.unknown_kind", value=kind)


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


EF_GRID = (10, 16, 32, 64, 128, 256)  # the efSearch values one measurement covers (the page's ef choices)


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
    ef_search: int = 64


@dataclass(frozen=True)
class EfPoint:
    """One efSearch value on the index that was built once: its time per query and recall@k."""

    ef_search: int
    ann_ms_per_query: float
    recall: float
    speedup: float  # exact ms / ANN ms, both one query at a time


@dataclass(frozen=True)
class KnnVsAnnGrid:
    """Exact search and one hnswlib build on the same vectors, the build queried at several efSearch values.

    The build is most of the cost (tens of seconds at n = 100,000), and efSearch is a query-time knob, so one
    measurement answers every efSearch choice at once."""

    n: int
    dim: int
    k: int
    exact_ms_per_query: float
    ann_build_s: float
    points: tuple[EfPoint, ...]

    def at(self, ef_search: int) -> KnnVsAnn:
        """The measurement at the efSearch value closest to `ef_search`."""
        p = min(self.points, key=lambda x: (abs(x.ef_search - ef_search), x.ef_search))
        return KnnVsAnn(
            self.n,
            self.dim,
            self.k,
            self.exact_ms_per_query,
            p.ann_ms_per_query,
            p.recall,
            self.ann_build_s,
            self.n,
            p.speedup,
            p.ef_search,
        )

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> KnnVsAnnGrid:
        points = tuple(EfPoint(**p) for p in raw["points"])
        return cls(**{**raw, "points": points})


def knn_vs_ann_grid(
    n: int = 20_000,
    dim: int = 128,
    k: int = 10,
    n_queries: int = 200,
    ef_searches: tuple[int, ...] = EF_GRID,
    M: int = 16,
    seed: int = 0,
    kind: str = "clustered",
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
) -> KnnVsAnnGrid:
    """Exact search (one query at a time, as a service would answer) against one hnswlib build on the same
    vectors, queried at each efSearch; times per query are medians over the queries. Reports progress and checks
    `should_stop` between chunks of work (hnswlib inserts in ten batches for that), raising `Cancelled` when asked
    to stop."""
    import hnswlib
    from threadpoolctl import threadpool_limits

    from engine.ann.memory import check_fits

    def check_stop() -> None:
        if should_stop is not None and should_stop():
            raise Cancelled("stopped")

    check_fits(n + n_queries, dim, M)
    progress(0.0, f"{n:,} × {dim} vectors")
    data = make_vectors(n + n_queries, dim, seed, kind)
    base, queries = data[:n], data[n:]
    exact_s, truth = [], []
    # One BLAS thread, like the one search thread HNSW gets: a single query is a matrix-vector product too small
    # to share, and on a busy machine two BLAS threads waiting for each other made it 30× slower (measured).
    with threadpool_limits(limits=1, user_api="blas"):
        for i, q in enumerate(queries):
            if i % 20 == 0:
                check_stop()
                progress(0.3 * i / len(queries), f"exact KNN {i}/{len(queries)}")
            start = time.perf_counter()
            truth.append(exact_knn(base, q[None, :], k)[0][0])
            exact_s.append(time.perf_counter() - start)

    index = hnswlib.Index(space="l2", dim=dim)
    index.init_index(max_elements=n, M=M, ef_construction=100, random_seed=seed)
    build_s = 0.0
    batches = np.array_split(np.arange(n), 10)
    for b, ids in enumerate(batches):
        check_stop()
        progress(0.3 + 0.6 * b / len(batches), f"HNSW build {int(ids[0]):,}/{n:,}")
        start = time.perf_counter()
        index.add_items(base[ids], ids, num_threads=2)
        build_s += time.perf_counter() - start

    # The median query, not the mean: on a shared machine a few queries wait for the CPU, and the median is the
    # cost of the search itself (the build time above is one wall-clock measurement).
    exact_ms = 1000 * float(np.median(exact_s))
    points = []
    for j, ef in enumerate(ef_searches):
        check_stop()
        progress(0.9 + 0.1 * j / len(ef_searches), f"HNSW search ef={ef}")
        index.set_ef(max(ef, k))
        found, ann_s = [], []
        for q in queries:
            start = time.perf_counter()
            found.append(index.knn_query(q[None, :], k=k, num_threads=1)[0][0])
            ann_s.append(time.perf_counter() - start)
        found = np.stack(found)
        ann_ms = 1000 * float(np.median(ann_s))
        recall = recall_at_k(found, np.stack(truth))
        points.append(EfPoint(ef, round(ann_ms, 4), round(recall, 4), round(exact_ms / max(ann_ms, 1e-9), 1)))
    progress(1.0, "done")
    return KnnVsAnnGrid(n, dim, k, round(exact_ms, 4), round(build_s, 3), tuple(points))


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
    return knn_vs_ann_grid(n, dim, k, n_queries, (ef_search,), M, seed, kind).at(ef_search)


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, 2): the two directions of largest variance, for drawing high-dimensional points."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)  # vt: (d, d), rows = principal directions
    return (x @ vt[:2].T).astype(np.float32)
