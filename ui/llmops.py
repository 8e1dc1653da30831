"""Chapter 13's page helpers (pages/13_llmops.py): runs and their curves, the registry, the monitoring report and
drift, the text metrics, the multiple-choice benchmark, the human labels and kappa, the judge's biases and the RAG
metrics.

Every result is drawn from one plain dict, whichever made it: the shipped run (assets/precomputed/ch13_*.json, the
`to_json()` / `as_dict()` shapes of engine.llmops) or a run in this session, so a fresh page and a page after a click
look the same.
"""

from __future__ import annotations

import dataclasses
import math

import plotly.graph_objects as go
import streamlit as st

from engine.core import load_precomputed
from engine.core.errors import UserError
from engine.llmops import (
    LIKERT_LABELS,
    PAIRWISE_LABELS,
    PRICES,
    LabelStore,
    cohen_kappa,
    cost_usd,
    list_runs,
    load_pairs,
    metric_curves,
    model_versions,
    params_table,
    promotions,
    registered_models,
    tracked_toy_dpo,
)
from ui import charts
from ui.errors import translated
from ui.i18n import maybe, t
from ui.layout import friendly_errors, precomputed_note
from ui.state import param
from ui.tracking import outcome_note

SS = st.session_state
TEXT_METRICS = ("exact_match", "token_f1", "bleu", "chrf", "rouge1", "rouge2", "rougeL")
METRIC_NAMES = {
    "exact_match": "EM",
    "token_f1": "F1",
    "bleu": "BLEU",
    "chrf": "chrF",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
}
RAG_METRICS = ("context_precision", "context_recall", "faithfulness", "answer_relevance")
JUDGE_FIGURES = (
    "flip_rate",
    "reversal_rate",
    "first_slot_rate",
    "judge_longer_rate",
    "human_longer_rate",
    "length_bias",
    "agreement_with_humans",
    "agreement_first_order",
)


# -- small things --------------------------------------------------------------------------------------------------


def fmt(value, digits: int = 3) -> str:
    """A number as text; "—" for a missing one (None, NaN, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def pct(value) -> str:
    return "—" if not isinstance(value, int | float) or not math.isfinite(value) else f"{100 * value:.1f}%"


def yes_no(value) -> str:
    return "—" if value is None else ("✅" if value else "❌")


def code_text(code: str | None, values: dict | None = None) -> str:
    """An engine message code as the learner's sentence (the code itself when it has no translation)."""
    if not code:
        return "—"
    return translated(code, values or {}) or code


def shipped_note(name: str):
    """The shipped result `name`, labelled; None when there is none."""
    pre = load_precomputed(name)
    if pre is not None:
        precomputed_note(pre)
    return pre


def ci_text(value, ci, digits: int = 2) -> str:
    low, high = (ci or [None, None])[:2]
    if value is None:
        return "—"
    if low is None or high is None:
        return fmt(value, digits)
    return f"{fmt(value, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


# -- 13.1 experiments ------------------------------------------------------------------------------------------------
def read_runs(refresh: bool = False) -> list[dict]:
    """The store's runs (every chapter, newest first) as plain dicts, read once per session or on refresh."""
    if refresh or "ch13_runs" not in SS:
        SS.pop("ch13_runs", None)
        SS["ch13_runs"] = [r.as_dict() for r in list_runs(limit=200)]
    return SS["ch13_runs"]


def run_label(runs: list[dict], run_id: str) -> str:
    number = next((i + 1 for i, r in enumerate(runs) if r["run_id"] == run_id), 0)
    return t("ch13.run_label", n=number, id=run_id[:8])


def run_choice(runs: list[dict], run_id: str) -> str:
    run = next((r for r in runs if r["run_id"] == run_id), {})
    return f"{run_label(runs, run_id)} · {run.get('chapter', '')} · {run.get('name', '')}"


def default_picks(runs: list[dict], n: int = 3) -> list[str]:
    """The newest runs that have numbers (children before their parents: the parents of a comparison hold none)."""
    return [r["run_id"] for r in runs if r.get("metrics")][:n]


def metric_keys(runs: list[dict], ids: list[str]) -> list[str]:
    keys = sorted({k for r in runs if r["run_id"] in ids for k in r.get("metrics", {})})
    preferred = [k for k in ("loss", "reward_mean", "judge_mean", "kl") if k in keys]
    return preferred + [k for k in keys if k not in preferred]


def metric_label(key: str) -> str:
    """A logged metric's name as the learner reads it (a key without a translation stays as logged)."""
    return maybe(f"ch13.metric_{key}", key)


def status_label(status: str) -> str:
    return maybe(f"ch13.status_{str(status).lower()}", str(status))


def runs_table(runs: list[dict]) -> None:
    rows = []
    for i, r in enumerate(runs):
        data = r.get("datasets") or []
        shown = ", ".join(f"{d['name']}@{d['digest']} ({d['rows']})" for d in data) or "—"
        numbers = sorted((r.get("metrics") or {}).items())[:4]
        metrics = ", ".join(f"{k}={fmt(v, 4) if isinstance(v, int | float) else v}" for k, v in numbers) or "—"
        rows.append(
            [
                i + 1,
                r.get("chapter", "—"),
                r.get("name") or "—",
                status_label(r.get("status", "")),
                (r.get("started") or "—").replace("T", " ")[:19],
                fmt(r.get("seconds"), 1),
                shown,
                metrics,
                r["run_id"],
            ]
        )
    cols = [t("ch13.col_n"), t("ch13.col_chapter"), t("ch13.col_name"), t("ch13.col_status"), t("ch13.col_started")]
    cols += [t("ch13.col_seconds"), t("ch13.col_data"), t("ch13.col_metrics"), t("ch13.col_run_id")]
    charts.table(rows, cols, height=min(400, 40 + 35 * len(rows)))


def live_curves(ids: list[str], metric: str) -> list[dict]:
    return [dataclasses.asdict(c) for c in metric_curves(ids, [metric])]


def live_params(ids: list[str], metric: str) -> dict:
    table = params_table(ids, metric)
    return {"metric": table.metric, "varying": table.varying, "constant": table.constant, "rows": table.rows}


def curves_chart(runs: list[dict], curves: list[dict], metric: str) -> None:
    rows = [
        {"step": s, "value": v, "run": run_label(runs, c["run_id"])}
        for c in curves
        if c["key"] == metric
        for s, v in zip(c["steps"], c["values"], strict=True)
        if isinstance(v, int | float) and math.isfinite(v)
    ]
    if not rows:
        st.caption(t("ch13.no_curve", metric=metric_label(metric)))
        return
    name = metric_label(metric)
    labels = {"step": t("ch13.axis_step"), "value": name, "run": t("ch13.legend_run")}
    charts.show(st, charts.line(rows, "step", "value", "run", t("ch13.curves_title", metric=name), labels=labels))


