"""Chapter 12's results as plain records for the page: a search or insertion layer by layer, and a whole sweep.

Pure functions of what `walkthrough` and `sweep` return, plus `sweep_libraries` (several libraries on one data set).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError


@dataclass(frozen=True)
class SearchLayerRow:
    level: int
    entry: str
    expanded: str  # the expanded nodes in order (the first 40), joined by arrows
    distances: int
    best: str  # the layer's best nodes (the first 10)


def search_steps(walk) -> int:
    """How many node expansions the search made over all layers (the step slider's range)."""
    return sum(len(lt.expanded) for lt in walk.trace.layers)


def shown_steps(step: int, total: int) -> int | None:
    """The expansions to draw for slider position `step`: None (all, with the results) at 0 or at the end."""
    return None if step == 0 or step >= total else step


def search_layer_rows(walk) -> list[SearchLayerRow]:
    labels = walk.graph.labels
    return [
        SearchLayerRow(
            lt.level,
            labels[lt.entry],
            " → ".join(labels[x] for x in lt.expanded[:40]),
            lt.n_distances,
            ", ".join(labels[x] for x in lt.result[:10]),
        )
        for lt in walk.trace.layers
    ]


@dataclass(frozen=True)
class FoundText:
    id: str
    text: str  # the first 200 characters


def found_texts(points, walk) -> list[FoundText]:
    """The texts of the results, for points that have texts (the corpus); empty for the toy points."""
    if not points.texts:
        return []
    return [FoundText(points.labels[i], points.texts[i][:200]) for i in walk.trace.ids]


@dataclass(frozen=True)
class InsertLayerRow:
    level: int
    entry: str
    expanded: int
    distances: int
    links: str  # the neighbours chosen for the new node on this layer


@dataclass(frozen=True)
class InsertionView:
    node: str
    level: int
    new_links: int  # links made for the new node, all layers
    pruned: int  # links neighbours dropped to stay within M
    rows: list[InsertLayerRow]


def clamp_insert(step: int, n_points: int) -> int:
    """The insertion slider's value kept within 1 … n_points-1 (a new point set may be smaller)."""
    return max(1, min(step, n_points - 1))


def insertion_view(points, ins) -> InsertionView:
    labels, trace = points.labels, ins.trace
    rows = [
        InsertLayerRow(
            lt.level,
            labels[lt.entry],
            len(lt.expanded),
            lt.n_distances,
            ", ".join(labels[x] for x in trace.new_links.get(lt.level, [])),
        )
        for lt in trace.layers
    ]
    return InsertionView(
        labels[trace.node],
        trace.level,
        sum(len(v) for v in trace.new_links.values()),
        sum(len(v) for v in trace.pruned.values()),
        rows,
    )


@dataclass
class SweepResult:
    rows: list[dict]  # one per (library, M, efConstruction, efSearch), as sweep_library reports them
    truth_s: float  # seconds the exact ground truth took


def sweep_libraries(
    libraries: list[str],
    n: int,
    dim: int,
    k: int,
    kind: str,
    Ms: list[int],
    ef_constructions: list[int],
    ef_searches: list[int],
    n_queries: int = 500,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> SweepResult:
    """One data set (memory-checked for the largest M, and for the scratch graph when it is asked for), then each
    library's sweep over the grid, each with its share of the progress bar."""
    from engine.ann.sweep import prepare, sweep_library

    if not libraries:
        raise InputError("ann.no_library")
    library = "scratch" if "scratch" in libraries else libraries[0]
    data = prepare(n, dim, k, n_queries=n_queries, kind=kind, library=library, max_M=max(Ms))
    rows: list[dict] = []
    share = 1 / len(libraries)
    for i, lib in enumerate(libraries):
        report = lambda f, m, i=i: progress(i * share + f * share, m)  # noqa: E731
        rows += sweep_library(
            lib, data, Ms, ef_constructions, ef_searches, progress=report, should_stop=should_stop, on_row=on_row
        )
    return SweepResult(rows, data.truth_s)
