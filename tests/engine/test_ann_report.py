"""engine.ann.report: a search and an insertion layer by layer, and a sweep over libraries."""

from __future__ import annotations

import numpy as np
import pytest

from engine.ann import insertion_step, search_walkthrough, toy_points
from engine.ann.report import (
    clamp_insert,
    found_texts,
    insertion_view,
    search_layer_rows,
    search_steps,
    shown_steps,
    sweep_libraries,
)
from engine.core import InputError


def test_search_records():
    points = toy_points(60, 0)
    walk = search_walkthrough(points, np.array([0.5, 0.5], dtype=np.float32), 3, 4, 16, 4)
    total = search_steps(walk)
    assert total == sum(len(lt.expanded) for lt in walk.trace.layers) > 0
    assert shown_steps(0, total) is None and shown_steps(total, total) is None and shown_steps(1, total) == 1
    rows = search_layer_rows(walk)
    assert [r.level for r in rows] == [lt.level for lt in walk.trace.layers]
    assert rows[-1].distances == walk.trace.layers[-1].n_distances
    assert found_texts(points, walk) == []  # toy points have no texts


def test_insertion_view():
    points = toy_points(60, 0)
    assert clamp_insert(500, 60) == 59 and clamp_insert(0, 60) == 1
    ins = insertion_step(points, 30, 4, 16)
    view = insertion_view(points, ins)
    assert view.node == points.labels[30] and view.level == ins.trace.level
    assert view.new_links == sum(len(v) for v in ins.trace.new_links.values())
    assert len(view.rows) == len(ins.trace.layers)


def test_sweep_libraries():
    res = sweep_libraries(["hnswlib"], 300, 8, 5, "gaussian", [8], [50], [16, 32], n_queries=20)
    assert len(res.rows) == 2 and {r["library"] for r in res.rows} == {"hnswlib"} and res.truth_s >= 0
    with pytest.raises(InputError):
        sweep_libraries([], 300, 8, 5, "gaussian", [8], [50], [16])
