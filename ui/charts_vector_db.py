"""Plotly figures for chapter 12 (HNSW layers, sweep trade-off curves): pure functions of engine results; and, at
the end, the `show_*` helpers that draw them on the page with their metrics and tables (translated headers and
axis titles with units), and `shipped_or_run`: a run button with the shipped result beside it."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from engine.ann import GraphPicture, LayerTrace, found_texts, knn_ann_lookup, search_layer_rows
from engine.core import UserError, load_precomputed
from ui import charts
from ui.charts import table
from ui.i18n import t
from ui.jobs import last_job, run_job, show_job_status
from ui.layout import friendly_errors, precomputed_note

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


def tradeoff(rows: list[dict], title: str, labels: dict[str, str]) -> go.Figure:
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
        labels=labels,
        hover_data=["library", "M", "ef_construction", "ef_search", "build_s", "memory_bytes"],
    )
    fig.update_traces(textposition="top center", textfont_size=10)
    fig.update_layout(margin=MARGIN)
    return fig


def build_cost(rows: list[dict], y: str, title: str, labels: dict[str, str], scale: float = 1.0) -> go.Figure:
    """One bar per index build (build time, or memory divided by `scale`)."""
    seen, data = set(), []
    for r in rows:
        key = (r["library"], r["M"], r["ef_construction"])
        if key not in seen:
            seen.add(key)
            setting = f"M={r['M']} efC={r['ef_construction']}"
            data.append({"library": r["library"], "setting": setting, y: round(r[y] / scale, 3)})
    fig = px.bar(data, x="setting", y=y, color="library", barmode="group", title=title, labels=labels)
    fig.update_layout(margin=MARGIN)
    return fig


def scaling(rows: list[dict], title: str, labels: dict[str, str], brute_force: str) -> go.Figure:
    """Distance computations per query against n, for NSW, HNSW and brute force (named `brute_force`)."""
    data = [{"index": r["index"], "n": r["n"], "distances": r["distances_per_query"]} for r in rows]
    data += [{"index": brute_force, "n": n, "distances": n} for n in sorted({r["n"] for r in rows})]
    fig = px.line(
        data, x="n", y="distances", color="index", markers=True, log_x=True, log_y=True, title=title, labels=labels
    )
    fig.update_layout(margin=MARGIN)
    return fig


# --- drawing on the page: the figures above with their metrics and tables -------------------------------------
# Result columns of the engine's rows -> what the learner reads (table headers, axis and legend titles, with units).
# Also the order of a table's columns (a shipped file's rows come with their keys sorted).
COLUMNS = (  # noqa: SIM905 - one string reads as the table it is
    "index library n dim data M ef_construction ef_search k recall_at_k qps distances_per_query "
    "hops_per_query brute_force_distances layers build_s build_cpu_s query_ms memory_bytes memory_mb memory_kind "
    "queries threads setting"
).split()


def column_names(columns=COLUMNS) -> dict[str, str]:
    return {c: t(f"ch12.col_{c}") for c in columns}


def frame(rows: list[dict]) -> pd.DataFrame:
    """Engine rows as a table with translated headers (and the data kind in words)."""
    df = pd.DataFrame(rows)
    df = df[sorted(df.columns, key=lambda c: COLUMNS.index(c) if c in COLUMNS else len(COLUMNS))]
    if "data" in df:
        df["data"] = [t(f"ch12.data_{v}") for v in df["data"]]
    return df.rename(columns=column_names([c for c in df.columns if c in COLUMNS]))


def shipped_or_run(key: str, name: str, button: str, work, button_key: str, *, label: str = "", primary: bool = False):
    """A run button (progress bar and Stop) for job `key` with, until the learner runs it here, the shipped result
    `name` labelled above it. Returns (the job, the shipped data or None)."""
    slot = st.container()
    if st.button(button, key=button_key, type="primary" if primary else "secondary"):
        with friendly_errors():
            run_job(key, work, label=label)
    show_job_status(key)
    job = last_job(key)
    if job.status is not None:
        return job, None
    pre = load_precomputed(name)
    if pre is not None:
        with slot:
            precomputed_note(pre)
    return job, None if pre is None else pre.data


def show_scaling(rows: list[dict] | None) -> None:
    if not rows:
        return
    labels = {**column_names(["n", "index"]), "distances": t("ch12.col_distances_per_query")}
    charts.show(st, scaling(rows, t("ch12.scaling_title"), labels, t("ch12.brute_force_trace")), width="stretch")
    st.dataframe(frame(rows), hide_index=True, width="stretch")
    st.caption(t("ch12.scaling_source"))


def show_knn_vs_ann(grid, ef: int) -> None:
    """The measurement at efSearch `ef` as metrics, then every efSearch of the same build as a table."""
    res = grid.at(ef)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(t("ch12.exact_ms"), f"{res.exact_ms_per_query:.2f} ms")
    m2.metric(t("ch12.ann_ms"), f"{res.ann_ms_per_query:.3f} ms", f"×{res.speedup:.0f}")
    m3.metric(f"recall@{res.k} (HNSW)", f"{res.ann_recall:.3f}")
    m4.metric(t("ch12.build_s"), f"{res.ann_build_s:.2f} s")
    st.caption(t("ch12.knn_source", n=res.n, dim=res.dim))
    rows = [[p.ef_search, p.ann_ms_per_query, p.recall, p.speedup] for p in grid.points]
    table(rows, ["efSearch", t("ch12.ann_ms_col"), f"recall@{res.k}", t("ch12.speedup_col")])


def show_search(walk, points, shown: int | None) -> None:
    """The search drawn up to `shown` expansions (None: all, with the results), its costs and its layers."""
    fig = hnsw_layers(
        walk.graph,
        truncate_layers(walk.trace.layers, shown),
        t("ch12.search_title"),
        walk.query_xy,
        results=walk.trace.ids if shown is None else None,
        layer_label=t("ch12.layer_label"),
    )
    charts.show(st, fig, width="stretch")
    s1, s2, s3, s4 = st.columns(4)
    s1.metric(t("ch12.distances"), walk.trace.n_distances, help=t("ch12.distances_help"))
    s2.metric(t("ch12.brute_force"), walk.brute_force_distances)
    s3.metric(f"recall@{len(walk.exact_ids)}", f"{walk.recall:.2f}")
    s4.metric(t("ch12.layers"), len(walk.graph.layer_sizes))
    columns = [t("ch12.col_layer"), t("ch12.col_entry"), t("ch12.col_expanded"), t("ch12.col_distances")]
    table(search_layer_rows(walk), [*columns, t("ch12.col_best")])
    texts = found_texts(points, walk)
    if texts:
        table(texts, [t("ch12.col_id"), t("ch12.col_text")])


def show_insertion(ins, view, step: int) -> None:
    """One insertion: the graph right after it, the new node's links, what was pruned, layer by layer."""
    fig = hnsw_layers(
        ins.after,
        ins.trace.layers,
        t("ch12.insert_title", node=view.node, level=view.level),
        ins.new_xy,
        new_node=step,
        new_links=ins.trace.new_links,
        layer_label=t("ch12.layer_label"),
    )
    charts.show(st, fig, width="stretch")
    i1, i2, i3 = st.columns(3)
    i1.metric(t("ch12.new_level"), view.level)
    i2.metric(t("ch12.new_links"), view.new_links)
    i3.metric(t("ch12.pruned"), view.pruned, help=t("ch12.pruned_help"))
    columns = [t("ch12.col_layer"), t("ch12.col_entry"), t("ch12.col_expanded"), t("ch12.col_distances")]
    table(view.rows, [*columns, t("ch12.col_links")])


