"""Plotly figures used by the pages (pure functions of engine results)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st


def prob_bars(labels: list[str], probs: list[float], title: str = "", highlight: int | None = None) -> go.Figure:
    colors = ["#d62728" if i == highlight else "#1f77b4" for i in range(len(labels))]
    # Distinct y labels even when two tokens decode to the same visible text
    ys = [f"{i + 1}. {lab}" for i, lab in enumerate(labels)]
    fig = go.Figure(
        go.Bar(
            x=probs, y=ys, orientation="h", marker_color=colors, text=[f"{p:.1%}" for p in probs], textposition="auto"
        )
    )
    fig.update_layout(
        title=title,
        yaxis={"autorange": "reversed"},
        xaxis_title="p",
        height=80 + 28 * len(labels),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def _unique_labels(labels: list[str]) -> list[str]:
    """Labels as given when they are unique; otherwise each prefixed with its position (plotly merges duplicates)."""
    labels = [str(s) for s in labels]
    return labels if len(set(labels)) == len(labels) else [f"{i}:{s}" for i, s in enumerate(labels)]


def heatmap(
    matrix,
    x_labels: list[str],
    y_labels: list[str] | None = None,
    title: str = "",
    colorscale: str = "Blues",
    zmid: float | None = None,
) -> go.Figure:
    y_labels = y_labels if y_labels is not None else x_labels
    xs, ys = _unique_labels(x_labels), _unique_labels(y_labels)
    fig = go.Figure(go.Heatmap(z=matrix, x=xs, y=ys, colorscale=colorscale, zmid=zmid))
    size = max(300, min(900, 24 * len(xs) + 150))
    # "category": labels such as "0", "1" must stay labels, not become a numeric axis
    fig.update_layout(
        title=title,
        xaxis={"type": "category"},
        yaxis={"autorange": "reversed", "type": "category"},
        height=size,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def grouped_bars(rows: list[dict], x: str, y: str, color: str, title: str = "", log_y: bool = False) -> go.Figure:
    fig = px.bar(rows, x=x, y=y, color=color, barmode="group", title=title, log_y=log_y, text=y)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def line(rows: list[dict], x: str, y: str, color: str | None = None, title: str = "", log_y: bool = False):
    fig = px.line(rows, x=x, y=y, color=color, markers=True, title=title, log_y=log_y)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def scale_scatter(rows: list[dict], title: str) -> go.Figure:
    """Parameter count by year on a log axis; undisclosed sizes are left out (the table lists them)."""
    known = [r for r in rows if r["params"]]
    fig = go.Figure(
        go.Scatter(
            x=[r["year"] for r in known],
            y=[r["params"] for r in known],
            mode="markers+text",
            text=[r["model"] for r in known],
            textposition="top center",
            marker={"size": 14},
            customdata=[r["source"] for r in known],
            hovertemplate="%{text}<br>%{y:.3s} params<br>%{customdata}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        yaxis_type="log",
        yaxis_title="parameters",
        xaxis_title="year",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def mask_grid(mask: list[list[int]], title: str) -> go.Figure:
    """A 0/1 attention mask: green = may attend, white = blocked (fixed scale, so an all-ones mask is all green)."""
    n = len(mask)
    fig = go.Figure(
        go.Heatmap(
            z=mask,
            x=list(range(n)),
            y=list(range(n)),
            zmin=0,
            zmax=1,
            showscale=False,
            colorscale=[[0, "#ffffff"], [1, "#2e7d32"]],
            xgap=2,
            ygap=2,
        )
    )
    fig.update_layout(
        title=title,
        yaxis={"autorange": "reversed", "title": "query"},
        xaxis_title="key",
        height=260,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def metric_bars(rows: list[dict], x: str, label=None, metrics: tuple[str, ...] = ("hit@1", "hit@5")) -> go.Figure:
    """Grouped bars of retrieval metrics per row; the bar group is `label(row)` when given, else `row[x]`."""
    long = [{x: label(r) if label else r[x], "metric": m, "value": r[m]} for r in rows for m in metrics]
    return grouped_bars(long, x, "value", "metric")


def records_frame(rows, columns: list[str] | None = None) -> pd.DataFrame:
    """Rows as a table: dataclass records (their fields in order), dicts, or tuples; `columns` renames."""
    rows = list(rows)
    if rows and dataclasses.is_dataclass(rows[0]):
        rows = [[getattr(r, f.name) for f in dataclasses.fields(r)] for r in rows]
    return pd.DataFrame(rows, columns=columns)


def table(rows, columns: list[str] | None = None, **kwargs) -> None:
    """The one way pages draw a result table: full width, no index column."""
    st.dataframe(records_frame(rows, columns), hide_index=True, width="stretch", **kwargs)
