"""Figures and HTML for chapters 3 and 4 (datasets, chat templates, alignment toys): pure drawing of engine results."""

from __future__ import annotations

import html

import plotly.express as px
import plotly.graph_objects as go

MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def token_chips(tokens: list[str], mask: list[int]) -> str:
    """Tokens as chips; the ones the attention mask drops (padding) are struck through."""
    spans = []
    for tok, m in zip(tokens, mask, strict=True):
        style = "background:#dfe7fd;color:#111" if m else "background:#eeeeee;color:#999;text-decoration:line-through"
        spans.append(
            f'<span style="{style};padding:1px 3px;margin:1px;border-radius:3px;display:inline-block">'
            f"{html.escape(tok)}</span>"
        )
    return '<div style="line-height:1.9">' + "".join(spans) + "</div>"


def loss_mask_chips(groups) -> str:
    """A chat template's tokens (report.TemplateGroup: byte pieces joined into their character) as chips: green
    where the SFT loss is computed, grey where it is masked; a dashed border marks a character made of byte tokens,
    and hovering shows the token ids and raw bytes."""
    spans = []
    for g in groups:
        style = "background:#c8e6c9;color:#111" if g.trained else "background:#eeeeee;color:#777"
        if g.hex:
            style += ";outline:1px dashed #888"
        tip = "id " + " ".join(map(str, g.ids)) + (f" · {g.hex}" if g.hex else "")
        spans.append(
            f'<span title="{html.escape(tip)}" style="{style};padding:1px 3px;margin:1px;border-radius:3px;'
            f'display:inline-block;font-family:monospace;white-space:pre">{html.escape(g.text)}</span>'
        )
    return '<div style="line-height:2">' + "".join(spans) + "</div>"


def label_counts(counts: list[dict], kept: str, dropped: str, title: str, labels: dict | None = None) -> go.Figure:
    """Paragraphs per chapter, the chapters kept as classes in colour, the dropped ones grey. `labels` names the
    axes and the legend: {"paragraphs": ..., "label": ..., "status": ...}."""
    rows = [{**c, "status": kept if c["kept"] else dropped} for c in counts]
    fig = px.bar(
        rows,
        x="paragraphs",
        y="label",
        color="status",
        orientation="h",
        title=title,
        color_discrete_map={kept: "#1f77b4", dropped: "#bbbbbb"},
        labels=labels,
    )
    fig.update_layout(yaxis={"autorange": "reversed"}, height=360, margin=MARGIN)
    return fig


def best_of_n_curve(points, names: dict[str, str], title: str, labels: dict | None = None) -> go.Figure:
    """Best-of-n on the toy: reward, judge and the KL bound against n (log scale). `labels` names the axes:
    {"n": ..., "score": ...}."""
    long = [{"n": p.n, "score": getattr(p, k), "metric": name} for p in points for k, name in names.items()]
    fig = px.line(long, x="n", y="score", color="metric", markers=True, log_x=True, title=title, labels=labels)
    fig.update_layout(height=320, margin=MARGIN, legend_title_text="")
    return fig


def beta_sweep(points: list[dict], title: str, labels: dict | None = None, names=None) -> go.Figure:
    """DPO's β sweep: KL from the reference against reward, one colour per β, bigger dots later in training.
    `labels` names the axes and hover fields; `names` turns a run name ("dpo β=0.1") into the legend's."""
    if names is not None:
        points = [{**p, "method": names(p["method"])} for p in points]
    fig = px.scatter(
        points,
        x="kl",
        y="reward_mean",
        color="method",
        size="step",
        hover_data=["judge_mean", "step"],
        title=title,
        labels=labels,
    )
    fig.update_layout(height=360, margin=MARGIN, legend_title_text="")
    return fig
