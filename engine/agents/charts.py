"""The chart tool: the model names a chart type and gives x/y data (or a SELECT over Chinook); the page gets a
plotly figure, the model a one-line summary of what was drawn (it cannot see pictures).

Why a summary and not "done": a text-only model that asked for a chart should still be able to say something true
about it in its answer (the biggest bar, the range), so the observation carries those numbers.
"""

from __future__ import annotations

import functools
import math

from engine.agents.observations import error_output
from engine.agents.tool import Tool, ToolOutput

CHART_TYPES = ("bar", "line", "scatter", "pie")
MAX_POINTS = 1_000
MAX_LABEL_CHARS = 60


def _numbers(values, name: str) -> list[float] | str:
    out = []
    for v in values:
        if isinstance(v, bool):
            return f"{name} must be numbers (got {v!r})"
        try:
            f = float(str(v).replace(",", "")) if isinstance(v, str) else float(v)
        except (TypeError, ValueError):
            return f"{name} must be numbers (got {str(v)[:30]!r})"
        if not math.isfinite(f):
            return f"{name} must be finite numbers (got {v!r})"
        out.append(f)
    return out


def _from_sql(sql: str) -> tuple[list, list, str, str] | str:
    """x = the first column, y = the second, of a read-only SELECT on Chinook (chapter 6's executor)."""
    from engine.text2sql.databases import chinook
    from engine.text2sql.executor import run_sql

    result = run_sql(chinook(), sql, timeout_s=5.0, max_rows=MAX_POINTS)
    if not result.ok:
        return f"{result.detail} ({result.error})"
    if len(result.columns) < 2:
        return "the SELECT must return two columns: the labels (x) first, the values (y) second"
    return [r[0] for r in result.rows], [r[1] for r in result.rows], result.columns[0], result.columns[1]


def make_chart(
    chart_type: str,
    x: list | None = None,
    y: list | None = None,
    title: str = "",
    sql: str | None = None,
) -> ToolOutput:
    """A plotly figure (the artifact) and a short text about it; bad input is an error observation, never raised."""
    import plotly.graph_objects as go

    if chart_type not in CHART_TYPES:
        choices = ", ".join(CHART_TYPES)
        return error_output("chart.bad_type", f"chart_type must be one of {choices} (got {chart_type!r})")
    x_name, y_name = "x", "y"
    if sql:
        got = _from_sql(sql)
        if isinstance(got, str):
            return error_output("chart.bad_sql", got)
        x, y, x_name, y_name = got
    if not isinstance(x, list) or not isinstance(y, list) or not x:
        return error_output("chart.bad_data", "give x and y as two lists of the same length (or a sql SELECT)")
    if len(x) != len(y):
        return error_output("chart.bad_data", f"x has {len(x)} values but y has {len(y)}: they must match")
    if len(x) > MAX_POINTS:
        return error_output("chart.bad_data", f"at most {MAX_POINTS} points (got {len(x)})")
    ys = _numbers(y, "y")
    if isinstance(ys, str):
        return error_output("chart.bad_data", ys)
    if chart_type in ("line", "scatter") and isinstance(_numbers(x, "x"), list):
        xs: list = _numbers(x, "x")  # numeric x draws on a numeric axis
    else:
        xs = [str(v)[:MAX_LABEL_CHARS] for v in x]
    if chart_type == "pie" and any(v < 0 for v in ys):
        return error_output("chart.bad_data", "a pie chart needs values ≥ 0")
    title = str(title or "")[:120]
    if chart_type == "bar":
        trace = go.Bar(x=xs, y=ys)
    elif chart_type == "pie":
        trace = go.Pie(labels=xs, values=ys)
    else:
        trace = go.Scatter(x=xs, y=ys, mode="lines+markers" if chart_type == "line" else "markers")
    fig = go.Figure(trace)
    fig.update_layout(title=title or None, xaxis_title=x_name, yaxis_title=y_name, height=360)
    top = max(range(len(ys)), key=ys.__getitem__)
    low = min(range(len(ys)), key=ys.__getitem__)
    text = (
        f"Drew a {chart_type} chart{f' {title!r}' if title else ''} of {len(ys)} points. "
        f"Largest: {_g(ys[top])} at {xs[top]}; smallest: {_g(ys[low])} at {xs[low]}."
    )
    return ToolOutput(text, artifact=fig)


def _g(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:.6g}"


@functools.cache
def chart_tool() -> Tool:
    """`chart`: draw a bar/line/scatter/pie chart of x/y lists, or of a Chinook SELECT (x, y = its two columns)."""
    return Tool(
        name="chart",
        description=(
            "Draw a chart for the user. Give chart_type (bar, line, scatter or pie) and either x and y lists of the "
            "same length, or sql: one SELECT on the music store database whose first column is x and second is y."
        ),
        parameters={
            "type": "object",
            "properties": {
                "chart_type": {"type": "string", "enum": list(CHART_TYPES)},
                "x": {"type": "array", "items": {}, "description": "labels or x values"},
                "y": {"type": "array", "items": {"type": "number"}, "description": "the values"},
                "title": {"type": "string"},
                "sql": {"type": "string", "description": "instead of x and y: SELECT label, value FROM ..."},
            },
            "required": ["chart_type"],
        },
        fn=make_chart,
        labels={"ko": "차트", "en": "Chart"},
    )