def parallel_chart(runs: list[dict], params: dict) -> None:
    """Parallel coordinates: one axis per parameter that differs between the runs, the final metric last."""
    rows, metric, varying = params.get("rows") or [], params["metric"], params.get("varying") or []
    if len(rows) < 2:
        st.caption(t("ch13.parallel_needs_two"))
        return
    dims = []
    for key in [*varying, metric]:
        values = [r.get(key) for r in rows]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            dims.append({"label": key, "values": values})
        else:  # a categorical parameter: its values as ticks
            cats = sorted({str(v) for v in values})
            dims.append(
                {"label": key, "values": [cats.index(str(v)) for v in values], "tickvals": list(range(len(cats)))}
                | {"ticktext": cats}
            )
    colour = [r.get(metric) if isinstance(r.get(metric), int | float) else 0 for r in rows]
    fig = go.Figure(go.Parcoords(dimensions=dims, line={"color": colour, "colorscale": "Viridis", "showscale": True}))
    fig.update_layout(
        title=t("ch13.parallel_title", metric=metric_label(metric)), margin={"l": 60, "r": 60, "t": 70, "b": 30}
    )
    charts.show(st, fig)
    if not varying:
        st.caption(t("ch13.parallel_same"))
    if params.get("constant"):
        shown = ", ".join(f"{k}={v}" for k, v in sorted(params["constant"].items()))
        st.caption(t("ch13.parallel_constant", params=shown[:600]))


def show_runs_snapshot(data: dict) -> None:
    """The shipped runs: the table, their curves and the parameters against the final metric."""
    runs = data.get("runs") or []
    if runs:
        runs_table(runs)
    curves = data.get("curves") or []
    keys = list(dict.fromkeys(c["key"] for c in curves))
    if keys:
        curves_chart(runs, curves, keys[0])
    if data.get("params"):
        parallel_chart(runs, data["params"])


def tracked_demo(beta: float, steps: int, progress, on_row, should_stop) -> dict:
    """Chapter 4's toy DPO at `beta`, tracked (engine.llmops.demo): what the note and the registry need."""
    outcomes = []
    result = tracked_toy_dpo(beta, steps, progress, on_row, should_stop, on_done=outcomes.append)
    return {**outcomes[-1].as_dict(), "status": result.status}


# -- 13.2 the registry ---------------------------------------------------------------------------------------------
def read_registry(refresh: bool = False) -> list[dict]:
    if refresh or "ch13_models" not in SS:
        SS.pop("ch13_models", None)
        SS["ch13_models"] = registered_models()
    return SS["ch13_models"]


def model_view(name: str) -> dict:
    return {
        "name": name,
        "versions": [v.as_dict() for v in model_versions(name)],
        "promotions": [p.as_dict() for p in promotions(name)],
    }


def models_table(models: list[dict]) -> None:
    rows = [
        [m["name"], m["latest_version"], ", ".join(f"@{a} → v{v}" for a, v in sorted(m["aliases"].items())) or "—"]
        for m in models
    ]
    charts.table(rows, [t("ch13.col_model"), t("ch13.col_latest"), t("ch13.col_aliases")])


def show_model(view: dict) -> None:
    rows = []
    for v in view.get("versions") or []:
        data = v.get("dataset")
        rows.append(
            [
                f"v{v['version']}",
                ", ".join(f"@{a}" for a in v.get("aliases") or []) or "—",
                (v.get("run_id") or "—")[:12],
                f"{data['name']}@{data['digest']} ({data['rows']})" if data else "—",
                (v.get("created") or "—").replace("T", " ")[:19],
                v.get("description") or "—",
                v.get("source") or "—",
            ]
        )
    cols = [t("ch13.col_version"), t("ch13.col_aliases"), t("ch13.col_run_id"), t("ch13.col_data")]
    charts.table(rows, [*cols, t("ch13.col_created"), t("ch13.col_description"), t("ch13.col_source")])
    promos = view.get("promotions") or []
    if promos:
        st.markdown(f"**{t('ch13.promotions_title')}**")
        rows = [
            [
                (p.get("at") or "—").replace("T", " ")[:19],
                f"@{p['alias']}",
                f"v{p['version']}",
                "—" if p.get("replaced") is None else f"v{p['replaced']}",
                p["who"],
                p["why"],
            ]
            for p in promos
        ]
        cols = [t("ch13.col_when"), t("ch13.col_alias"), t("ch13.col_version"), t("ch13.col_replaced")]
        charts.table(rows, [*cols, t("ch13.col_who"), t("ch13.col_why")])
    else:
        st.caption(t("ch13.no_promotions"))


# -- 13.2 monitoring -----------------------------------------------------------------------------------------------
def show_monitor(rep: dict) -> None:
    """A MonitorReport.to_json(): the overall figures, the figures over time, money per model and tier."""
    if not rep.get("traces"):
        st.info(code_text("llmops.monitor.no_traces"), icon="📭")
        return
    c = st.columns(4)
    c[0].metric(t("ch13.m_traces"), f"{rep['traces']:,}")
    c[1].metric(t("ch13.m_p50"), f"{fmt(rep.get('latency_p50_s'), 2)} s")
    c[2].metric(t("ch13.m_p95"), f"{fmt(rep.get('latency_p95_s'), 2)} s")
    c[3].metric(t("ch13.m_first_token"), f"{fmt(rep.get('first_token_p50_s'), 2)} s")
    c = st.columns(4)
    c[0].metric(t("ch13.m_tokens"), f"{rep.get('input_tokens', 0):,} / {rep.get('output_tokens', 0):,}")
    c[1].metric(t("ch13.m_cost"), f"${rep.get('cost_usd', 0):.6f}")
    c[2].metric(t("ch13.m_errors"), pct(rep.get("error_rate")), help=t("ch13.m_errors_help", n=rep.get("errors", 0)))
    hits = t("ch13.m_cache_help", hits=rep.get("cache_hits", 0), lookups=rep.get("cache_lookups", 0))
    c[3].metric(t("ch13.m_cache"), pct(rep.get("cache_hit_rate")), help=hits)
    rails = rep.get("rail_triggers") or {}
    shown = ", ".join(f"{rail_label(k)} {v}" for k, v in rails.items()) or t("ch13.none")
    st.caption(t("ch13.rails_caption", rails=shown, blocked=rep.get("blocked", 0), bucket=bucket_label(rep["bucket"])))
    series_charts(rep.get("series") or [], rep["bucket"])
    st.markdown(f"**{t('ch13.costs_title')}**")
    cost_table(rep.get("costs") or [])
    if rep.get("projections"):
        with st.expander(t("ch13.projections_title")):
            cost_table(rep["projections"])
    for code in rep.get("notes") or []:
        if code != "llmops.monitor.no_traces":
            st.caption("ℹ️ " + code_text(code))


def rail_label(rail: str) -> str:
    return maybe(f"ch13.rail_{rail}", rail)


def bucket_label(bucket: str) -> str:
    return maybe(f"ch13.bucket_{bucket}", bucket)


