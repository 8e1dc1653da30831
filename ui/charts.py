"""Plotly figures used by the pages (pure functions of engine results)."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

# Presenter mode: one set of sizes for every chart, so the back row reads ticks and legends, not only titles.
PRESENTER_FONT = {"body": 20, "title": 28, "tick": 18, "axis_title": 20, "legend": 18, "annotation": 18}
PRESENTER_HEIGHT = 1.3  # charts grow with their text so labels do not crowd the plot


def show(where, fig: go.Figure, **kwargs):
    """The one way a chart reaches the page (`where` is st, a column or a tab): readable log ticks, labels that
    are not cut, and presenter sizes when presenter mode is on."""
    from ui.layout import presenter

    style(fig, presenter=presenter())
    kwargs.setdefault("width", "stretch")
    return where.plotly_chart(fig, **kwargs)


def style(fig: go.Figure, presenter: bool = False) -> go.Figure:
    """House style applied to every figure; returns the same figure (changed in place)."""
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    for trace in fig.data:
        if getattr(trace, "mode", None) and "text" in trace.mode:
            trace.cliponaxis = False  # a point's label may reach past the plot area; keep it whole
    for name in [k for k in fig.layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]:
        axis = fig.layout[name]
        if axis.type == "log":
            readable_log_axis(fig, name)
    if presenter:
        f = PRESENTER_FONT
        fig.update_layout(
            font_size=f["body"],
            title_font_size=f["title"],
            legend_font_size=f["legend"],
            legend_title_font_size=f["legend"],
            # values written inside bars: plotly shrinks them to fit the bar; keep them readable from the back
            uniformtext_minsize=f["tick"],
            uniformtext_mode="show",
        )
        fig.update_xaxes(tickfont_size=f["tick"], title_font_size=f["axis_title"])
        fig.update_yaxes(tickfont_size=f["tick"], title_font_size=f["axis_title"])
        fig.update_annotations(font_size=f["annotation"])
        fig.update_coloraxes(colorbar_tickfont_size=f["tick"])
        for trace in fig.data:
            if "colorbar" in trace:
                trace.colorbar.tickfont.size = f["tick"]
        if fig.layout.title.text:  # room above the plot for the bigger title (pages set t=40 for 16 px titles)
            fig.update_layout(margin_t=max(fig.layout.margin.t or 0, int(f["title"] * 2.2)))
        if fig.layout.height:
            fig.update_layout(height=int(fig.layout.height * PRESENTER_HEIGHT))
    return fig


def _axis_values(fig: go.Figure, axis_name: str) -> list[float]:
    """Positive numbers plotted against one axis (xaxis, yaxis2, ...), to choose its ticks."""
    letter, suffix = axis_name[0], axis_name[5:]
    ref = letter + suffix  # "y", "y2"
    values: list[float] = []
    for trace in fig.data:
        if (getattr(trace, f"{letter}axis", None) or letter) != ref:
            continue
        for v in getattr(trace, letter, None) if getattr(trace, letter, None) is not None else []:
            try:
                x = float(v)
            except (TypeError, ValueError):
                continue
            if x > 0 and math.isfinite(x):
                values.append(x)
    return values


def readable_log_axis(fig: go.Figure, axis_name: str) -> None:
    """Log axes label each power of ten once (1, 10, 100, 1k ...), never the "2, 5" minor digits that repeat
    between decades; SI suffixes only when nothing is below 1 (0.1 must not read as "100m")."""
    values = _axis_values(fig, axis_name)
    if not values:
        return
    low, high = min(values), max(values)
    decades = math.log10(high / low) if low > 0 else 0.0
    update = {"tickformat": "~s" if low >= 1 else "~g", "minor": {"showgrid": False}}
    if decades >= 1:
        update["dtick"] = 1  # one label per decade
    else:
        update["dtick"] = None
        update["nticks"] = 4
    fig.layout[axis_name].update(update)


def axes(title: str, x_title: str, y_title: str, height: int = 320, log_x: bool = False, log_y: bool = False):
    """An empty figure with a title, axis titles and the legend below: the start of most line charts here."""
    fig = go.Figure()
    fig.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


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


def grouped_bars(
    rows: list[dict], x: str, y: str, color: str, title: str = "", log_y: bool = False, labels: dict | None = None
) -> go.Figure:
    """`labels` maps column names to what the learner reads (axis titles, legend title): {"tokens": "토큰 수"}."""
    fig = px.bar(rows, x=x, y=y, color=color, barmode="group", title=title, log_y=log_y, text=y, labels=labels)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def line(
    rows: list[dict],
    x: str,
    y: str,
    color: str | None = None,
    title: str = "",
    log_y: bool = False,
    labels: dict | None = None,
):
    """`labels` maps column names to what the learner reads (axis titles, legend title)."""
    fig = px.line(rows, x=x, y=y, color=color, markers=True, title=title, log_y=log_y, labels=labels)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def scale_scatter(rows: list[dict], title: str, labels: dict | None = None) -> go.Figure:
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
            hovertemplate="%{text}<br>%{y:.3s}<br>%{customdata}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        yaxis_type="log",
        yaxis_title=(labels or {}).get("params", "parameters"),
        xaxis_title=(labels or {}).get("year", "year"),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def mask_grid(mask: list[list[int]], title: str, query: str = "query", key: str = "key") -> go.Figure:
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
        yaxis={"autorange": "reversed", "title": query},
        xaxis_title=key,
        height=260,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def metric_bars(
    rows: list[dict],
    x: str,
    label=None,
    metrics: tuple[str, ...] = ("hit@1", "hit@5"),
    labels: dict | None = None,
) -> go.Figure:
    """Grouped bars of retrieval metrics per row; the bar group is `label(row)` when given, else `row[x]`.
    `labels` names the axes: {x: ..., "metric": ..., "value": ...}."""
    long = [{x: label(r) if label else r[x], "metric": m, "value": r[m]} for r in rows for m in metrics]
    return grouped_bars(long, x, "value", "metric", labels=labels)


def records_frame(rows, columns: list[str] | None = None) -> pd.DataFrame:
    """Rows as a table: a DataFrame, dataclass records (their fields in order), dicts, or tuples; `columns`
    renames."""
    if isinstance(rows, pd.DataFrame):  # list(frame) would be its column names
        return rows.set_axis(columns, axis=1) if columns else rows
    rows = list(rows)
    if rows and dataclasses.is_dataclass(rows[0]):
        rows = [[getattr(r, f.name) for f in dataclasses.fields(r)] for r in rows]
    return pd.DataFrame(rows, columns=columns)


def table(rows, columns: list[str] | None = None, **kwargs) -> None:
    """The one way pages draw a result table: full width, no index column."""
    st.dataframe(records_frame(rows, columns), hide_index=True, width="stretch", **kwargs)
