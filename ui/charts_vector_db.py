"""Plotly figures for chapter 12 (HNSW layers, sweep trade-off curves): pure functions of engine results."""

from __future__ import annotations

import math

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.ann import GraphPicture, LayerTrace

GREY, ORANGE, RED, GREEN, BLUE = "#c7c7c7", "#ff7f0e", "#d62728", "#2ca02c", "#1f77b4"
MARGIN = {"l": 10, "r": 10, "t": 50, "b": 10}


def _segments(xy, pairs) -> tuple[list, list]:
    xs, ys = [], []
    for a, b in pairs:
        xs += [float(xy[a][0]), float(xy[b][0]), None]
        ys += [float(xy[a][1]), float(xy[b][1]), None]
    return xs, ys


def truncate_layers(layers: list[LayerTrace], steps: int | None) -> list[LayerTrace]:
    """The trace as it stood after `steps` node expansions (counted across layers, top first)."""
    if steps is None:
        return layers
    out, left = [], steps
    for lt in layers:
        shown = lt.expanded[: max(left, 0)]
        keep = set(shown)
        out.append(
            LayerTrace(
                lt.level,
                lt.entry,
                shown,
                [e for e in lt.edges if e[0] in keep],
                lt.result if left >= len(lt.expanded) else [],
                lt.n_distances,
            )
        )
        left -= len(lt.expanded)
    return out


def hnsw_layers(
    pic: GraphPicture,
    layers: list[LayerTrace],
    title: str,
    query_xy=None,
    new_node: int | None = None,
    new_links: dict[int, list[int]] | None = None,
    results: list[int] | None = None,
    layer_label: str = "layer {level}",
    cols: int = 3,
) -> go.Figure:
    """One panel per layer, top layer first: the layer's links (grey), the links a search read (orange), the
    nodes it expanded in order (red path), the entry point (star), the results (green), the query (black ×)."""
    n_layers = len(pic.layer_sizes)
    cols = min(cols, n_layers)
    rows = math.ceil(n_layers / cols)
    levels = list(range(n_layers - 1, -1, -1))
    by_level = {lt.level: lt for lt in layers}
    titles = [layer_label.format(level=lv, nodes=pic.layer_sizes[lv]) for lv in levels]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.03, vertical_spacing=0.08)
    for i, lv in enumerate(levels):
        r, c = i // cols + 1, i % cols + 1
        on_layer = [j for j, top in enumerate(pic.levels) if top >= lv]
        xs, ys = _segments(pic.xy, pic.edges.get(lv, []))
        fig.add_trace(
            go.Scattergl(
                x=xs, y=ys, mode="lines", line={"color": GREY, "width": 0.7}, hoverinfo="skip", showlegend=False
            ),
            r,
            c,
        )
        fig.add_trace(
            go.Scattergl(
                x=pic.xy[on_layer, 0],
                y=pic.xy[on_layer, 1],
                mode="markers",
                marker={"color": "#7f7f7f", "size": 5 if lv == 0 else 7},
                text=[pic.labels[j] for j in on_layer],
                hoverinfo="text",
                showlegend=False,
            ),
            r,
            c,
        )
        lt = by_level.get(lv)
        if lt is not None:
            xs, ys = _segments(pic.xy, lt.edges)
            fig.add_trace(
                go.Scattergl(
                    x=xs, y=ys, mode="lines", line={"color": ORANGE, "width": 1.2}, hoverinfo="skip", showlegend=False
                ),
                r,
                c,
            )
            path = [lt.entry, *[x for x in lt.expanded if x != lt.entry]]
            if lt.expanded:
                fig.add_trace(
                    go.Scatter(
                        x=pic.xy[path, 0],
                        y=pic.xy[path, 1],
                        mode="lines+markers",
                        line={"color": RED, "width": 2},
                        marker={"color": RED, "size": 7},
                        text=[pic.labels[j] for j in path],
                        hoverinfo="text",
                        showlegend=False,
                    ),
                    r,
                    c,
                )
            fig.add_trace(
                go.Scatter(
                    x=[pic.xy[lt.entry, 0]],
                    y=[pic.xy[lt.entry, 1]],
                    mode="markers",
                    marker={"symbol": "star", "size": 15, "color": RED, "line": {"width": 1}},
                    text=[f"entry {pic.labels[lt.entry]}"],
                    hoverinfo="text",
                    showlegend=False,
                ),
                r,
                c,
            )
        if new_links and lv in new_links and new_node is not None:
            xs, ys = [], []
            for j in new_links[lv]:
                xs += [float(query_xy[0]), float(pic.xy[j][0]), None]
                ys += [float(query_xy[1]), float(pic.xy[j][1]), None]
            fig.add_trace(
                go.Scatter(
                    x=xs, y=ys, mode="lines", line={"color": BLUE, "width": 2.5}, hoverinfo="skip", showlegend=False
                ),
                r,
                c,
            )
        if results and lv == 0:
            fig.add_trace(
                go.Scatter(
                    x=pic.xy[results, 0],
                    y=pic.xy[results, 1],
                    mode="markers",
                    marker={"color": GREEN, "size": 12, "line": {"width": 1, "color": "black"}},
                    text=[pic.labels[j] for j in results],
                    hoverinfo="text",
                    showlegend=False,
                ),
                r,
                c,
            )
        if query_xy is not None:
            fig.add_trace(
                go.Scatter(
                    x=[float(query_xy[0])],
                    y=[float(query_xy[1])],
                    mode="markers",
                    marker={"symbol": "x", "size": 13, "color": BLUE if new_node is not None else "black"},
                    hoverinfo="skip",
                    showlegend=False,
                ),
                r,
                c,
            )
    # the same window on every layer, so a point (and the query) sits at the same spot in each panel
    xy = pic.xy if query_xy is None else np.vstack([pic.xy, np.asarray(query_xy, dtype=np.float32)[None, :2]])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-6)
    fig.update_xaxes(showticklabels=False, range=[float(lo[0] - pad[0]), float(hi[0] + pad[0])])
    fig.update_yaxes(showticklabels=False, range=[float(lo[1] - pad[1]), float(hi[1] + pad[1])])
    fig.update_layout(title=title, height=80 + 330 * rows, margin=MARGIN)
    return fig


