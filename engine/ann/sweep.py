"""Parameter sweeps over M, efConstruction and efSearch for hnswlib, faiss (IndexHNSWFlat) and the scratch HNSW.

Each (M, efConstruction) index is built once and reused for every efSearch value: efSearch is a query-time knob,
so a 2 × 2 × 3 sweep costs 4 builds, not 12. Recall@k is measured against exact brute force on the same vectors;
queries/s is single-threaded (one core answering a batch of queries), build time uses `threads` cores.

Settings that would not fit in memory are refused by `check_fits` before anything is allocated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.ann.exact import exact_knn, make_vectors, recall_at_k
from engine.ann.memory import LIBRARIES, SweepTooLarge, check_fits
from engine.core.progress import Cancelled, ProgressFn, null_progress


@dataclass
class SweepData:
    base: np.ndarray  # (n, dim) float32, indexed
    queries: np.ndarray  # (n_queries, dim) float32, not in the index
    truth: np.ndarray  # (n_queries, k) exact nearest neighbours
    k: int
    truth_s: float  # brute-force time for all queries
    kind: str
    seed: int


def prepare(
    n: int,
    dim: int,
    k: int = 10,
    n_queries: int = 1000,
    seed: int = 0,
    kind: str = "gaussian",
    library: str = "hnswlib",
    max_M: int = 16,
) -> SweepData:
    """Vectors, held-out queries and the exact answers (after the memory check)."""
    if not 1 <= k <= min(n, 1000):
        raise SweepTooLarge(f"k must be between 1 and min(n, 1000) (got k={k}, n={n:,})")
    if not 1 <= n_queries <= 100_000:
        raise SweepTooLarge(f"queries must be between 1 and 100,000 (got {n_queries:,})")
    check_fits(n, dim, max_M, library, n_queries)
    data = make_vectors(n + n_queries, dim, seed, kind)
    base, queries = data[:n], data[n:]
    start = time.perf_counter()
    truth, _ = exact_knn(base, queries, k)
    return SweepData(base, queries, truth, k, time.perf_counter() - start, kind, seed)


# --- one adapter per library: build(M, efC) -> index; query(index, ef) -> ids; memory(index) -> bytes -----------
class _Hnswlib:
    memory_kind = "index_file_size"

    def build(self, base, M, ef_construction, seed, threads):
        import hnswlib

        index = hnswlib.Index(space="l2", dim=base.shape[1])
        index.init_index(max_elements=len(base), M=M, ef_construction=ef_construction, random_seed=seed)
        index.add_items(base, np.arange(len(base)), num_threads=threads)
        return index

    def query(self, index, queries, k, ef):
        index.set_ef(max(ef, k))
        return index.knn_query(queries, k=k, num_threads=1)[0]

    def memory(self, index) -> int:
        return int(index.index_file_size())


class _Faiss:
    memory_kind = "serialized_size"

    def build(self, base, M, ef_construction, seed, threads):
        import faiss

        faiss.omp_set_num_threads(threads)
        index = faiss.IndexHNSWFlat(base.shape[1], M)
        index.hnsw.efConstruction = ef_construction
        index.add(base)
        return index

    def query(self, index, queries, k, ef):
        import faiss

        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            index.hnsw.efSearch = max(ef, k)
            return index.search(queries, k)[1]
        finally:
            faiss.omp_set_num_threads(before)

    def memory(self, index) -> int:
        import faiss

        return len(faiss.serialize_index(index))


class _Scratch:
    memory_kind = "estimate"

    def build(self, base, M, ef_construction, seed, threads, progress=null_progress, should_stop=None):
        from engine.ann.hnsw import HNSW, HNSWConfig

        index = HNSW(base.shape[1], HNSWConfig(M=M, ef_construction=ef_construction, seed=seed), len(base))
        index.add_items(base, progress, should_stop)
        return index

    def query(self, index, queries, k, ef):
        return index.knn_query(queries, k, ef)[0]

    def memory(self, index) -> int:
        return index.memory_bytes()


ADAPTERS = {"hnswlib": _Hnswlib, "faiss": _Faiss, "scratch": _Scratch}


def sweep_library(
    library: str,
    data: SweepData,
    Ms: Sequence[int],
    ef_constructions: Sequence[int],
    ef_searches: Sequence[int],
    threads: int = 2,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> list[dict]:
    """One row per (M, efConstruction, efSearch); each index is built once per (M, efConstruction)."""
    if library not in ADAPTERS:
        raise SweepTooLarge(f"unknown library {library!r}; choose one of {', '.join(LIBRARIES)}")
    _check_grid(Ms, ef_constructions, ef_searches)
    adapter = ADAPTERS[library]()
    n, dim = data.base.shape
    builds = [(M, efc) for M in Ms for efc in ef_constructions]
    rows: list[dict] = []
    for b, (M, efc) in enumerate(builds):
        if should_stop is not None and should_stop():
            raise Cancelled(f"stopped after {len(rows)} settings")
        check_fits(n, dim, M, library, len(data.queries))
        label = f"{library} M={M} efC={efc}"
        progress(b / len(builds), f"{label}: building")
        start, cpu = time.perf_counter(), time.process_time()
        if library == "scratch":
            inner = _scaled(progress, b / len(builds), 0.8 / len(builds), f"{label}: ")
            index = adapter.build(data.base, M, efc, data.seed, threads, inner, should_stop)
        else:
            index = adapter.build(data.base, M, efc, data.seed, threads)
        build_s, build_cpu_s = time.perf_counter() - start, time.process_time() - cpu
        memory = adapter.memory(index)
        for ef in ef_searches:
            progress((b + 0.9) / len(builds), f"{label}: querying ef={ef}")
            found, query_s = _timed_query(adapter, index, data, ef)
            row = {
                "library": library,
                "M": M,
                "ef_construction": efc,
                "ef_search": ef,
                "k": data.k,
                "recall_at_k": round(recall_at_k(found, data.truth), 4),
                "qps": round(len(data.queries) / max(query_s, 1e-9), 1),
                "build_s": round(build_s, 3),
                "build_cpu_s": round(build_cpu_s, 3),
                "memory_bytes": memory,
                "memory_kind": adapter.memory_kind,
                "n": n,
                "dim": dim,
                "queries": len(data.queries),
                "data": data.kind,
                "threads": threads,
            }
            rows.append(row)
            if on_row is not None:
                on_row(row)
        del index
    progress(1.0, f"{library}: {len(rows)} settings done")
    return rows


def _timed_query(adapter, index, data: SweepData, ef: int) -> tuple[np.ndarray, float]:
    """All queries at once; a run under half a second is repeated (best of 3), since on a shared machine one
    short timing says as much about the neighbours as about the index."""
    best, found = math.inf, None
    for _ in range(3):
        start = time.perf_counter()
        found = adapter.query(index, data.queries, data.k, ef)
        best = min(best, time.perf_counter() - start)
        if best >= 0.5:
            break
    return found, best


def run_sweep(
    library: str,
    n: int,
    dim: int,
    Ms: Sequence[int],
    ef_constructions: Sequence[int],
    ef_searches: Sequence[int],
    k: int = 10,
    n_queries: int = 1000,
    seed: int = 0,
    kind: str = "gaussian",
    threads: int = 2,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Memory check, data, exact ground truth, then the sweep (what `python -m engine hnsw-sweep` runs)."""
    _check_grid(Ms, ef_constructions, ef_searches)
    data = prepare(n, dim, k, n_queries, seed, kind, library, max(Ms))
    return sweep_library(library, data, Ms, ef_constructions, ef_searches, threads, progress, should_stop, on_row)