def series_charts(series: list[dict], bucket: str) -> None:
    if not series:
        return
    when = [s["start"].replace("T", " ")[:16] for s in series]
    axis = t("ch13.axis_time")
    left, right = st.columns(2)
    fig = go.Figure()
    for key, name in (("latency_p50_s", "p50"), ("latency_p95_s", "p95")):
        fig.add_scatter(x=when, y=[s.get(key) for s in series], mode="lines+markers", name=name, connectgaps=False)
    fig.update_layout(title=t("ch13.latency_title"), xaxis_title=axis, yaxis_title=t("ch13.axis_seconds"))
    fig.update_layout(legend_title_text=t("ch13.legend_percentile"), margin={"t": 50})
    charts.show(left, fig)
    fig = go.Figure()
    fig.add_bar(x=when, y=[s.get("input_tokens", 0) for s in series], name=t("ch13.tokens_in"))
    fig.add_bar(x=when, y=[s.get("output_tokens", 0) for s in series], name=t("ch13.tokens_out"))
    fig.update_layout(title=t("ch13.tokens_title"), xaxis_title=axis, yaxis_title=t("ch13.axis_tokens"))
    fig.update_layout(barmode="stack", legend_title_text=t("ch13.legend_kind"), margin={"t": 50})
    charts.show(right, fig)
    left, right = st.columns(2)
    fig = go.Figure()
    for key, name in (("error_rate", t("ch13.error_rate")), ("cache_hit_rate", t("ch13.cache_rate"))):
        fig.add_scatter(x=when, y=[s.get(key) for s in series], mode="lines+markers", name=name)
    fig.update_layout(title=t("ch13.rates_title"), xaxis_title=axis, yaxis_title=t("ch13.axis_share"))
    fig.update_layout(yaxis_range=[0, 1.05], legend_title_text=t("ch13.legend_kind"), margin={"t": 50})
    charts.show(left, fig)
    fig = go.Figure()
    rails = sorted({r for s in series for r in (s.get("rail_triggers") or {})})
    for rail in rails:
        fig.add_bar(x=when, y=[(s.get("rail_triggers") or {}).get(rail, 0) for s in series], name=rail_label(rail))
    fig.add_scatter(x=when, y=[s.get("n", 0) for s in series], mode="lines", name=t("ch13.traces_per_bucket"))
    fig.update_layout(title=t("ch13.rails_title", bucket=bucket_label(bucket)), xaxis_title=axis)
    fig.update_layout(yaxis_title=t("ch13.axis_count"), barmode="stack", legend_title_text=t("ch13.legend_kind"))
    fig.update_layout(margin={"t": 50})
    charts.show(right, fig)


def cost_table(costs: list[dict]) -> None:
    rows = []
    for c in costs:
        price = c.get("price") or {}
        rows.append(
            [
                maybe(f"ch13.tier_{c['tier']}", c["tier"]),
                c["model"],
                c.get("calls", 0),
                f"{c.get('input_tokens', 0):,}",
                f"{c.get('output_tokens', 0):,}",
                "—" if c.get("cost_usd") is None else f"${c['cost_usd']:.6f}",
                f"${price['input_per_mtok']:.2f} / ${price['output_per_mtok']:.2f}" if price else "—",
                f"{price['source']} ({price['published']})" if price else "—",
                code_text(c.get("note")) if c.get("note") else "—",
            ]
        )
    cols = [t("ch13.col_tier"), t("ch13.col_model"), t("ch13.col_calls"), t("ch13.col_in"), t("ch13.col_out")]
    charts.table(rows, [*cols, t("ch13.col_cost"), t("ch13.col_price"), t("ch13.col_price_source"), t("ch13.col_note")])


def cost_table_per_day(requests: int, tokens_in: int, tokens_out: int) -> None:
    """Money per day and per month at each published price, and the local models' zero."""
    rows = [[t("ch13.tier_local"), t("ch13.local_models"), "$0", "$0", t("ch13.local_note")]]
    for model, price in PRICES.items():
        one = cost_usd(model, tokens_in, tokens_out) or 0.0
        day = one * requests
        rows.append(
            [
                t("ch13.tier_hosted"),
                model,
                f"${day:,.4f}",
                f"${30 * day:,.2f}",
                f"${price.input_per_mtok:.2f} / ${price.output_per_mtok:.2f} · {price.source} ({price.published})",
            ]
        )
    cols = [t("ch13.col_tier"), t("ch13.col_model"), t("ch13.col_per_day"), t("ch13.col_per_month")]
    charts.table(rows, [*cols, t("ch13.col_price_source")])


def show_drift(d: dict) -> None:
    c = st.columns(4)
    c[0].metric(t("ch13.m_centroid"), fmt(d.get("centroid_distance"), 4))
    c[1].metric(t("ch13.m_perm_p"), fmt(d.get("permutation_p"), 3), help=t("ch13.m_perm_help", n=d.get("permutations")))
    c[2].metric(t("ch13.m_topic_shift"), fmt(d.get("topic_shift"), 3))
    c[3].metric(t("ch13.m_windows"), f"{d.get('n_reference', 0)} / {d.get('n_recent', 0)}")
    topics = d.get("topics") or []
    if topics:
        bars = []
        for row in topics:
            name = t("ch13.topic_other") if row["topic"] == "other" else row["topic"]
            bars.append({"topic": name, "share": row["reference"], "window": t("ch13.window_reference")})
            bars.append({"topic": name, "share": row["recent"], "window": t("ch13.window_recent")})
        labels = {"topic": t("ch13.axis_topic"), "share": t("ch13.axis_share"), "window": t("ch13.legend_window")}
        fig = charts.grouped_bars(bars, "topic", "share", "window", t("ch13.topics_title"), False, labels)
        fig.update_traces(texttemplate="%{y:.2f}")
        charts.show(st, fig)
    st.caption(t("ch13.drift_caption", embedder=d.get("embedder", "—"), threshold=fmt(d.get("off_topic_threshold"), 2)))
    examples = d.get("examples") or {}
    if examples:
        with st.expander(t("ch13.drift_examples")):
            rows = [
                [t("ch13.topic_other") if topic == "other" else topic, q] for topic, qs in examples.items() for q in qs
            ]
            charts.table(rows, [t("ch13.col_topic"), t("ch13.col_question")])


# -- 13.3 text metrics ---------------------------------------------------------------------------------------------
def show_metrics(report) -> None:
    """One pair's MetricsReport: every metric on whitespace tokens and on morphemes, side by side."""
    pair = report.pairs[0]
    ws, mo = pair.scores["whitespace"], pair.scores["morpheme"]
    rows = [
        [METRIC_NAMES[m], fmt(getattr(ws, m), 1), fmt(getattr(mo, m), 1), f"{pair.gap(m):+.1f}"] for m in TEXT_METRICS
    ]
    cols = [t("ch13.col_metric"), t("ch13.tok_whitespace"), t("ch13.tok_morpheme"), t("ch13.col_gap")]
    left, right = st.columns([2, 3])
    with left:
        charts.table(rows, cols)
    bars = [
        {"metric": METRIC_NAMES[m], "score": getattr(s, m), "tok": t(f"ch13.tok_{tok}")}
        for m in TEXT_METRICS
        for tok, s in (("whitespace", ws), ("morpheme", mo))
    ]
    labels = {"metric": t("ch13.axis_metric"), "score": t("ch13.axis_score"), "tok": t("ch13.legend_tok")}
    fig = charts.grouped_bars(bars, "metric", "score", "tok", t("ch13.metrics_title"), False, labels)
    fig.update_traces(texttemplate="%{y:.0f}")
    fig.update_yaxes(range=[0, 105])
    charts.show(right, fig)
    for tok in ("whitespace", "morpheme"):
        pred, ref = pair.tokens[tok]
        st.markdown(f"**{t(f'ch13.tok_{tok}')}**")
        charts.table(
            [
                [t("ch13.prediction"), len(pred), " | ".join(pred) or "—"],
                [t("ch13.reference"), len(ref), " | ".join(ref)],
            ],
            [t("ch13.col_text"), t("ch13.col_tokens_n"), t("ch13.col_tokens")],
        )
    libs = ", ".join(f"{k} {v}" for k, v in report.libraries.items())
    st.caption(t("ch13.metrics_caption", rouge=fmt(pair.rouge_default_tokenizer, 1), libs=libs))