def tradeoff(rows: list[dict], title: str) -> go.Figure:
    """Recall@k (x) against queries/s (y, log): one line per index build, a point per efSearch."""
    data = [
        {**r, "index": f"{r['library']} M={r['M']} efC={r['ef_construction']}", "ef": f"ef={r['ef_search']}"}
        for r in rows
    ]
    fig = px.line(
        data,
        x="recall_at_k",
        y="qps",
        color="index",
        markers=True,
        text="ef",
        log_y=True,
        title=title,
        hover_data=["library", "M", "ef_construction", "ef_search", "build_s", "memory_bytes"],
    )
    fig.update_traces(textposition="top center", textfont_size=10)
    fig.update_layout(margin=MARGIN, xaxis_title="recall@k", yaxis_title="queries / s (1 thread)")
    return fig


def build_cost(rows: list[dict], y: str, title: str) -> go.Figure:
    """One bar per index build (build time or memory)."""
    seen, data = set(), []
    for r in rows:
        key = (r["library"], r["M"], r["ef_construction"])
        if key not in seen:
            seen.add(key)
            data.append({"library": r["library"], "setting": f"M={r['M']} efC={r['ef_construction']}", y: r[y]})
    fig = px.bar(data, x="setting", y=y, color="library", barmode="group", title=title)
    fig.update_layout(margin=MARGIN)
    return fig


def scaling(rows: list[dict], title: str) -> go.Figure:
    """Distance computations per query against n, for NSW, HNSW and brute force."""
    data = [{"index": r["index"], "n": r["n"], "distances": r["distances_per_query"]} for r in rows]
    data += [{"index": "brute force", "n": n, "distances": n} for n in sorted({r["n"] for r in rows})]
    fig = px.line(data, x="n", y="distances", color="index", markers=True, log_x=True, log_y=True, title=title)
    fig.update_layout(margin=MARGIN)
    return fig
