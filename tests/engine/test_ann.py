"""engine.ann: exact KNN, the from-scratch NSW/HNSW (recall equal to hnswlib's), sweeps and the memory guard."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import hnswlib
import numpy as np
import pytest

from engine.ann import memory as memory_mod
from engine.ann import sweep as sweep_mod
from engine.ann.exact import (
    EF_GRID,
    KnnVsAnnGrid,
    exact_knn,
    knn_vs_ann,
    knn_vs_ann_grid,
    make_vectors,
    pca_2d,
    recall_at_k,
)
from engine.ann.hnsw import HNSW, NSW, HNSWConfig
from engine.ann.sweep import SweepTooLarge, check_fits, pareto_front, run_sweep
from engine.ann.walkthrough import (
    compare_nsw_hnsw,
    embedded_points,
    insertion_step,
    search_walkthrough,
    toy_points,
)
from engine.core.progress import Cancelled

ROOT = Path(__file__).resolve().parents[2]
SWEEP_KEYS = {"library", "M", "ef_construction", "ef_search", "recall_at_k", "qps", "build_s", "memory_bytes"}


# --- exact search ---------------------------------------------------------------------------------------------
def test_exact_knn_equals_full_sort():
    data = make_vectors(500, 8, seed=1)
    queries = make_vectors(20, 8, seed=2)
    ids, dists = exact_knn(data, queries, 5)
    full = ((queries[:, None, :] - data[None, :, :]) ** 2).sum(-1)  # (20, 500)
    expected = np.argsort(full, axis=1)[:, :5]
    assert (ids == expected).all()
    assert np.allclose(dists, np.take_along_axis(full, expected, axis=1), rtol=1e-4, atol=1e-4)


def test_recall_at_k_counts_overlap_ignoring_order():
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 3, 2, 1], [5, 6, 0, 9]])
    assert recall_at_k(found, truth) == pytest.approx(0.75)


def test_pca_2d_keeps_the_widest_direction():
    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(0, 10, 300), rng.normal(0, 1, 300), rng.normal(0, 0.1, 300)]
    xy = pca_2d(x)
    assert xy.shape == (300, 2)
    assert xy[:, 0].std() == pytest.approx(x[:, 0].std(), rel=0.05)


# --- the scratch HNSW -------------------------------------------------------------------------------------------
def test_levels_thin_out_by_one_over_M():
    index = HNSW(2, HNSWConfig(M=8, seed=0))
    levels = np.array([index.random_level() for _ in range(40_000)])
    assert (levels >= 1).mean() == pytest.approx(1 / 8, abs=0.01)
    assert (levels >= 2).mean() == pytest.approx(1 / 64, abs=0.004)


def test_search_is_exact_when_the_beam_covers_the_graph():
    data = make_vectors(300, 6, seed=3)
    index = HNSW(6, HNSWConfig(M=6, ef_construction=50))
    index.add_items(data)
    for q in make_vectors(10, 6, seed=4):
        r = index.search(q, k=5, ef=300)
        assert r.ids == exact_knn(data, q[None, :], 5)[0][0].tolist()


def test_link_lists_respect_their_caps():
    index = HNSW(4, HNSWConfig(M=5, ef_construction=40, seed=1))
    index.add_items(make_vectors(800, 4, seed=5))
    for node, per_level in enumerate(index.links):
        assert len(per_level) == index.levels[node] + 1
        for level, links in enumerate(per_level):
            assert len(links) <= (10 if level == 0 else 5)
            assert node not in links
            assert all(index.levels[n] >= level for n in links)  # a link only goes to a node living on that layer
    assert index.layer_sizes()[0] == 800
    assert index.levels[index.entry_point] == index.max_level


def test_search_trace_goes_down_every_layer():
    points = toy_points(200, seed=0)
    walk = search_walkthrough(points, np.array([0.3, 0.7], np.float32), k=5, M=4, ef_construction=32, ef_search=10)
    levels = [lt.level for lt in walk.trace.layers]
    assert levels == list(range(len(walk.graph.layer_sizes) - 1, -1, -1))
    assert walk.trace.layers[-1].result == walk.trace.ids
    for upper, lower in zip(walk.trace.layers, walk.trace.layers[1:], strict=False):
        assert lower.entry == upper.result[0]  # the best node of one layer enters the next one down
    assert all(a in lt.expanded for lt in walk.trace.layers for a, _ in lt.edges)
    assert walk.trace.n_distances < walk.brute_force_distances
    assert walk.recall == 1.0


def test_insertion_trace_matches_the_graph():
    points = toy_points(150, seed=2)
    step = insertion_step(points, 120, M=4, ef_construction=24)
    assert step.trace.node == 120
    assert len(step.before.levels) == 120 and len(step.after.levels) == 121
    for level, links in step.trace.new_links.items():
        assert 1 <= len(links) <= 4
        assert all((min(120, n), max(120, n)) in set(step.after.edges[level]) for n in links)
    # the layers it passed: every layer of the old graph, top first
    assert [lt.level for lt in step.trace.layers] == list(range(len(step.before.layer_sizes) - 1, -1, -1))


def test_nsw_has_one_layer():
    index = NSW(3, HNSWConfig(M=4, ef_construction=20))
    index.add_items(make_vectors(200, 3, seed=6))
    assert index.max_level == 0 and index.layer_sizes() == [200]
    assert index.search(make_vectors(1, 3, seed=7)[0], 3).ids


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="M must be"):
        HNSWConfig(M=1)
    with pytest.raises(ValueError, match="shape"):
        HNSW(4).add_items(np.zeros((3, 5), np.float32))


def _recalls(n, dim, M, efc, efs, n_queries, seed=0):
    data = make_vectors(n + n_queries, dim, seed)
    base, queries = data[:n], data[n:]
    truth, _ = exact_knn(base, queries, 10)
    scratch = HNSW(dim, HNSWConfig(M=M, ef_construction=efc, seed=seed))
    scratch.add_items(base)
    lib = hnswlib.Index(space="l2", dim=dim)
    lib.init_index(max_elements=n, M=M, ef_construction=efc, random_seed=seed)
    lib.add_items(base, num_threads=1)
    out = []
    for ef in efs:
        lib.set_ef(ef)
        out.append(
            (
                ef,
                recall_at_k(scratch.knn_query(queries, 10, ef)[0], truth),
                recall_at_k(lib.knn_query(queries, k=10)[0], truth),
            )
        )
    return out


def test_scratch_recall_matches_hnswlib_small():
    """Fast version: 1,000 Gaussian vectors (16-D), M=8, efC=64, efSearch 10 and 20."""
    for ef, ours, theirs in _recalls(1_000, 16, 8, 64, (10, 20), 300):
        assert 0.6 < theirs < 1.0  # a setting where recall is informative, not saturated
        assert abs(ours - theirs) <= 0.02, f"ef={ef}: scratch {ours:.3f} vs hnswlib {theirs:.3f}"


@pytest.mark.slow
def test_scratch_recall_matches_hnswlib_2000():
    """The goal: ≥ 2,000 vectors, equal M / efConstruction / efSearch, recall within 0.02 of hnswlib."""
    for ef, ours, theirs in _recalls(2_000, 32, 16, 100, (10, 20, 40), 500):
        assert abs(ours - theirs) <= 0.02, f"ef={ef}: scratch {ours:.3f} vs hnswlib {theirs:.3f}"


@pytest.mark.slow
def test_hierarchy_cuts_distance_growth():
    rows = compare_nsw_hnsw(ns=(250, 2_000))
    cost = {(r["index"], r["n"]): r["distances_per_query"] for r in rows}
    assert all(r["recall_at_k"] >= 0.9 for r in rows)
    assert cost["HNSW", 2_000] < cost["NSW", 2_000]
    growth = {kind: cost[kind, 2_000] / cost[kind, 250] for kind in ("NSW", "HNSW")}
    assert growth["HNSW"] < growth["NSW"] < 8  # both far below brute force, which grows 8×


def test_embedded_points_project_queries_consistently():
    vectors = make_vectors(50, 12, seed=8)
    points = embedded_points(vectors, [str(i) for i in range(50)], [""] * 50, "test")
    assert np.allclose(points.project(vectors[7]), points.xy[7], atol=1e-4)


# --- sweeps and the memory guard ------------------------------------------------------------------------------
def test_sweep_builds_once_per_M_and_efc():
    rows = run_sweep("hnswlib", 2_000, 16, [8, 16], [50], [8, 64], k=10, n_queries=200)
    assert len(rows) == 4
    assert all(set(r) >= SWEEP_KEYS for r in rows)
    by_build = {}
    for r in rows:
        by_build.setdefault((r["M"], r["ef_construction"]), set()).add(r["build_s"])
    assert all(len(v) == 1 for v in by_build.values())  # one build timing shared by its efSearch values
    for M in (8, 16):
        low, high = (next(r for r in rows if r["M"] == M and r["ef_search"] == ef) for ef in (8, 64))
        assert high["recall_at_k"] >= low["recall_at_k"] and high["recall_at_k"] > 0.8
    assert rows[2]["memory_bytes"] > rows[0]["memory_bytes"]  # more links at M=16
    assert pareto_front(rows)


@pytest.mark.parametrize("library", ["faiss", "scratch"])
def test_other_libraries_give_the_same_row_shape(library):
    rows = run_sweep(library, 400, 8, [8], [32], [16], k=5, n_queries=50)
    assert len(rows) == 1 and set(rows[0]) >= SWEEP_KEYS
    assert 0.5 < rows[0]["recall_at_k"] <= 1.0 and rows[0]["memory_bytes"] > 400 * 8 * 4


def run_cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_cli_hnsw_sweep_json_contract():
    r = run_cli(
        "hnsw-sweep",
        "--library",
        "hnswlib",
        "--n",
        "2000",
        "--dim",
        "16",
        "--M",
        "8,16",
        "--ef-construction",
        "50",
        "--ef-search",
        "16,64",
        "--k",
        "10",
        "--json",
        "--queries",
        "200",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in r.stdout.splitlines()]  # every stdout line is one JSON object
    assert [(x["M"], x["ef_search"]) for x in rows] == [(8, 16), (8, 64), (16, 16), (16, 64)]
    for x in rows:
        assert set(x) >= SWEEP_KEYS
        assert x["library"] == "hnswlib" and x["ef_construction"] == 50
        assert 0 <= x["recall_at_k"] <= 1 and x["qps"] > 0 and x["build_s"] > 0 and x["memory_bytes"] > 0


def test_absurd_n_is_refused_before_allocating(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("allocated vectors for a refused setting")

    monkeypatch.setattr(sweep_mod, "make_vectors", boom)
    with pytest.raises(SweepTooLarge, match=r"1,000,000,000"):
        run_sweep("hnswlib", 10**9, 128, [16], [200], [64])
    with pytest.raises(SweepTooLarge, match=r"from-scratch HNSW is pure Python"):
        run_sweep("scratch", 100_000, 16, [16], [200], [64])


def test_memory_estimate_against_available_ram(monkeypatch):
    monkeypatch.setattr(memory_mod, "available_memory", lambda: 2 * 10**9)  # pretend 2 GB are free
    assert check_fits(100_000, 128, 16) < 10**9
    with pytest.raises(SweepTooLarge, match=r"needs about .* but only 2\.00 GB"):
        check_fits(2_000_000, 768, 32)
    parts = memory_mod.estimate_bytes(1_000_000, 128, 16)
    assert parts["vectors"] == 1_000_000 * 128 * 4
    assert math.isclose(parts["graph"], 1_000_000 * (33 * 4 + 8) * (1 + 1 / 15), rel_tol=1e-6)


def test_cli_refuses_with_one_clear_line():
    r = run_cli("hnsw-sweep", "--n", "1000000000", "--dim", "128", "--json", timeout=120)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.strip().startswith("error:") and "1,000,000,000" in r.stderr
    bad = run_cli("hnsw-sweep", "--n", "500", "--M", "8,x", "--json", timeout=120)
    assert bad.returncode == 2 and "comma-separated integers" in bad.stderr


def test_grid_limits():
    with pytest.raises(SweepTooLarge, match="M must be"):
        run_sweep("hnswlib", 500, 8, [1], [50], [10])
    with pytest.raises(SweepTooLarge, match="k must be"):
        run_sweep("hnswlib", 500, 8, [8], [50], [10], k=0)


def test_knn_vs_ann_small():
    r = knn_vs_ann(n=3_000, dim=16, k=10, n_queries=50, ef_search=64)
    assert r.ann_recall > 0.9 and r.exact_distance_computations == 3_000
    assert r.exact_ms_per_query > 0 and r.ann_ms_per_query > 0


def test_knn_vs_ann_grid_one_build_every_ef():
    """One build answers every efSearch: recall grows with ef, and `at` picks the nearest measured ef."""
    seen = []
    g = knn_vs_ann_grid(n=2_000, dim=16, n_queries=50, progress=lambda f, m: seen.append(f))
    assert [p.ef_search for p in g.points] == list(EF_GRID)
    recalls = [p.recall for p in g.points]
    assert recalls == sorted(recalls) and recalls[-1] == 1.0
    assert g.at(30).ef_search == 32 and g.at(1_000).ef_search == 256 and g.at(12).ef_search == 10
    r = g.at(64)
    assert (r.n, r.dim, r.k, r.exact_distance_computations) == (2_000, 16, 10, 2_000)
    assert r.exact_ms_per_query > 0 and r.ann_ms_per_query > 0 and r.ann_build_s > 0
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert KnnVsAnnGrid.from_dict(json.loads(json.dumps(g.as_dict()))) == g  # a shipped copy draws the same


def test_knn_vs_ann_grid_stops_when_asked():
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3  # after the first few chunks of exact search

    with pytest.raises(Cancelled):
        knn_vs_ann_grid(n=2_000, dim=16, n_queries=100, should_stop=stop)


def test_cli_knn_vs_ann_json_one_row_per_ef():
    r = run_cli("knn-vs-ann", "--n", "2000", "--dim", "16", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["ef_search"] for row in rows] == list(EF_GRID)
    assert {row["n"] for row in rows} == {2_000} and all(0 < row["recall_at_k"] <= 1 for row in rows)
    bad = run_cli("vector-db-precompute", "--only", "nope", timeout=120)
    assert bad.returncode == 2 and "knn_ann,scaling,sweep,store" in bad.stderr
