"""One result row of `make bench`: what run_bench.py collects into bench.json and the Markdown table."""

from __future__ import annotations


def bench_row(
    bench: str,
    metric: str,
    value: float,
    unit: str,
    goal: str | None = None,
    ok: bool | None = None,
    digits: int = 4,
    **extra,
) -> dict:
    row = {"bench": bench, "metric": metric, "value": round(value, digits), "unit": unit}
    if goal is not None:
        row.update(goal=goal, ok=ok)
    row.update(extra)
    return row
