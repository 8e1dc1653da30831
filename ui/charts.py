"""Plotly figures used by the pages (pure functions of engine results)."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go


def prob_bars(labels: list[str], probs: list[float], title: str = "", highlight: int | None = None) -> go.Figure:
    colors = ["#d62728" if i == highlight else "#1f77b4" for i in range(len(labels))]
    # Distinct y labels even when two tokens decode to the same visible text
    ys = [f"{i + 1}. {lab}" for i, lab in enumerate(labels)]
    fig = go.Figure(go.Bar(x=probs, y=ys, orientation="h", marker_color=colors,
                           text=[f"{p:.1%}" for p in probs], textposition="auto"))  # fmt: skip
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, xaxis_title="p", height=80 + 28 * len(labels),
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})  # fmt: skip
    return fig


def heatmap(matrix, x_labels: list[str], y_labels: list[str] | None = None, title: str = "",
            colorscale: str = "Blues", zmid: float | None = None) -> go.Figure:  # fmt: skip
    y_labels = y_labels if y_labels is not None else x_labels
    # plotly merges duplicate category labels; make each one unique with its position
    xs = [f"{i}:{s}" for i, s in enumerate(x_labels)]
    ys = [f"{i}:{s}" for i, s in enumerate(y_labels)]
    fig = go.Figure(go.Heatmap(z=matrix, x=xs, y=ys, colorscale=colorscale, zmid=zmid))
    size = max(300, min(900, 24 * len(xs) + 150))
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, height=size,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})  # fmt: skip
    return fig


def grouped_bars(rows: list[dict], x: str, y: str, color: str, title: str = "", log_y: bool = False) -> go.Figure:
    fig = px.bar(rows, x=x, y=y, color=color, barmode="group", title=title, log_y=log_y, text=y)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def line(rows: list[dict], x: str, y: str, color: str | None = None, title: str = "", log_y: bool = False):
    fig = px.line(rows, x=x, y=y, color=color, markers=True, title=title, log_y=log_y)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig
