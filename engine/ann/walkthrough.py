"""Step-through data for the page: build a small graph, then record one insertion or one search layer by layer.

Points live in 2-D for drawing. The toy set *is* 2-D; real embeddings (384-D MiniLM vectors of the Constitution's
articles) are indexed in their full dimension and only drawn at their PCA projection, so two linked neighbours may
look far apart on screen: the graph is built on the real distances, the picture is a shadow of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from engine.ann.exact import exact_knn, make_vectors, recall_at_k
from engine.ann.hnsw import HNSW, NSW, HNSWConfig, InsertTrace, SearchTrace
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError

MAX_POINTS = 2_000  # the step-through redraws every edge: more points make an unreadable picture


@dataclass
class PointSet:
    """What is indexed (`vectors`, (n, d)) and where each point is drawn (`xy`, (n, 2))."""

    vectors: np.ndarray
    xy: np.ndarray
    labels: list[str]
    source: str  # said on the page: what produced these points
    texts: list[str] = field(default_factory=list)
    mean: np.ndarray | None = None  # PCA centre (d,), to draw a query in the same picture
    axes: np.ndarray | None = None  # PCA directions (2, d)

    def project(self, vector: np.ndarray) -> np.ndarray:
        """(d,) -> (2,) in the picture's coordinates."""
        if self.axes is None:
            return np.asarray(vector, dtype=np.float32)[:2]
        return ((vector - self.mean) @ self.axes.T).astype(np.float32)


@dataclass
class GraphPicture:
    """Everything needed to draw the graph: positions, each node's top layer, the edges of each layer."""

    xy: np.ndarray  # (n, 2)
    labels: list[str]
    levels: list[int]  # top layer of each node
    edges: dict[int, list[tuple[int, int]]]  # layer -> undirected edges
    entry_point: int
    layer_sizes: list[int]  # nodes per layer, layer 0 first


def toy_points(n: int = 200, seed: int = 0) -> PointSet:
    """n points in the unit square: five blobs plus some uniform noise (2-D, so the picture is the truth)."""
    if not 2 <= n <= MAX_POINTS:
        raise InputError("ann.toy_points", limit=MAX_POINTS, value=n)
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0.15, 0.85, size=(5, 2))  # (5, 2)
    n_noise = n // 5
    blobs = centers[rng.integers(0, 5, size=n - n_noise)] + rng.normal(0, 0.06, size=(n - n_noise, 2))
    xy = np.clip(np.concatenate([blobs, rng.uniform(0, 1, size=(n_noise, 2))]), 0, 1).astype(np.float32)
    xy = xy[rng.permutation(n)]
    return PointSet(xy, xy, [str(i) for i in range(n)], "toy 2-D points (synthetic)")


def embedded_points(vectors: np.ndarray, labels: list[str], texts: list[str], source: str) -> PointSet:
    """Real embeddings (n, d), drawn at their first two principal components."""
    x = np.asarray(vectors, dtype=np.float32)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)  # vt: rows are principal directions
    axes = vt[:2].astype(np.float32)  # (2, d)
    return PointSet(x, ((x - mean) @ axes.T).astype(np.float32), labels, source, texts, mean, axes)


def build_graph(
    points: PointSet,
    M: int = 4,
    ef_construction: int = 32,
    flat: bool = False,
    seed: int = 100,
    upto: int | None = None,
) -> HNSW:
    """HNSW (or NSW when flat) over the first `upto` points."""
    cls = NSW if flat else HNSW
    index = cls(points.vectors.shape[1], HNSWConfig(M=M, ef_construction=ef_construction, seed=seed))
    index.add_items(points.vectors[: len(points.vectors) if upto is None else upto])
    return index


def picture(index: HNSW, points: PointSet) -> GraphPicture:
    n = index.count
    return GraphPicture(
        points.xy[:n],
        points.labels[:n],
        list(index.levels),
        {lv: index.edges(lv) for lv in range(index.max_level + 1)},
        index.entry_point,
        index.layer_sizes(),
    )


@dataclass
class InsertionStep:
    before: GraphPicture  # the graph of nodes 0 … step-1, before the new node arrives
    after: GraphPicture  # and right after (pruned links are gone)
    trace: InsertTrace
    new_xy: np.ndarray  # (2,)


def insertion_step(
    points: PointSet, step: int, M: int = 4, ef_construction: int = 32, flat: bool = False, seed: int = 100
) -> InsertionStep:
    """Insert point `step` into the graph of points 0 … step-1 and record every layer it passed."""
    if not 1 <= step < len(points.vectors):
        raise InputError("ann.bad_step", limit=len(points.vectors) - 1, value=step)
    index = build_graph(points, M, ef_construction, flat, seed, upto=step)
    before = picture(index, points)
    trace = index.insert(points.vectors[step], trace=True)
    return InsertionStep(before, picture(index, points), trace, points.xy[step])