def metrics_corpus(report) -> None:
    rows = []
    for i, pair in enumerate(report.pairs):
        ws, mo = pair.scores["whitespace"], pair.scores["morpheme"]
        rows.append(
            [i + 1, pair.prediction, pair.reference]
            + [f"{getattr(ws, m):.0f} → {getattr(mo, m):.0f}" for m in ("token_f1", "bleu", "chrf", "rougeL")]
        )
    cols = [t("ch13.col_n"), t("ch13.prediction"), t("ch13.reference")]
    charts.table(rows, cols + [METRIC_NAMES[m] for m in ("token_f1", "bleu", "chrf", "rougeL")])
    st.caption(t("ch13.corpus_caption"))


# -- 13.3 the benchmark --------------------------------------------------------------------------------------------
def items_table(items) -> None:
    rows = [[it.item_id, it.article, it.context, " / ".join(it.choices), it.choices[it.label]] for it in items]
    cols = [t("ch13.col_item"), t("ch13.col_article"), t("ch13.col_context"), t("ch13.col_choices")]
    charts.table(rows, [*cols, t("ch13.col_answer")], height=300)


def show_mc(data: dict) -> None:
    """`engine.llmops.shipped_mc_data(report)`: the summary, ours vs the harness per item, one item's numbers."""
    s = data.get("summary") or {}
    c = st.columns(4)
    c[0].metric(t("ch13.m_items"), s.get("n_items", 0))
    c[1].metric("acc", fmt(s.get("acc")), help=t("ch13.acc_help"))
    c[2].metric("acc_norm", fmt(s.get("acc_norm")), help=t("ch13.acc_norm_help"))
    c[3].metric(t("ch13.m_chance"), fmt(s.get("chance")))
    if s.get("n_equal") is not None:
        c = st.columns(4)
        c[0].metric(t("ch13.m_equal"), f"{s['n_equal']} / {s['n_items']}")
        c[1].metric(t("ch13.m_lm_eval_acc"), fmt(s.get("lm_eval_acc")))
        c[2].metric(t("ch13.m_lm_eval_acc_norm"), fmt(s.get("lm_eval_acc_norm")))
        c[3].metric(t("ch13.m_max_ll_diff"), f"{s['max_ll_diff']:.2e}" if s.get("max_ll_diff") is not None else "—")
    bars = []
    for metric in ("acc", "acc_norm", "acc_bytes"):
        bars.append({"metric": metric, "value": s.get(metric), "who": t("ch13.ours")})
        if s.get(f"lm_eval_{metric}") is not None:
            bars.append({"metric": metric, "value": s[f"lm_eval_{metric}"], "who": t("ch13.harness")})
    bars = [b for b in bars if isinstance(b["value"], int | float)]
    if bars:
        labels = {"metric": t("ch13.axis_metric"), "value": t("ch13.axis_accuracy"), "who": t("ch13.legend_scorer")}
        fig = charts.grouped_bars(bars, "metric", "value", "who", t("ch13.mc_title"), False)
        fig.update_layout(xaxis_title=labels["metric"], yaxis_title=labels["value"], legend_title_text=labels["who"])
        fig.update_traces(texttemplate="%{y:.2f}")
        fig.add_hline(y=s.get("chance") or 0.25, line_dash="dot", annotation_text=t("ch13.m_chance"))
        fig.update_yaxes(range=[0, 1])
        charts.show(st, fig)
    st.caption(t("ch13.mc_model", model=s.get("model", "—"), s=fmt(s.get("seconds"), 0)))
    if s.get("harness_version"):
        st.caption(t("ch13.harness_caption", version=s["harness_version"], s=fmt(s.get("harness_seconds"), 0)))
    items = data.get("items") or []
    rows = [
        [
            it["id"],
            it.get("article", "—"),
            it["choices"][it["label"]],
            it["choices"][it["pred"]],
            yes_no(it["acc"] == 1),
            yes_no(it["acc_norm"] == 1),
            yes_no(None if it.get("lm_eval_acc") is None else it["lm_eval_acc"] == 1),
            yes_no(None if it.get("lm_eval_acc_norm") is None else it["lm_eval_acc_norm"] == 1),
            yes_no(it.get("equal")),
        ]
        for it in items
    ]
    cols = [t("ch13.col_item"), t("ch13.col_article"), t("ch13.col_answer"), t("ch13.col_pred")]
    cols += [t("ch13.col_acc"), t("ch13.col_acc_norm"), t("ch13.col_lm_acc"), t("ch13.col_lm_acc_norm")]
    cols += [t("ch13.col_equal")]
    charts.table(rows, cols, height=300)


def telling_item(items: list[dict]) -> str:
    """The id of an item where acc is wrong and acc_norm right (else any disagreement, else the first)."""
    for wanted in (lambda i: i["acc"] == 0 and i["acc_norm"] == 1, lambda i: i["pred"] != i["pred_norm"]):
        found = [i["id"] for i in items if wanted(i)]
        if found:
            return found[0]
    return items[0]["id"]


def mc_item(item: dict) -> None:
    """One item: each choice's log-likelihood, its length in characters, bytes and tokens, and the two argmaxes."""
    st.markdown(t("ch13.mc_context", context=item["context"]))
    theirs = item.get("lm_eval_loglikelihoods") or [None] * len(item["choices"])
    rows = [
        [
            ("✔ " if i == item["label"] else "") + choice,
            fmt(item["loglikelihoods"][i], 3),
            fmt(theirs[i], 3),
            item["char_lengths"][i],
            item["byte_lengths"][i],
            item["token_counts"][i],
            fmt(item["loglikelihoods"][i] / max(1, item["char_lengths"][i]), 3),
            " + ".join(n for n, p in (("acc", item["pred"]), ("acc_norm", item["pred_norm"])) if p == i) or "—",
        ]
        for i, choice in enumerate(item["choices"])
    ]
    cols = [t("ch13.col_choice"), t("ch13.col_ll"), t("ch13.col_ll_harness"), t("ch13.col_chars")]
    charts.table(
        rows, [*cols, t("ch13.col_bytes"), t("ch13.col_tokens_n"), t("ch13.col_ll_char"), t("ch13.col_picked")]
    )


# -- 13.3 human labels -----------------------------------------------------------------------------------------------
def store_label(learner: str, item_id: str, kind: str, label: str) -> None:
    """A button's callback: one label into the store (a refusal is kept for the page to show)."""
    SS.pop("ch13_label_error", None)
    store = None
    try:
        store = LabelStore()
        store.add_learner(learner)
        store.label(learner, item_id, kind, label)
    except UserError as exc:
        SS["ch13_label_error"] = (exc.code, exc.fmt)
    finally:
        if store is not None:
            store.close()


