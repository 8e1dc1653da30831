"""Plotly figures for chapter 8 (serving): batching timelines, KV block grids, distributions."""

from __future__ import annotations

import plotly.graph_objects as go

PHASE_COLORS = {"waiting": "#d9d9d9", "prefill": "#ff7f0e", "decode": "#1f77b4", "padding": "#f4cccc"}
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def gantt(
    segments: list[dict],
    n_requests: int,
    title: str,
    t_marker: float | None = None,
    labels: dict[str, str] | None = None,
) -> go.Figure:
    """One row per request; bars for waiting / prefill / decode / padding over time (seconds)."""
    labels = labels or {}
    fig = go.Figure()
    for phase, color in PHASE_COLORS.items():
        segs = [s for s in segments if s["phase"] == phase and s["end"] > s["start"]]
        if not segs:
            continue
        fig.add_trace(
            go.Bar(
                y=[f"#{s['request']}" for s in segs],
                x=[s["end"] - s["start"] for s in segs],
                base=[s["start"] for s in segs],
                orientation="h",
                marker_color=color,
                name=labels.get(phase, phase),
                hovertemplate="%{y}: %{base:.2f}–%{x:.2f}s<extra>" + labels.get(phase, phase) + "</extra>",
            )
        )
    if t_marker is not None:
        fig.add_vline(x=t_marker, line_dash="dash", line_color="#d62728")
    fig.update_layout(
        title=title,
        barmode="overlay",
        xaxis_title="s",
        height=120 + 22 * n_requests,
        margin=_MARGIN,
        yaxis={
            "autorange": "reversed",
            "categoryorder": "array",
            "categoryarray": [f"#{i}" for i in range(n_requests)],
        },
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def block_grid(snapshot: dict, block_size: int, title: str, per_row: int = 8) -> go.Figure:
    """Physical KV blocks as a grid: colour = owning sequence(s), text = owners · fill · ref count."""
    blocks = snapshot["blocks"]
    owners = sorted({o for b in blocks for o in b["owners"]})
    palette = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
    color_of = {o: palette[i % len(palette)] for i, o in enumerate(owners)}
    xs, ys, colors, texts = [], [], [], []
    for b in blocks:
        xs.append(b["block"] % per_row)
        ys.append(b["block"] // per_row)
        if not b["owners"]:
            colors.append("#f0f0f0")
            texts.append(f"{b['block']}<br>free")
        else:
            colors.append("#ff7f0e" if b["ref_count"] > 1 else color_of[b["owners"][0]])
            owners_text = "+".join(b["owners"])
            texts.append(f"{b['block']}<br>{owners_text}<br>{b['filled']}/{block_size} · ref {b['ref_count']}")
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers+text",
            text=texts,
            textfont={"size": 11},
            marker={"symbol": "square", "size": 62, "color": colors, "line": {"color": "#555", "width": 1}},
            hoverinfo="text",
        )
    )
    rows = max(ys) + 1 if ys else 1
    fig.update_layout(
        title=title,
        height=90 + 80 * rows,
        margin=_MARGIN,
        showlegend=False,
        xaxis={"visible": False, "range": [-0.6, per_row - 0.4]},
        yaxis={"visible": False, "autorange": "reversed", "range": [-0.6, rows - 0.4]},
    )
    return fig


def dist_bars(tokens: list, series: dict[str, list[float]], title: str) -> go.Figure:
    """Grouped bars: one group per token, one bar per named distribution."""
    fig = go.Figure([go.Bar(x=[str(x) for x in tokens], y=v, name=name) for name, v in series.items()])
    fig.update_layout(
        title=title,
        barmode="group",
        margin=_MARGIN,
        xaxis_title="token",
        yaxis_title="p",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def stacked_usage(rows: list[dict], title: str, labels: dict[str, str]) -> go.Figure:
    """Stacked horizontal bars of KV memory: token states / reservation / internal / external fragmentation."""
    parts = [
        ("token_states_pct", "#2ca02c"),
        ("reservation_pct", "#ffbb78"),
        ("internal_frag_pct", "#d62728"),
        ("external_frag_pct", "#9467bd"),
    ]
    fig = go.Figure()
    for key, color in parts:
        fig.add_trace(
            go.Bar(
                y=[r["policy"] for r in rows],
                x=[r.get(key, 0.0) or 0.0 for r in rows],
                orientation="h",
                name=labels.get(key, key),
                marker_color=color,
                text=[f"{r.get(key, 0.0) or 0.0:.1f}" for r in rows],
                textposition="inside",
            )
        )
    fig.update_layout(
        title=title,
        barmode="stack",
        xaxis={"title": "%", "range": [0, 100]},
        margin=_MARGIN,
        height=120 + 34 * len(rows),
        yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig
