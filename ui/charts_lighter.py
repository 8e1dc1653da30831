"""Plotly figures and result panels for chapter 7 (lighter models): decoding candidates, KV cache and batch sweeps,
the roofline, quantization, GPTQ/AWQ and distillation. Pure drawing of engine results; labels come from the strings
files."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ui import charts
from ui.charts import table
from ui.i18n import t
from ui.layout import truncation_note


def candidates(step) -> go.Figure:
    """Raw vs final probability of each candidate at one decoding step (numbered: plotly would merge two tokens
    that look alike)."""
    rows = []
    for i, c in enumerate(step.candidates):
        rows.append({"token": f"{i + 1}. {c.label}", "p": c.prob_raw, "kind": t("ch07.p_raw")})
        rows.append({"token": f"{i + 1}. {c.label}", "p": c.prob_final, "kind": t("ch07.p_final")})
    return charts.grouped_bars(
        rows, "token", "p", "kind", t("ch07.step_title", i=step.index + 1, token=step.chosen_label)
    )


def steps_table(steps) -> list[dict]:
    return [
        {
            "step": s.index + 1,
            "token": s.chosen_label,
            "kept": s.kept,
            "top-3": " | ".join(f"{c.label} {c.prob_raw:.0%}" for c in s.candidates[:3]),
        }
        for s in steps
    ]


def kv_times(data: list[dict]) -> go.Figure:
    long = [
        {"new tokens": r["new_tokens"], "s": r[k], "run": t(f"ch07.{k}")}
        for r in data
        for k in ("with_cache_s", "without_cache_s")
    ]
    return charts.line(long, "new tokens", "s", "run", t("ch07.kv_time_title"))


def kv_calculator(calc: list[dict]) -> go.Figure:
    return px.bar(
        calc,
        x="model",
        y="kv_gib",
        color="attention",
        log_y=True,
        title=t("ch07.kv_calc_title"),
        hover_data=["kv_heads", "heads", "layers", "head_dim"],
    )


def roofline(view) -> go.Figure:
    return px.line(
        view.rows,
        x="batch",
        y="tokens_per_s",
        log_x=True,
        log_y=True,
        markers=True,
        color="bound",
        title=t("ch07.bt_roof_title", gpu=view.gpu["name"], params=view.size),
    )


def batch_measured(data: list[dict]) -> go.Figure:
    long = [
        {"batch": r["batch"], "tokens/s": r[k], "kind": t(f"ch07.{k}")}
        for r in data
        for k in ("tokens_per_s", "per_sequence_tokens_per_s")
    ]
    return charts.line(long, "batch", "tokens/s", "kind", t("ch07.bt_measured_title"))


def quantization(rel: list[dict]) -> tuple[go.Figure, go.Figure, go.Figure]:
    """Memory, speed and perplexity (Korean and English text) per precision."""
    mem = px.bar(rel, x="precision", y="MB", title=t("ch07.q_mem_title"), text_auto=".0f")
    speed = px.bar(rel, x="precision", y="tokens_per_s", title=t("ch07.q_speed_title"), text_auto=".1f")
    ppl = [
        {"precision": r["precision"], "perplexity": r[k], "text": k.removeprefix("perplexity_")}
        for r in rel
        for k in ("perplexity_ko", "perplexity_en")
    ]
    return mem, speed, charts.grouped_bars(ppl, "precision", "perplexity", "text", t("ch07.q_ppl_title"))


def gptq_awq(gq) -> tuple[go.Figure, go.Figure, go.Figure]:
    """Output error per method (held-out and calibration tokens), AWQ's alpha search, per-channel activation size."""
    err = [{"method": m, "error": v, "tokens": t("ch07.gq_heldout")} for m, v in gq.errors.items()]
    err += [{"method": m, "error": v, "tokens": t("ch07.gq_calib")} for m, v in gq.calib_errors.items()]
    curve = [{"alpha": a, "error": e} for a, e in gq.awq_curve]
    chan = [{"channel": i, "mean |x|": v} for i, v in enumerate(gq.channel_scale)]
    return (
        charts.grouped_bars(err, "method", "error", "tokens", t("ch07.gq_err_title")),
        charts.line(curve, "alpha", "error", None, t("ch07.gq_alpha_title", alpha=gq.awq_alpha)),
        px.bar(chan, x="channel", y="mean |x|", title=t("ch07.gq_channels_title")),
    )


def distillation(kd) -> tuple[list[go.Figure], list[dict]]:
    """Accuracy, agreement and NLL curves per student, and the final table."""
    hist = [
        {
            "epoch": h.epoch,
            "student": t(f"ch07.kd_{h.student}"),
            "train loss": h.train_loss,
            "held-out accuracy": h.test_accuracy,
            "agreement with teacher": h.test_agreement,
            "held-out NLL": h.test_nll,
        }
        for h in kd.history
    ]
    figs = [
        charts.line(hist, "epoch", y, "student", t(title))
        for y, title in (
            ("held-out accuracy", "ch07.kd_acc_title"),
            ("agreement with teacher", "ch07.kd_agree_title"),
            ("held-out NLL", "ch07.kd_nll_title"),
        )
    ]
    final = [
        {
            "student": t(f"ch07.kd_{k}"),
            "held-out accuracy": v.test_accuracy,
            "agreement with teacher": v.test_agreement,
            "held-out NLL": v.test_nll,
        }
        for k, v in kd.final.items()
    ]
    return figs, final


# --- result panels: a finished engine result drawn with st.* (no computing) ---------------------------------------


def show_generation(result, model: str, device) -> None:
    """The generated text, then one decoding step at a time (a slider picks it) and every step in a table."""
    for note in result.notes:
        truncation_note(note)
    st.markdown(f"**{t('ch07.output')}** {result.text}")
    strategy, finish = t(f"ch07.strategy_{result.strategy}"), t(f"ch07.finish_{result.finish}")
    n, s = len(result.new_ids), f"{result.seconds:.1f}"
    st.caption(t("ch07.gen_meta", strategy=strategy, n=n, finish=finish, s=s, model=model, device=device))
    if not result.steps:
        return
    n_steps = len(result.steps)
    if not 1 <= st.session_state.get("gen_step_view", 1) <= n_steps:  # a new, shorter result
        st.session_state["gen_step_view"] = 1
    if n_steps > 1:
        st.slider(t("ch07.step"), 1, n_steps, key="gen_step_view")
    step = result.steps[st.session_state.get("gen_step_view", 1) - 1]
    c1, c2 = st.columns([3, 1])
    charts.show(c1, candidates(step), width="stretch")
    c2.metric(t("ch07.chosen"), step.chosen_label)
    c2.metric(t("ch07.kept"), f"{step.kept:,}")
    if step.beams:
        c2.dataframe(pd.DataFrame(step.beams, columns=["beam", "log p"]), hide_index=True)
    with st.expander(t("ch07.all_steps")):
        table(steps_table(result.steps))
    if result.finished_beams:
        table(pd.DataFrame(result.finished_beams, columns=[t("ch07.finished_beam"), "score"]))


def show_cache_size(size) -> None:
    """A prefill's KV cache: measured bytes next to the formula, written out with this model's numbers."""
    s = size.shape
    c1, c2, c3 = st.columns(3)
    c1.metric(t("ch07.kv_tokens"), size.tokens)
    c2.metric(t("ch07.kv_measured"), f"{size.measured_bytes:,} B")
    same = size.measured_bytes == size.formula_bytes
    c3.metric(t("ch07.kv_formula"), f"{size.formula_bytes:,} B", delta=t("ch07.kv_equal" if same else "ch07.kv_differ"))
    st.latex(
        rf"2 \cdot {s.layers}\,\text{{layers}} \cdot {s.kv_heads}\,\text{{kv heads}} \cdot {s.head_dim}"
        rf"\,\text{{head dim}} \cdot {size.tokens}\,\text{{tokens}} \cdot 4\,\text{{bytes}}"
        rf" = {size.formula_bytes:,}"
    )
    st.caption(t("ch07.kv_shape", shape=str(size.tensor_shape), dtype=size.dtype, heads=s.heads, kv=s.kv_heads))


def show_kv_calculator(calc: list[dict]) -> None:
    charts.show(st, kv_calculator(calc), width="stretch")
    number = st.column_config.NumberColumn
    fmt = {"kv_gib": number(format="%.3f"), "mha_gib": number(format="%.3f"), "saving_vs_mha": number(format="percent")}
    table(calc, column_config=fmt)


def show_gptq_awq(gq, method_rows: list[dict]) -> None:
    err, curve, channels = gptq_awq(gq)
    c1, c2 = st.columns(2)
    charts.show(c1, err, width="stretch")
    charts.show(c2, curve, width="stretch")
    charts.show(st, channels, width="stretch")
    table(method_rows)
    meta = {"layer": gq.layer, "proj": gq.projection, "shape": str(gq.shape), "bits": gq.bits}
    st.caption(t("ch07.gq_meta", **meta, calib=gq.calib_tokens, eval=gq.eval_tokens))


def show_distillation(kd) -> None:
    figs, final = distillation(kd)
    for col, fig in zip(st.columns(3), figs, strict=True):
        charts.show(col, fig, width="stretch")
    table(final)
    frozen = f"{kd.student_params_total - kd.student_params:,}"
    sizes = {"teacher": f"{kd.teacher_params:,}", "student": f"{kd.student_params:,}", "frozen": frozen}
    data = {"vocab": kd.vocab_size, "train": kd.train_positions, "test": kd.test_positions}
    score = {"teacher_acc": f"{kd.teacher_accuracy:.1%}", "s": f"{kd.seconds:.1f}"}
    st.caption(t("ch07.kd_meta", **sizes, **data, **score))
    for note in kd.notes:
        st.caption(note)