@dataclass
class SearchWalk:
    graph: GraphPicture
    trace: SearchTrace
    query_xy: np.ndarray  # (2,)
    exact_ids: list[int]  # the true k nearest (brute force)
    recall: float
    brute_force_distances: int  # what exact search costs: one distance per stored vector


def search_walkthrough(
    points: PointSet,
    query: np.ndarray,
    k: int = 5,
    M: int = 4,
    ef_construction: int = 32,
    ef_search: int = 8,
    flat: bool = False,
    seed: int = 100,
) -> SearchWalk:
    """Search the full graph for `query` ((d,), same space as the vectors) and keep the per-layer trace."""
    query = np.asarray(query, dtype=np.float32)
    if query.shape != (points.vectors.shape[1],):
        raise ValueError(f"the query must have {points.vectors.shape[1]} dimensions, got {query.shape}")
    index = build_graph(points, M, ef_construction, flat, seed)
    trace = index.search(query, k, ef_search, trace=True)
    exact = exact_knn(points.vectors, query[None, :], k)[0][0].tolist()
    recall = recall_at_k(np.array([trace.ids]), np.array([exact]))
    return SearchWalk(picture(index, points), trace, points.project(query), exact, recall, index.count)


def compare_nsw_hnsw(
    ns: tuple[int, ...] = (250, 1_000, 2_000),
    dim: int = 2,
    M: int = 4,
    ef_construction: int = 32,
    ef_search: int = 4,
    k: int = 1,
    n_queries: int = 100,
    seed: int = 0,
    progress: ProgressFn = null_progress,
) -> list[dict]:
    """A flat NSW against HNSW on the same vectors and parameters, at growing n: recall and the cost per query
    in distance computations and hops. Brute force pays n distances; NSW's cost grows with n much faster than
    HNSW's, whose upper layers skip most of the way."""
    if not ns or any(not 50 <= n <= 5_000 for n in ns):
        raise InputError("ann.bad_sizes", value=list(ns))
    rows = []
    jobs = [(n, name, cls) for n in ns for name, cls in (("NSW", NSW), ("HNSW", HNSW))]
    for j, (n, name, cls) in enumerate(jobs):
        progress(j / len(jobs), f"{name}, n={n:,}")
        data = make_vectors(n + n_queries, dim, seed, "clustered")
        base, queries = data[:n], data[n:]
        truth, _ = exact_knn(base, queries, k)
        start = time.perf_counter()
        index = cls(dim, HNSWConfig(M=M, ef_construction=ef_construction, seed=seed + 100))
        index.add_items(base)
        build_s = time.perf_counter() - start
        found, dists, hops = [], [], []
        start = time.perf_counter()
        for q in queries:
            r = index.search(q, k, ef_search, trace=True)
            found.append(r.ids)
            dists.append(r.n_distances)
            hops.append(sum(len(lt.expanded) for lt in r.layers))
        query_ms = 1000 * (time.perf_counter() - start) / n_queries
        rows.append(
            {
                "index": name,
                "n": n,
                "recall_at_k": round(recall_at_k(np.array(found), truth), 4),
                "distances_per_query": round(float(np.mean(dists)), 1),
                "hops_per_query": round(float(np.mean(hops)), 1),
                "brute_force_distances": n,
                "layers": index.max_level + 1,
                "build_s": round(build_s, 2),
                "query_ms": round(query_ms, 3),
            }
        )
    progress(1.0, "done")
    return rows


def corpus_points(model, source: str = "all-MiniLM-L6-v2") -> PointSet:
    """The Constitution's articles embedded by `model` (a sentence-transformers model), unit length."""
    from engine.core.corpus import load_constitution

    docs = load_constitution()
    vectors = model.encode(
        [d.text for d in docs], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return embedded_points(
        vectors,
        [d.doc_id for d in docs],
        [d.text for d in docs],
        f"{source} embeddings of 대한민국헌법 ({len(docs)} articles), PCA → 2-D",
    )


def embed_query(model, text: str) -> np.ndarray:
    """A query typed by the learner -> a unit vector (d,) in the same space as `corpus_points`."""
    from engine.core.textinput import clean_text

    cleaned = clean_text(text, max_chars=2_000)  # empty -> InputError with a clear message
    return model.encode([cleaned.text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)[0]
