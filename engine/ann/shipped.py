"""Chapter 12's shipped results: the demos that take more than a couple of seconds, run once with the page's
default settings, so no section opens empty (assets/precomputed/ch12_<section>.json, read with
`engine.core.load_precomputed`).

`python -m engine vector-db-precompute` makes them all (`--only scaling` one); each file records that command.
The numbers are the real engine's (`exact.knn_vs_ann_grid`, `walkthrough.compare_nsw_hnsw`,
`report.sweep_libraries`), reduced to plain JSON; the page draws a shipped result exactly like one of its own.
"""

from __future__ import annotations

from engine.core.progress import ProgressFn, null_progress

SECTIONS = ("knn_ann", "scaling", "sweep")
# The page's choices (pages/12_vector_db.py): every (n, dim) the KNN-vs-ANN sliders offer is measured once.
KNN_NS = (1_000, 10_000, 50_000, 100_000)
KNN_DIMS = (16, 64, 128, 384)
# The page's default sweep.
SWEEP = {
    "libraries": ["hnswlib", "faiss"],
    "n": 5_000,
    "dim": 64,
    "k": 10,
    "kind": "gaussian",
    "Ms": [8, 16],
    "ef_constructions": [100],
    "ef_searches": [16, 32, 64, 128],
}


def name(section: str) -> str:
    return f"ch12_{section}"


def knn_ann_data(progress: ProgressFn = null_progress) -> list[dict]:
    """Exact KNN against HNSW at every (n, dim) of the page, each at every efSearch of `exact.EF_GRID`."""
    from engine.ann.exact import knn_vs_ann_grid

    combos = [(n, dim) for n in KNN_NS for dim in KNN_DIMS]
    out = []
    for i, (n, dim) in enumerate(combos):
        share = lambda f, m, i=i, n=n, dim=dim: progress((i + f) / len(combos), f"n={n:,} dim={dim}: {m}")  # noqa: E731
        out.append(knn_vs_ann_grid(n, dim, progress=share).as_dict())
    return out


def knn_ann_lookup(data: list[dict], n: int, dim: int):
    """The shipped measurement for (n, dim) as a `KnnVsAnnGrid`, or None when none was shipped."""
    from engine.ann.exact import KnnVsAnnGrid

    raw = next((d for d in data if d["n"] == n and d["dim"] == dim), None)
    return None if raw is None else KnnVsAnnGrid.from_dict(raw)


def scaling_data(progress: ProgressFn = null_progress) -> list[dict]:
    from engine.ann.walkthrough import compare_nsw_hnsw

    return compare_nsw_hnsw(progress=progress)


def sweep_data(progress: ProgressFn = null_progress) -> dict:
    """The page's default sweep: its rows and the ground truth's time (a `report.SweepResult` as JSON)."""
    from engine.ann.report import sweep_libraries

    s = SWEEP
    res = sweep_libraries(
        s["libraries"],
        s["n"],
        s["dim"],
        s["k"],
        s["kind"],
        s["Ms"],
        s["ef_constructions"],
        s["ef_searches"],
        progress=progress,
    )
    return {"rows": res.rows, "truth_s": res.truth_s}


def make(section: str, progress: ProgressFn = null_progress):
    return {"knn_ann": knn_ann_data, "scaling": scaling_data, "sweep": sweep_data}[section](progress)