def _check_grid(Ms, ef_constructions, ef_searches) -> None:
    if not Ms or not ef_constructions or not ef_searches:
        raise SweepTooLarge("give at least one value each for M, efConstruction and efSearch")
    if any(not 2 <= m <= 256 for m in Ms):
        raise SweepTooLarge(f"M must be between 2 and 256 (got {list(Ms)})")
    if any(not 1 <= e <= 10_000 for e in (*ef_constructions, *ef_searches)):
        raise SweepTooLarge("efConstruction and efSearch must be between 1 and 10,000")
    if len(Ms) * len(ef_constructions) * len(ef_searches) > 200:
        raise SweepTooLarge("more than 200 settings in one sweep; narrow the grid")


def _scaled(progress: ProgressFn, start: float, width: float, prefix: str) -> ProgressFn:
    def report(fraction: float, message: str) -> None:
        progress(start + width * fraction, prefix + message)

    return report


def pareto_front(rows: list[dict], x: str = "recall_at_k", y: str = "qps") -> list[dict]:
    """Settings no other setting beats on both recall and speed: the curve worth choosing from."""
    front, best_y = [], -math.inf
    for r in sorted(rows, key=lambda r: (-r[x], -r[y])):
        if r[y] > best_y:
            front.append(r)
            best_y = r[y]
    return front
