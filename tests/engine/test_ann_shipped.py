"""Chapter 12's shipped results (engine/ann/shipped.py, engine/vectorstore/shipped.py): every file the page reads is
there, was made by the command it names, and covers what the page offers (every n × dim of the KNN sliders)."""

from __future__ import annotations

import pytest

from engine.ann import shipped
from engine.ann.exact import EF_GRID
from engine.core import load_precomputed
from engine.vectorstore import shipped as store_shipped
from ui.i18n import strings

SECTIONS = (*shipped.SECTIONS, "store")


@pytest.mark.parametrize("section", SECTIONS)
def test_each_section_is_shipped_with_its_command(section):
    pre = load_precomputed(shipped.name(section))
    assert pre is not None, f"run `python -m engine vector-db-precompute --only {section}`"
    assert pre.command == f"python -m engine vector-db-precompute --only {section}"
    assert pre.made and pre.machine


def test_knn_ann_covers_every_slider_setting():
    data = load_precomputed("ch12_knn_ann").data
    for n in shipped.KNN_NS:
        for dim in shipped.KNN_DIMS:
            grid = shipped.knn_ann_lookup(data, n, dim)
            assert grid is not None and (grid.n, grid.dim) == (n, dim)
            assert [p.ef_search for p in grid.points] == list(EF_GRID)
            assert grid.exact_ms_per_query > 0 and grid.ann_build_s > 0
    assert shipped.knn_ann_lookup(data, 123, 16) is None


def test_sweep_and_scaling_are_the_page_defaults():
    sweep = load_precomputed("ch12_sweep").data
    s = shipped.SWEEP
    expected = {
        (lib, m, efc, ef)
        for lib in s["libraries"]
        for m in s["Ms"]
        for efc in s["ef_constructions"]
        for ef in s["ef_searches"]
    }
    assert {(r["library"], r["M"], r["ef_construction"], r["ef_search"]) for r in sweep["rows"]} == expected
    assert all(r["n"] == s["n"] and r["dim"] == s["dim"] for r in sweep["rows"]) and sweep["truth_s"] > 0
    scaling = load_precomputed("ch12_scaling").data
    assert {(r["index"], r["n"]) for r in scaling} == {(i, n) for i in ("NSW", "HNSW") for n in (250, 1_000, 2_000)}


def test_store_answer_is_for_the_page_default_query():
    data = load_precomputed("ch12_store").data
    assert data["query"] == store_shipped.QUERY == strings()["ch12.default_query"]["ko"]
    assert data["documents"] == 136 and len(data["rows"]) == data["k"] == store_shipped.K
    assert set(data["rows"][0]) == {"id", "score", "title", "text"}
