"""Plotly figures and result panels for chapter 8 (serving): batching timelines, KV block grids, distributions,
attention checks, position pictures and load-test results. Pure drawing of engine results, plus the two helpers
that keep reruns light (`pure`, `light_or_button`)."""

from __future__ import annotations

import math
import re

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.core import null_progress
from engine.inference import shipped_rows, snapshot
from ui import charts
from ui.cache import shared
from ui.i18n import lang, t
from ui.jobs import run_job
from ui.layout import precomputed_note

PHASE_COLORS = {"waiting": "#d9d9d9", "prefill": "#ff7f0e", "decode": "#1f77b4", "padding": "#f4cccc"}
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}
MIB = 1024**2


# --- names: the engine's keys and values as a learner reads them (ui/strings/08_serving.yaml) ---------------------
def known(key: str, default: str) -> str:
    """t(key) when the strings define it, else `default` (an identifier such as a model name stays as it is)."""
    text = t(key)
    return default if text == key else text


def col_name(key: str) -> str:
    """A column, axis or legend name: the engine's key (snake_case or "reads (counted)") -> `ch8.col_<slug>`."""
    return known("ch8.col_" + re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_"), key)


def col_labels(*keys: str) -> dict[str, str]:
    return {k: col_name(k) for k in keys}


# Names the engine gives its methods, policies and implementations -> a string key ({g0}, {g1}: the groups).
_NAMES = (
    (r"standard", "ch8.name_standard"),
    (r"flash", "ch8.name_flash"),
    (r"standard \(Algorithm (\d)\)", "ch8.name_standard_alg"),
    (r"flash \(Algorithm (\d)\)", "ch8.name_flash_alg"),
    (r"torch SDPA \(default\)", "ch8.name_sdpa_default"),
    (r"engine\.lm\.attention \(scratch\)", "ch8.name_scratch"),
    (r"flash_attention \(scratch, tiled\)", "ch8.name_tiled"),
    (r"plain", "ch8.name_plain"),
    (r"prompt lookup", "ch8.name_lookup"),
    (r"early exit \((\d+)/(\d+) layers\)", "ch8.name_early_exit"),
    (r"contiguous \((\w+)\)", "ch8.name_contiguous"),
    (r"paged \(block (\d+)\)", "ch8.name_paged"),
)


def method_label(name: str) -> str:
    """A method, policy or implementation name as the learner reads it; identifiers (torch SDPA (math), 📄 Orca)
    stay as they are."""
    for pattern, key in _NAMES:
        if m := re.fullmatch(pattern, str(name)):
            return t(key, **{f"g{i}": g for i, g in enumerate(m.groups())})
    return str(name)


def _cell(value):
    """A cell a learner can read: None/NaN (a backend that could not run, a metric with no data) as "—"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return round(value, 3) if isinstance(value, float) else value


def named_table(rows, drop: tuple[str, ...] = (), order: tuple[str, ...] = (), **kwargs) -> None:
    """Rows (dicts or a frame) as a table: headers translated, floats to 3 decimals, missing values as "—"; the
    columns in `order` first (a shipped result's keys come back sorted)."""
    frame = pd.DataFrame(rows).drop(columns=list(drop), errors="ignore")
    frame = frame[[c for c in order if c in frame.columns] + [c for c in frame.columns if c not in order]]
    for c in frame.columns:
        values = [_cell(v) for v in frame[c]]
        text = any(v == "—" for v in values if isinstance(v, str))
        frame[c] = [str(v) for v in values] if text else values  # one type per column (Arrow)
    # st.dataframe directly: ui.charts.table reads a DataFrame as a list of its column names
    kwargs = {"hide_index": True, "width": "stretch", **kwargs}
    st.dataframe(frame.rename(columns={c: col_name(c) for c in frame.columns}), **kwargs)


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
                hovertemplate="%{y}: %{base:.2f} s + %{x:.2f} s<extra>" + labels.get(phase, phase) + "</extra>",
            )
        )
    if t_marker is not None:
        fig.add_vline(x=t_marker, line_dash="dash", line_color="#d62728")
    fig.update_layout(
        title=title,
        barmode="overlay",
        xaxis_title=col_name("time_s"),
        yaxis_title=col_name("request"),
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
            texts.append(f"{b['block']}<br>{t('ch8.pa_free')}")
        else:
            colors.append("#ff7f0e" if b["ref_count"] > 1 else color_of[b["owners"][0]])
            owners_text = "+".join(b["owners"])
            ref = t("ch8.pa_ref", n=b["ref_count"])
            texts.append(f"{b['block']}<br>{owners_text}<br>{b['filled']}/{block_size} · {ref}")
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
        xaxis_title=col_name("token"),
        yaxis_title=col_name("p"),
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
                y=[method_label(r["policy"]) for r in rows],
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


# --- running: what the page computes on every rerun is cached by its inputs; heavy settings wait for a button ---
def pure(key: tuple, fn):
    """A pure result cached by its inputs (every session of the process), so moving one widget does not redo
    the other sections' work."""
    return shared(key, lambda _: fn(), null_progress)


def light_or_button(key: tuple, heavy: bool, work, note: str):
    """`pure` when light; when heavy, behind a button with progress and Stop (a result this session already
    computed for the same inputs shows at once). None until then."""
    if not heavy:
        return pure(key, lambda: work(null_progress))
    done = st.session_state.setdefault("ch8_heavy", {})
    if key not in done:
        st.caption("⏳ " + note)
        if st.button(t("ch8.run_heavy"), key=f"heavy_{key[0]}"):
            job = run_job(key[0], lambda p, _row, _stop: work(p), shared_key=key)
            if job.complete:
                done[key] = job.result
    return done.get(key)


def shipped(slot, demo: str, prompt: str | None = None) -> list[dict] | None:
    """The rows shipped with the app for a run-only demo, labelled in `slot` (just above its run button); for the
    speculative run only while `prompt` is still the default it answered."""
    found = shipped_rows(demo, lang(), prompt)
    if found is None:
        return None
    with slot.container():
        precomputed_note(found.pre)
    return found.rows


# --- result panels: a finished engine result drawn with st.* (no computing) ---------------------------------------


def show_policies(cmp, t_now: float) -> None:
    """One tab per batching policy: its timeline up to `t_now`, the requests' state at that moment, its events."""
    labels = {k: t(f"ch8.phase_{k}") for k in PHASE_COLORS}
    n = len(cmp.work)
    for tab, (p, res) in zip(st.tabs([t(f"ch8.policy_{p}") for p in cmp.results]), cmp.results.items(), strict=True):
        with tab:
            g1, g2 = st.columns([3, 2])
            charts.show(g1, gantt(res.segments, n, t(f"ch8.policy_{p}"), t_now, labels), width="stretch")
            snap = pd.DataFrame(snapshot(res, t_now))
            snap["status"] = [t(f"ch8.status_{status}") for status in snap["status"].str.replace(" ", "_")]
            with g2:
                named_table(snap, height=38 * min(n, 12) + 40)
            with g2.expander(t("ch8.events")):
                st.text("\n".join(f"{ts:7.2f}s  {msg}" for ts, msg in res.events[:200]))


def show_block_step(step: dict, block_size: int) -> None:
    """One step of the PagedAttention scenario: what happened, the block grid, the block tables, the waste."""
    step_key = step["key"]
    st.markdown(f"**{step['step']}. {t(f'ch8.pa_{step_key}', **step['fmt'])}**")
    s1, s2 = st.columns([3, 2])
    charts.show(s1, block_grid(step, block_size, t("ch8.pa_grid")), width="stretch")
    with s2:
        st.markdown("**" + t("ch8.pa_tables") + "**")
        named_table(
            [{"seq": s, "tokens": step["lengths"][s], "block_table": str(tb)} for s, tb in step["tables"].items()]
        )
        if step["swapped"]:
            st.caption(t("ch8.pa_swapped", seqs=", ".join(f"{s} → CPU {c}" for s, c in step["swapped"].items())))
        st.metric(t("ch8.pa_waste"), f"{step['waste_slots']} / {step['allocated_blocks'] * block_size}")
        st.caption(t("ch8.pa_shared", logical=step["logical_tokens"], stored=step["stored_tokens"]))
        with st.expander(t("ch8.events")):
            st.text("\n".join(step["log"]))


def usage_chart(rows: list[dict], trace: str) -> go.Figure:
    keys = ("token_states_pct", "reservation_pct", "internal_frag_pct", "external_frag_pct")
    return stacked_usage(rows, t("ch8.pa_usage_chart", trace=trace), {k: t(f"ch8.usage_{k}") for k in keys})


def show_flash_check(cmp: dict) -> None:
    """flash vs standard attention on random inputs: the differences and the counted HBM traffic."""
    m1, m2, m3 = st.columns(3)
    m1.metric(t("ch8.fa_diff_scratch"), f"{cmp['max_diff_scratch']:.1e}")
    m2.metric(t("ch8.fa_diff_torch"), f"{cmp['max_diff_torch']:.1e}")
    m3.metric(t("ch8.fa_traffic_ratio"), f"{cmp['traffic_ratio']:.2f}×")
    rows = [
        {**r, "method": method_label(r["method"]), "read": str(r["read"]), "written": str(r["written"])}
        for r in cmp["traffic"]
    ]
    named_table(rows)
    st.caption(t("ch8.fa_elements"))


def hbm_chart(rows: list[dict], title: str) -> go.Figure:
    """Bytes moved to and from HBM per sequence length (the formula), in MiB on a log axis."""
    mib = [{"T": r["T"], "total_mib": r["total_bytes"] / MIB, "method": method_label(r["method"])} for r in rows]
    return charts.line(
        mib, "T", "total_mib", "method", title, log_y=True, labels=col_labels("T", "total_mib", "method")
    )


def show_sdpa_timing(res) -> None:
    timed = [{**r, "implementation": method_label(r["implementation"])} for r in res.timed]
    labels = col_labels("T", "ms", "implementation")
    chart = charts.grouped_bars(timed, "T", "ms", "implementation", t("ch8.fa_time_chart"), log_y=True, labels=labels)
    charts.show(st, chart, width="stretch")
    memory = [
        {
            "backend": r["backend"],
            "peak_mib": None if r.get("peak_bytes") is None else r["peak_bytes"] / MIB,
            "score_matrix_mib": None if r.get("score_matrix_bytes") is None else r["score_matrix_bytes"] / MIB,
            "error": r.get("error", ""),
        }
        for r in res.memory
    ]
    named_table(memory)
    st.caption(t("ch8.fa_time_caption", torch=res.torch_version, threads=res.threads))


def show_alibi(view) -> None:
    a1, a2 = st.columns(2)
    title = t("ch8.rp_alibi", slope=view.slope, L=view.train_len)
    charts.show(a1, charts.heatmap(view.bias, view.labels, title=title, colorscale="Viridis"), width="stretch")
    labels = col_labels("key", "weight", "head")
    weights = charts.line(
        view.weights, "key", "weight", "head", t("ch8.rp_alibi_weights", L=view.train_len), labels=labels
    )
    charts.show(a2, weights, width="stretch")


def show_rope(view) -> None:
    b1, b2 = st.columns(2)
    title = t("ch8.rp_rope_angles", L=view.train_len)
    charts.show(
        b1, charts.heatmap(view.angles, view.positions, view.pairs, title, colorscale="Twilight"), width="stretch"
    )
    turns = charts.line(
        view.turns,
        "pair",
        "turns",
        title=t("ch8.rp_turns", L=view.train_len),
        log_y=True,
        labels=col_labels("pair", "turns"),
    )
    charts.show(b2, turns, width="stretch")
    st.caption(t("ch8.rp_unseen", unseen=view.unseen, total=view.total, L=view.train_len))


def show_toy(toy: dict) -> None:
    """Speculative sampling on a toy distribution: the three distributions, acceptance and tokens per step."""
    series = {
        t("ch8.sp_target"): toy["target"],
        t("ch8.sp_draft"): toy["draft"],
        t("ch8.sp_spec"): toy["speculative_freq"],
    }
    tc1, tc2 = st.columns([3, 2])
    charts.show(tc1, dist_bars(toy["tokens"], series, t("ch8.sp_toy_chart")), width="stretch")
    tc2.metric(t("ch8.sp_accept"), f"{toy['acceptance_measured']:.3f}", help=t("ch8.sp_accept_help"))
    tc2.caption(t("ch8.sp_accept_pred", a=toy["acceptance_predicted"]))
    tc2.metric(t("ch8.sp_tps"), f"{toy['tokens_per_step_measured']:.2f}")
    tc2.caption(t("ch8.sp_tps_pred", v=toy["tokens_per_step_predicted"], k=toy["k"]))
    tc2.metric("χ² p-value", f"{toy['p_value']:.3f}", help=t("ch8.sp_chi_help"))


SPEC_COLUMNS = [
    "method",
    "k",
    "new_tokens",
    "seconds",
    "tokens_per_s",
    "target_calls",
    "tokens_per_call",
    "acceptance_rate",
    "speedup",
    "same_as_plain",
]


LOAD_COLUMNS = ("concurrency", "requests", "planned_requests", "completion_tokens", "wall_s", "tokens_per_s")


def show_load_test(rows: list[dict]) -> None:
    named_table(rows, drop=("error_examples",), order=LOAD_COLUMNS)
    lc1, lc2 = st.columns(2)
    labels = col_labels("concurrency", "tokens_per_s", "latency_s", "percentile")
    tps = charts.line(rows, "concurrency", "tokens_per_s", title=t("ch8.sv_tps_chart"), labels=labels)
    charts.show(lc1, tps, width="stretch")
    lat = [
        {"concurrency": r["concurrency"], "latency_s": r[q], "percentile": q[:-2]}
        for r in rows
        for q in ("p50_s", "p95_s")
        if r[q] is not None
    ]
    charts.show(
        lc2,
        charts.line(lat, "concurrency", "latency_s", "percentile", t("ch8.sv_lat_chart"), labels=labels),
        width="stretch",
    )
    errs = [e for r in rows for e in r.get("error_examples", [])]
    if errs:
        st.warning(t("ch8.sv_errors", errors="; ".join(errs[:3])))


def show_costs(cost, container) -> None:
    """The batching simulation's cost model (ms) and where it came from, with the measured samples if any."""
    ms = {"pa": 1000 * cost.prefill_base_s, "pb": 1000 * cost.prefill_per_token_s}
    ms |= {"da": 1000 * cost.decode_base_s, "db": 1000 * cost.decode_per_seq_s}
    container.caption(t("ch8.costs_line", **ms, source=cost.source))
    if cost.samples:
        with container.expander(t("ch8.cost_samples")):
            named_table([{**s, "kind": t(f"ch8.phase_{s['kind']}")} for s in cost.samples])


def show_speculative(rows: list[dict], produced_by: str) -> None:
    named_table([{**{k: r[k] for k in SPEC_COLUMNS}, "method": method_label(r["method"])} for r in rows])
    st.caption(t("ch8.sp_real_caption"))
    st.caption(produced_by)
    with st.expander(t("ch8.sp_texts")):
        for r in rows:
            st.markdown(f"**{method_label(r['method'])}** — {r['text']}")


def show_offline(rows: list[dict], prompts: list[str], produced_by: str) -> None:
    named_table(rows, drop=("answers",), order=("batch_size", "prompts", "generated_tokens", "seconds"))
    with st.expander(t("ch8.sv_answers")):
        for p, a in zip(prompts, rows[-1]["answers"], strict=False):
            st.markdown(f"**{p}** — {a}")
    st.caption(produced_by)