def show_sweep(rows: list[dict], truth_s: float | None) -> None:
    """The sweep's trade-off, build time and memory, its table and a CSV download (a stopped sweep: its rows)."""
    if not rows:
        return
    labels = column_names()
    charts.show(st, tradeoff(rows, t("ch12.tradeoff_title"), labels), width="stretch")
    b1, b2 = st.columns(2)
    charts.show(b1, build_cost(rows, "build_s", t("ch12.build_title"), labels), width="stretch")
    memory = build_cost(
        rows, "memory_bytes", t("ch12.memory_title"), {**labels, "memory_bytes": labels["memory_mb"]}, 1e6
    )
    charts.show(b2, memory, width="stretch")
    if truth_s is not None:
        st.caption(t("ch12.sweep_source", truth_s=truth_s, cpus=os.cpu_count()))
    st.dataframe(frame(rows), hide_index=True, width="stretch")
    csv = pd.DataFrame(rows).to_csv(index=False).encode("utf-8")  # the engine's column names: a file for tools
    st.download_button(t("ch12.download"), csv, "hnsw_sweep.csv", "text/csv")


def show_hits(rows) -> None:
    """Store hits (query_view.HitRow records or their dicts) as a table."""
    rows = [r if isinstance(r, dict) else dataclasses.asdict(r) for r in rows]
    cols = ["id", "score", "title", "text"]
    names = [t("ch12.col_id"), t("ch12.col_score"), t("ch12.col_title"), t("ch12.col_text")]
    table([[r[c] for c in cols] for r in rows], names)


def show_store_info(store, produced_by: str) -> dict:
    """Which store, where, how many documents, which embeddings; returns `store.info()`."""
    info = store.info()
    key = "ch12.store_local" if store.backend in ("sqlite", "local") else "ch12.store_pinecone"
    st.caption(t(key, path=info["location"], where=info["location"], docs=info["documents"], model=produced_by))
    return info


def knn_shipped_or_run(n: int, dim: int, work, shared_key: tuple):
    """(n, dim) too large to measure on a slider move: the shipped measurement (labelled) and a run button with a
    progress bar and Stop; a finished run is kept for this session (`ka_measured`). Returns the grid to draw."""
    st.caption(t("ch12.knn_big"))
    pre = load_precomputed("ch12_knn_ann")
    grid = knn_ann_lookup(pre.data, n, dim) if pre else None
    if grid is not None:
        precomputed_note(pre)
    label = t("ch12.knn_run", seconds=grid.exact_ms_per_query * 0.2 + grid.ann_build_s) if grid else None
    if st.button(label or t("ch12.knn_run_plain"), key="ka_run", type="primary"):
        job = run_job("ch12_knn", work, label=t("ch12.knn_measuring"), shared_key=shared_key)
        if job.complete:
            st.session_state["ka_measured"][(n, dim)] = job.result
            st.rerun()
    show_job_status("ch12_knn")
    return grid


def shipped_hits() -> None:
    """An empty collection: what the default query returns once the Constitution is in (shipped), above the button."""
    pre = load_precomputed("ch12_store")
    if pre is not None:
        precomputed_note(pre)
        st.caption(t("ch12.store_shipped", query=pre.data["query"], k=pre.data["k"], model=pre.data["model"]))
        show_hits(pre.data["rows"])


# --- learner input ---
def json_object(text: str) -> dict | None:
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise UserError(t("ch12.meta_object"))
    return value


def int_list(key: str) -> list[int]:
    try:
        values = [int(x) for x in str(st.session_state[key]).split(",") if x.strip()]
    except ValueError:
        values = []
    if not values:
        raise UserError(t("ch12.bad_list", value=st.session_state[key]))
    return values