def labelling(learner: str, kind: str) -> None:
    """The next item the learner has not labelled, with its buttons; progress above it."""
    from engine.llmops.human_eval import check_learner

    learner = check_learner(learner)  # a refused id creates no label store
    store = LabelStore()
    try:
        learner = store.add_learner(learner)
        left = store.unlabelled(learner, kind)
        done = store.progress(learner)
    finally:
        store.close()
    st.progress(done[f"{kind}_done"] / max(1, done[f"{kind}_total"]), text=t("ch13.label_progress", **done))
    if not left:
        st.success(t("ch13.label_all_done"))
        return
    pairs = {p.pair_id: p for p in load_pairs()}
    item_id = left[0]
    pair = pairs[item_id.split("/")[0]]
    with st.container(border=True):
        st.markdown(t("ch13.label_question", id=item_id, question=pair.question))
        if kind == "pairwise":
            a, b = st.columns(2)
            a.markdown(f"**A** — {pair.answer_a}")
            b.markdown(f"**B** — {pair.answer_b}")
            cols = st.columns(3)
            for col, label in zip(cols, PAIRWISE_LABELS, strict=True):
                col.button(
                    t(f"ch13.label_{label.lower()}"),
                    key=f"hu_btn_{label}",
                    on_click=store_label,
                    args=(learner, item_id, kind, label),
                    width="stretch",
                )
        else:
            side = item_id.split("/")[1]
            st.markdown(pair.answer_a if side == "A" else pair.answer_b)
            cols = st.columns(5)
            for col, label in zip(cols, LIKERT_LABELS, strict=True):
                col.button(
                    t(f"ch13.likert_{label}"),
                    key=f"hu_btn_{label}",
                    on_click=store_label,
                    args=(learner, item_id, kind, label),
                    width="stretch",
                )
    error = SS.get("ch13_label_error")
    if error:
        st.warning(code_text(*error), icon="⚠️")


def labels_exist() -> bool:
    """Whether any learner has labelled on this machine (reading must not create the label store)."""
    from engine.llmops.human_eval import default_path

    return default_path().is_file()


def agreement_view(kind: str) -> None:
    """The agreement of the labels on this machine, or what to do first when there are none."""
    from engine.llmops import agreement

    if not labels_exist():
        st.info(code_text("llmops.labels.none_yet"), icon="📝")
        return
    show_agreement(agreement(kind=kind))


def show_agreement(report) -> None:
    """An AgreementReport: each learner against the reference, Cohen's kappa per two raters, Fleiss' kappa."""
    st.caption(t("ch13.agreement_caption", learners=len(report.learners), labels=report.labels))
    for code in report.notes:
        st.info(code_text(code), icon="📝")
    if report.vs_reference:
        rows = [
            [r.learner, r.n_items, fmt(r.accuracy, 2), fmt(r.kappa.value, 3), reason(r.kappa)]
            for r in report.vs_reference
        ]
        cols = [t("ch13.col_learner"), t("ch13.col_items"), t("ch13.col_accuracy"), "κ", t("ch13.col_why_none")]
        st.markdown(f"**{t('ch13.vs_reference_title')}**")
        charts.table(rows, cols)
    if report.pairs:
        rows = [
            [
                p.rater_a,
                p.rater_b,
                p.kappa.n_items,
                fmt(p.kappa.observed, 2),
                fmt(p.kappa.expected, 2),
                fmt(p.kappa.value, 3),
                reason(p.kappa),
            ]
            for p in report.pairs
        ]
        cols = [t("ch13.col_rater_a"), t("ch13.col_rater_b"), t("ch13.col_items"), "p_o", "p_e", "κ"]
        st.markdown(f"**{t('ch13.cohen_title')}**")
        charts.table(rows, [*cols, t("ch13.col_why_none")])
    f = report.fleiss
    if f.value is not None:
        st.metric(t("ch13.fleiss", raters=f.n_raters, items=f.n_items), fmt(f.value, 3))
    elif len(report.learners) >= 2:
        st.caption(t("ch13.fleiss_none", reason=reason(f)))


def reason(k) -> str:
    """Why a kappa has no value (its code's sentence), "—" when it has one."""
    return code_text(k.code, k.fmt) if getattr(k, "code", None) else "—"


def show_kappa(k) -> None:
    c = st.columns(3)
    c[0].metric(t("ch13.p_o"), fmt(k.observed, 3))
    c[1].metric(t("ch13.p_e"), fmt(k.expected, 3))
    c[2].metric("κ", fmt(k.value, 3))
    if k.value is None:
        st.warning(reason(k), icon="⚠️")
    else:
        st.caption(t("ch13.kappa_caption", n=k.n_items, po=fmt(k.observed, 3), pe=fmt(k.expected, 3)))


def judge_vs_learners(data: dict) -> None:
    """Cohen's kappa of the shipped judge's pair verdicts (an answer wins only if it wins in both orders) against
    each learner's pairwise labels, on the pairs both have."""
    by_pair: dict[str, dict[str, str | None]] = {}
    for v in data.get("verdicts") or []:
        by_pair.setdefault(v["pair_id"], {})[v["order"]] = v.get("preferred") if v.get("slot") else None
    judged = {}
    for pid, orders in by_pair.items():
        a, b = orders.get("AB"), orders.get("BA")
        if a is not None and b is not None:
            judged[pid] = a if a == b and a != "tie" else "tie"
    rows = []
    if judged and labels_exist():
        store = LabelStore()
        try:
            rows = store.labels(kind="pairwise")
        finally:
            store.close()
    mine: dict[str, dict[str, str]] = {}
    for r in rows:
        mine.setdefault(r.learner, {})[r.item_id] = r.label
    table = []
    for learner, labels in sorted(mine.items()):
        shared = sorted(set(labels) & set(judged))
        k = cohen_kappa([labels[i] for i in shared], [judged[i] for i in shared], PAIRWISE_LABELS)
        table.append([learner, len(shared), fmt(k.observed, 2), fmt(k.value, 3), reason(k)])
    if table:
        cols = [t("ch13.col_learner"), t("ch13.col_items"), t("ch13.col_accuracy"), "κ", t("ch13.col_why_none")]
        charts.table(table, cols)
    else:
        st.caption(t("ch13.judge_vs_me_none"))


# -- 13.3 the judge ------------------------------------------------------------------------------------------------
def figure_label(name: str) -> str:
    return t(f"ch13.fig_{name}")


def show_judge(data: dict) -> None:
    """A BiasReport.to_json(with_verdicts=True): the figures with their 95 % intervals, length buckets, designs."""
    c = st.columns(4)
    c[0].metric(t("ch13.m_pairs"), data.get("pairs", 0))
    for col, name in zip(c[1:], ("flip_rate", "length_bias", "agreement_with_humans"), strict=True):
        col.metric(figure_label(name), fmt(data.get(name), 2), help=ci_text(data.get(name), data.get(f"{name}_ci")))
    names = [n for n in JUDGE_FIGURES if n in data]
    fig = go.Figure()
    values = [data.get(n) for n in names]
    lows = [(data.get(f"{n}_ci") or [None, None])[0] for n in names]
    highs = [(data.get(f"{n}_ci") or [None, None])[1] for n in names]
    fig.add_scatter(
        x=values,
        y=[figure_label(n) for n in names],
        mode="markers",
        name=t("ch13.ci_point"),
        error_x={
            "type": "data",
            "symmetric": False,
            "array": [h - v if h is not None and v is not None else 0 for v, h in zip(values, highs, strict=True)],
            "arrayminus": [
                v - lo if lo is not None and v is not None else 0 for v, lo in zip(values, lows, strict=True)
            ],
        },
        marker={"size": 11},
    )
    fig.add_vline(x=0.5, line_dash="dot", annotation_text=t("ch13.half"))
    fig.add_vline(x=0.0, line_color="grey")
    fig.update_layout(title=t("ch13.judge_ci_title"), xaxis_title=t("ch13.axis_rate"), showlegend=False)
    fig.update_layout(yaxis={"autorange": "reversed"}, height=80 + 45 * len(names), margin={"t": 50})
    charts.show(st, fig)
    rows = [
        [
            figure_label(n),
            fmt(data.get(n), 3),
            ci_text(data.get(n), data.get(f"{n}_ci"), 3),
            data.get(f"{n}_n", "—"),
            maybe(f"ch13.method_{data.get(f'{n}_method')}", str(data.get(f"{n}_method", "—"))),
        ]
        for n in names
    ]
    cols = [t("ch13.col_figure"), t("ch13.col_value"), t("ch13.col_ci"), t("ch13.col_units"), t("ch13.col_method")]
    charts.table(rows, cols)
    length_buckets(data.get("length_buckets") or [])
    by_design(data.get("by_design") or {})
    codes = ", ".join(f"{code_text(c)} ×{n}" for c, n in (data.get("invalid_codes") or {}).items()) or t("ch13.none")
    st.caption(
        t(
            "ch13.judge_caption",
            model=data.get("model") or "—",
            role=data.get("role") or "—",
            invalid=data.get("invalid", 0),
            unanswered=data.get("unanswered", 0),
            total=data.get("verdicts_total", 0),
            s=fmt(data.get("seconds"), 0),
            codes=codes,
        )
    )
    verdicts = data.get("verdicts") or []
    if verdicts:
        with st.expander(t("ch13.verdicts_title", n=len(verdicts))):
            rows = [
                [
                    v["pair_id"],
                    v["order"],
                    v.get("slot") or "—",
                    v.get("preferred") or "—",
                    v.get("reason") or "—",
                    code_text(v.get("code")) if v.get("code") else "—",
                    fmt(v.get("seconds"), 1),
                ]
                for v in verdicts
            ]
            cols = [t("ch13.col_pair"), t("ch13.col_order"), t("ch13.col_slot"), t("ch13.col_preferred")]
            charts.table(rows, [*cols, t("ch13.col_reason"), t("ch13.col_code"), t("ch13.col_seconds")])


def bucket_name(b: dict) -> str:
    high = b.get("high")
    return (
        t("ch13.bucket_open", low=round(100 * b["low"])) if high is None else f"{100 * b['low']:.0f}–{100 * high:.0f}%"
    )


def length_buckets(buckets: list[dict]) -> None:
    if not buckets:
        return
    fig = go.Figure()
    for who in ("judge", "human"):
        est = [b[who] for b in buckets]
        fig.add_bar(
            x=[bucket_name(b) for b in buckets],
            y=[e["value"] if e["value"] is not None else 0 for e in est],
            name=t(f"ch13.longer_{who}"),
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [(e["ci"][1] - e["value"]) if e["value"] is not None else 0 for e in est],
                "arrayminus": [(e["value"] - e["ci"][0]) if e["value"] is not None else 0 for e in est],
            },
            text=[f"n={e['n']}" for e in est],
        )
    fig.update_layout(title=t("ch13.buckets_title"), xaxis_title=t("ch13.axis_longer_by"))
    fig.update_layout(yaxis_title=t("ch13.axis_prefers_longer"), yaxis_range=[0, 1.05], barmode="group")
    fig.update_layout(legend_title_text=t("ch13.legend_who"), margin={"t": 50})
    charts.show(st, fig)


def by_design(designs: dict) -> None:
    if not designs:
        return
    rows = []
    for design, r in designs.items():
        rows.append(
            [maybe(f"ch13.design_{design}", design), r["pairs"]]
            + [ci_text(r[n]["value"], r[n]["ci"]) for n in ("flip_rate", "first_slot_rate", "judge_longer_rate")]
            + [ci_text(r[n]["value"], r[n]["ci"]) for n in ("human_longer_rate", "agreement_with_humans")]
        )
    cols = [t("ch13.col_design"), t("ch13.col_pairs"), figure_label("flip_rate"), figure_label("first_slot_rate")]
    cols += [
        figure_label("judge_longer_rate"),
        figure_label("human_longer_rate"),
        figure_label("agreement_with_humans"),
    ]
    st.markdown(f"**{t('ch13.by_design_title')}**")
    charts.table(rows, cols)


def pairs_table(pairs) -> None:
    rows = [
        [p.pair_id, maybe(f"ch13.design_{p.design}", p.design), p.question, len(p.answer_a), len(p.answer_b), p.label]
        for p in pairs
    ]
    cols = [t("ch13.col_pair"), t("ch13.col_design"), t("ch13.col_question"), t("ch13.col_chars_a")]
    charts.table(rows, [*cols, t("ch13.col_chars_b"), t("ch13.col_reference")], height=260)


def show_two_orders(pair, verdicts: list) -> None:
    """One pair asked both ways: what the judge said each time and whether it kept its choice."""
    rows = [
        [v.order, v.slot or "—", v.preferred or "—", v.reason or "—", code_text(v.code) if v.code else "—"]
        for v in verdicts
    ]
    cols = [t("ch13.col_order"), t("ch13.col_slot"), t("ch13.col_preferred"), t("ch13.col_reason")]
    charts.table(rows, [*cols, t("ch13.col_code")])
    first, second = verdicts
    if first.valid and second.valid:
        same = first.preferred == second.preferred
        (st.success if same else st.warning)(t("ch13.kept" if same else "ch13.flipped", label=pair.label))
    else:
        st.warning(t("ch13.two_orders_invalid"))


# -- 13.3 RAG ----------------------------------------------------------------------------------------------------------
def config_label(name: str) -> str:
    return maybe(f"ch13.config_{name}", name)


def show_rag(data: dict) -> None:
    """`rag-eval --save-precomputed`'s data: one ConfigScore.to_json(with_samples=True) per configuration."""
    configs = data.get("configs") or []
    if not configs:
        return
    rows = []
    for c in configs:
        ci = c.get("ci") or {}
        rows.append(
            [config_label(c["config"]), c["n"]]
            + [ci_text(c.get(m), ci.get(m)) for m in RAG_METRICS]
            + [fmt(c.get("phrase_found"), 2), c.get("invalid", 0), fmt(c.get("seconds"), 0)]
        )
    cols = [t("ch13.col_config"), t("ch13.col_questions")] + [t(f"ch13.rag_{m}") for m in RAG_METRICS]
    charts.table(rows, [*cols, t("ch13.col_phrase"), t("ch13.col_invalid"), t("ch13.col_seconds")])
    fig = go.Figure()
    for c in configs:
        ci = c.get("ci") or {}
        values = [c.get(m) for m in RAG_METRICS]
        fig.add_bar(
            x=[t(f"ch13.rag_{m}") for m in RAG_METRICS],
            y=[v if v is not None else 0 for v in values],
            name=config_label(c["config"]),
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [_up(v, ci.get(m)) for v, m in zip(values, RAG_METRICS, strict=True)],
                "arrayminus": [_down(v, ci.get(m)) for v, m in zip(values, RAG_METRICS, strict=True)],
            },
        )
    fig.update_layout(title=t("ch13.rag_title"), xaxis_title=t("ch13.axis_metric"), yaxis_title=t("ch13.axis_score01"))
    fig.update_layout(barmode="group", yaxis_range=[0, 1.05], legend_title_text=t("ch13.legend_config"))
    fig.update_layout(margin={"t": 50})
    charts.show(st, fig)
    first = configs[0]
    st.caption(
        t("ch13.rag_caption", model=first.get("model") or "—", judge=first.get("judge_model") or "—", n=first["n"])
    )
    samples = [(c["config"], s) for c in configs for s in c.get("samples") or []]
    if samples:
        with st.expander(t("ch13.rag_samples", n=len(samples))):
            rows = [
                [config_label(name), s["question"], ", ".join(s.get("passages") or []) or "—"]
                + [", ".join(s.get("gold") or []) or "—"]
                + [fmt(s.get(m), 2) for m in RAG_METRICS]
                + [s.get("answer") or "—"]
                for name, s in samples
            ]
            cols = [t("ch13.col_config"), t("ch13.col_question"), t("ch13.col_passages"), t("ch13.col_gold")]
            cols += [t(f"ch13.rag_{m}") for m in RAG_METRICS] + [t("ch13.col_answer_text")]
            charts.table(rows, cols, height=320)


def _up(value, ci) -> float:
    return (ci[1] - value) if value is not None and ci and ci[1] is not None else 0.0


def _down(value, ci) -> float:
    return (value - ci[0]) if value is not None and ci and ci[0] is not None else 0.0


def precision_steps(relevant: list[bool], n_gold: int) -> None:
    """The average precision written out: precision@k at each relevant rank; recall beside it."""
    rows = [
        [
            k + 1,
            "✅" if rel else "—",
            f"{sum(relevant[: k + 1])}/{k + 1} = {sum(relevant[: k + 1]) / (k + 1):.2f}",
            t("ch13.counted") if rel else t("ch13.not_counted"),
        ]
        for k, rel in enumerate(relevant)
    ]
    charts.table(rows, [t("ch13.col_rank"), t("ch13.col_relevant"), t("ch13.col_precision_at_k"), t("ch13.col_in_ap")])
    found = sum(relevant)
    if found > n_gold:
        st.caption(t("ch13.cp_gold_raised", found=found))
    st.caption(t("ch13.cp_caption", found=found, gold=max(n_gold, found)))


# -- glue the page uses ---------------------------------------------------------------------------------------------
def compare(ids: list[str], metric: str) -> tuple[list[dict], dict]:
    """Curves and the parameters table of the picked runs, read once per (runs, metric) in a session."""
    key = (tuple(ids), metric, len(SS.get("ch13_runs") or []))
    if SS.get("ch13_compare_key") != key:
        SS["ch13_compare"] = (live_curves(ids, metric), live_params(ids, metric))
        SS["ch13_compare_key"] = key
    return SS["ch13_compare"]


def tracked_note(done: dict | None) -> None:
    """What the last tracked run left: its id and store, or why tracking was off (the training ran either way)."""
    outcome_note(done, "ch13.tracked")


def has_registry(name: str) -> bool:
    pre = load_precomputed(name)
    return bool(pre and isinstance(pre.data, dict) and pre.data.get("registry"))


def shipped_traffic(data: dict) -> None:
    failed = len(data.get("failed") or [])
    st.caption(
        t(
            "ch13.monitor_shipped",
            n=len(data.get("questions") or []),
            model=data.get("model") or "—",
            s=fmt(data.get("wall_s"), 0),
            failed=failed,
        )
    )


def embedder_label(name: str) -> str:
    return maybe(f"ch13.embedder_{name.replace('-', '_')}", name)


def drift_view(report) -> dict:
    return {**report.to_json(), "examples": report.examples}


def example_label(i: int) -> str:
    return maybe(f"ch13.example_{i}", str(i + 1))


def example_report(progress):
    """The built-in example pairs scored once per process (the first call also loads Kiwi)."""
    from engine.llmops import METRIC_EXAMPLE_PAIRS, evaluate_pairs

    progress(0.1, t("ch13.loading_kiwi"))
    return evaluate_pairs([p for p, _ in METRIC_EXAMPLE_PAIRS], [r for _, r in METRIC_EXAMPLE_PAIRS])


def split_labels(text: str) -> list[str]:
    """ "A, B, 무승부" -> ["A", "B", "무승부"] (commas or spaces)."""
    return [x for x in text.replace(",", " ").split() if x]


def pair_choice(pair) -> str:
    return f"{pair.pair_id} · {maybe(f'ch13.design_{pair.design}', pair.design)} · {pair.question[:40]}"


def role_label(role: str) -> str:
    return maybe(f"ch13.role_{role.replace('-', '_')}", role)


def show_pair(pair) -> None:
    st.markdown(t("ch13.pair_question", question=pair.question))
    a, b = st.columns(2)
    a.markdown(f"**A** ({len(pair.answer_a)}) — {pair.answer_a}")
    b.markdown(f"**B** ({len(pair.answer_b)}) — {pair.answer_b}")
    st.caption(t("ch13.pair_reference", label=pair.label, design=maybe(f"ch13.design_{pair.design}", pair.design)))


def rank_label(k: int) -> str:
    return t("ch13.rank", k=k)


def toy_ids(relevant: list[bool], n_gold: int) -> tuple[list[str], list[str]]:
    """Passage ids for the calculator: the relevant ranks are gold articles; the rest of the gold was not found."""
    retrieved = [f"제{k + 1}조" if rel else f"다른 조문 {k + 1}" for k, rel in enumerate(relevant)]
    gold = [r for r, rel in zip(retrieved, relevant, strict=True) if rel]
    gold += [f"놓친 조문 {i + 1}" for i in range(max(0, n_gold - len(gold)))]
    return retrieved, gold


def spread(pairs: list, n: int) -> list:
    """`n` pairs spread evenly over the file (it is grouped by design), so a short run sees every kind of pair."""
    return [pairs[(i * len(pairs)) // n] for i in range(min(n, len(pairs)))]


def rag_view(scores, n: int) -> dict:
    return {"configs": [s.to_json(with_samples=True) for s in scores], "questions": n}


# -- control groups the page calls (each control seeded from the URL with param() first) --------------------------
def compare_runs(runs: list[dict]) -> None:
    """Pick runs and a metric; overlay their curves and draw parameters against the final value."""
    ids = [r["run_id"] for r in runs]
    # run ids belong to this machine's store: the picks stay out of the URL
    known = SS.get("ch13_pick_ids", [])
    fresh = [i for i in default_picks(runs) if i not in known] if known else []  # runs made since: picked too
    SS["ex_pick"] = fresh + [i for i in SS.get("ex_pick", default_picks(runs)) if i in ids and i not in fresh]
    SS["ch13_pick_ids"] = ids
    st.multiselect(t("ch13.pick_runs"), ids, key="ex_pick", format_func=lambda i: run_choice(runs, i))
    keys = metric_keys(runs, SS["ex_pick"])
    if not keys:
        st.caption(t("ch13.pick_runs_first"))
        return
    if SS.get("ex_metric") not in keys:
        SS["ex_metric"] = keys[0]
    st.selectbox(t("ch13.metric"), keys, key="ex_metric", format_func=lambda k: f"{metric_label(k)} · {k}")
    with friendly_errors():
        curves, params = compare(SS["ex_pick"], SS["ex_metric"])
        curves_chart(runs, curves, SS["ex_metric"])
        parallel_chart(runs, params)


def promote_form() -> None:
    """Point an alias at a version (who and why are required), and load what an alias names now."""
    from engine.llmops import ALIASES, model_path, promote

    st.markdown(f"**{t('ch13.promote_title')}**")
    param("rg_version", 1, int)
    param("rg_alias", "champion", str, choices=ALIASES)
    param("rg_who", "", str)
    param("rg_why", "", str)
    SS["rg_version"] = min(max(SS["rg_version"], 1), 10_000)
    c1, c2, c3 = st.columns(3)
    c1.number_input(t("ch13.version"), min_value=1, max_value=10_000, step=1, key="rg_version")
    c2.radio(t("ch13.alias"), list(ALIASES), key="rg_alias", horizontal=True)
    c3.text_input(t("ch13.who"), key="rg_who")
    st.text_area(t("ch13.why"), key="rg_why", height=70, help=t("ch13.why_help"))
    c1, c2 = st.columns(2)
    if c1.button(t("ch13.promote"), key="rg_promote"):
        with friendly_errors():
            done = promote(SS["rg_name"], SS["rg_version"], SS["rg_alias"], SS["rg_who"], SS["rg_why"])
            SS.pop("ch13_models", None)
            st.success(t("ch13.promoted", uri=f"models:/{done.name}@{done.alias}", version=done.version))
    uri = f"models:/{SS['rg_name']}@{SS['rg_alias']}"
    if c2.button(t("ch13.load_alias", uri=uri), key="rg_load"):
        with friendly_errors(), st.spinner(t("ch13.loading_alias")):
            st.success(t("ch13.loaded_alias", uri=uri, path=str(model_path(uri))))


def cost_calculator() -> None:
    """Requests a day and tokens per request -> money per day and month at each published price."""
    c = st.columns(3)
    for col, (key, default, hi) in zip(
        c, (("mo_req", 1000, 10**7), ("mo_in", 1500, 10**6), ("mo_out", 300, 10**6)), strict=True
    ):
        param(key, default, int)
        SS[key] = min(max(SS[key], 0), hi)
        col.number_input(t(f"ch13.{key}"), min_value=0, max_value=hi, step=100, key=key)
    cost_table_per_day(SS["mo_req"], SS["mo_in"], SS["mo_out"])


def kappa_playground() -> None:
    """Two raters' labels typed by hand -> Cohen's kappa, observed and chance agreement."""
    param("kp_a", t("ch13.kappa_default_a"), str)
    param("kp_b", t("ch13.kappa_default_b"), str)
    param("kp_w", "none", str, choices=("none", "linear", "quadratic"))
    c1, c2 = st.columns(2)
    c1.text_input(t("ch13.rater_a"), key="kp_a", help=t("ch13.rater_help"))
    c2.text_input(t("ch13.rater_b"), key="kp_b", help=t("ch13.rater_help"))
    weights = ["none", "linear", "quadratic"]
    st.radio(t("ch13.weights"), weights, key="kp_w", horizontal=True, format_func=lambda w: t(f"ch13.weights_{w}"))
    with friendly_errors():
        a, b = split_labels(SS["kp_a"]), split_labels(SS["kp_b"])
        categories = None
        if SS["kp_w"] != "none":  # an ordered scale: the labels' order is the scale's (numbers sort as numbers)
            categories = sorted(set(a) | set(b), key=lambda x: (not x.isdigit(), int(x) if x.isdigit() else 0, x))
        show_kappa(cohen_kappa(a, b, categories, None if SS["kp_w"] == "none" else SS["kp_w"]))


def two_orders(pairs) -> str:
    """One pair, asked both ways round; returns the chosen judge role (the bias run below uses it too)."""
    from engine.llmops import JUDGE_ROLES, ask_judge

    by_id = {p.pair_id: p for p in pairs}
    param("jd_pair", pairs[0].pair_id, str, choices=tuple(by_id))
    param("jd_role", "instruct", str, choices=JUDGE_ROLES)
    c1, c2 = st.columns(2)
    c1.selectbox(t("ch13.pick_pair"), list(by_id), key="jd_pair", format_func=lambda i: pair_choice(by_id[i]))
    c2.selectbox(t("ch13.judge_role"), list(JUDGE_ROLES), key="jd_role", format_func=role_label)
    # After a language switch Streamlit can hand back the option's *label* (which changed language) instead of the
    # option (found by the monkey test): map a label back to its pair id ("p001 · ..."), else the first pair.
    picked = str(SS["jd_pair"])
    pair = by_id.get(picked) or by_id.get(picked.split(" · ")[0]) or pairs[0]
    role = (
        SS["jd_role"]
        if SS["jd_role"] in JUDGE_ROLES
        else next((r for r in JUDGE_ROLES if role_label(r) == SS["jd_role"]), JUDGE_ROLES[0])
    )
    show_pair(pair)
    if st.button(t("ch13.ask_both"), key="jd_ask"):
        with friendly_errors(), st.spinner(t("ch13.judging")):
            SS["ch13_two"] = (pair.pair_id, [ask_judge(pair, "AB", role), ask_judge(pair, "BA", role)])
    two = SS.get("ch13_two")
    if two and two[0] == pair.pair_id:
        show_two_orders(pair, two[1])
    return role


def precision_calculator() -> None:
    """Which of five ranked passages are relevant -> context precision (rank-aware) and context recall."""
    from engine.llmops import context_precision, context_recall

    SS.setdefault("rc_rel", [1, 3])
    param("rc_gold", 2, int)
    SS["rc_gold"] = min(max(SS["rc_gold"], 1), 5)
    c1, c2 = st.columns([3, 1])
    c1.pills(t("ch13.cp_relevant"), [1, 2, 3, 4, 5], key="rc_rel", selection_mode="multi", format_func=rank_label)
    c2.number_input(t("ch13.cp_gold"), min_value=1, max_value=5, step=1, key="rc_gold", help=t("ch13.cp_gold_help"))
    relevant = [k in (SS["rc_rel"] or []) for k in range(1, 6)]
    retrieved, gold = toy_ids(relevant, SS["rc_gold"])
    c = st.columns(2)
    c[0].metric(t("ch13.rag_context_precision"), f"{context_precision(relevant):.3f}")
    c[1].metric(t("ch13.rag_context_recall"), f"{context_recall(retrieved, gold):.3f}")
    precision_steps(relevant, SS["rc_gold"])


def data_versions() -> None:
    """What a data version is: the shipped cloze items hashed as they are, and after three tiny edits."""
    from engine.llmops import dataset_version, load_mc_items

    rows = [it.to_json() for it in load_mc_items()]
    edited = dict(rows[0], context=rows[0]["context"] + " ")
    variants = {
        "asis": rows,
        "dropped": rows[:-1],
        "swapped": [rows[1], rows[0], *rows[2:]],
        "space": [edited, *rows[1:]],
    }
    table = []
    for name, variant in variants.items():
        v = dataset_version("constitution_cloze", variant, "assets/llmops/constitution_cloze.jsonl")
        table.append([t(f"ch13.dv_{name}"), v.rows, v.digest])
    charts.table(table, [t("ch13.col_variant"), t("ch13.col_rows"), t("ch13.col_digest")])
    st.caption(t("ch13.dv_caption"))
