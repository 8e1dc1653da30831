"""Plotly figures and result panels for chapter 7 (lighter models): decoding candidates, KV cache and batch sweeps,
the roofline, quantization, GPTQ/AWQ and distillation. Pure drawing of engine results; labels come from the strings
files."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from engine.compression import shipped_demo
from ui import charts
from ui.charts import table
from ui.i18n import lang, pick, t
from ui.layout import precomputed_note, truncation_note


def candidates(step) -> go.Figure:
    """Raw vs final probability of each candidate at one decoding step (numbered: plotly would merge two tokens
    that look alike)."""
    rows = []
    for i, c in enumerate(step.candidates):
        rows.append({"token": f"{i + 1}. {c.label}", "p": c.prob_raw, "kind": t("ch07.p_raw")})
        rows.append({"token": f"{i + 1}. {c.label}", "p": c.prob_final, "kind": t("ch07.p_final")})
    return charts.grouped_bars(
        rows,
        "token",
        "p",
        "kind",
        t("ch07.step_title", i=step.index + 1, token=step.chosen_label),
        labels=col_labels("token", "p", "kind"),
    )


# Column and axis names are the engine's keys; what a learner reads is `ch07.col_<key>` in the page's language.
def col_name(key: str) -> str:
    slug = "".join(c if c.isalnum() else "_" for c in key).strip("_")
    return t(f"ch07.col_{slug}")


def col_labels(*keys: str) -> dict[str, str]:
    return {k: col_name(k) for k in keys}


def named_table(rows: list[dict], column_config: dict | None = None) -> None:
    """A table of engine rows with every header translated (column_config keyed by the engine's keys)."""
    frame = pd.DataFrame(rows)
    renames = {k: col_name(k) for k in frame.columns}
    config = {renames.get(k, k): v for k, v in (column_config or {}).items()}
    # st.dataframe directly: ui.charts.table reads a DataFrame as a list of its column names
    st.dataframe(frame.rename(columns=renames), hide_index=True, width="stretch", column_config=config or None)


def steps_table(steps) -> list[dict]:
    return [
        {
            "step": s.index + 1,
            "token": s.chosen_label,
            "kept": s.kept,
            "top_3": " | ".join(f"{c.label} {c.prob_raw:.0%}" for c in s.candidates[:3]),
        }
        for s in steps
    ]


def kv_times(data: list[dict]) -> go.Figure:
    long = [
        {"new_tokens": r["new_tokens"], "s": r[k], "run": t(f"ch07.{k}")}
        for r in data
        for k in ("with_cache_s", "without_cache_s")
    ]
    return charts.line(
        long, "new_tokens", "s", "run", t("ch07.kv_time_title"), labels=col_labels("new_tokens", "s", "run")
    )


def kv_speedup(data: list[dict]) -> go.Figure:
    labels = col_labels("new_tokens", "speedup")
    return charts.line(data, "new_tokens", "speedup", None, t("ch07.kv_speedup_title"), labels=labels)


def kv_unit(calc: list[dict]) -> tuple[str, float]:
    """The unit that keeps the largest bar at 1 or more (GiB, else MiB, else KiB) and its factor from GiB, so a
    short context reads 0.5, 5, 50 MiB rather than 0.0005 GiB."""
    top = max((r["kv_gib"] for r in calc), default=1.0)
    for unit, factor in (("GiB", 1), ("MiB", 1024), ("KiB", 1024**2)):
        if top * factor >= 1:
            return unit, factor
    return "B", 1024**3


def kv_calculator(calc: list[dict]) -> go.Figure:
    """Cache size per model as horizontal bars on a log axis: long model names read whole on the left."""
    unit, factor = kv_unit(calc)
    rows = [{**r, "kv": r["kv_gib"] * factor} for r in calc]
    labels = col_labels("model", "attention", "kv_heads", "heads", "layers", "head_dim") | {
        "kv": t("ch07.kv_calc_axis", unit=unit)
    }
    fig = px.bar(
        rows,
        y="model",
        x="kv",
        color="attention",
        orientation="h",
        log_x=True,
        title=t("ch07.kv_calc_title", unit=unit),
        hover_data=["kv_heads", "heads", "layers", "head_dim"],
        labels=labels,
    )
    fig.update_layout(height=120 + 30 * len(rows), margin={"l": 10, "r": 30, "t": 40, "b": 10})
    fig.update_yaxes(categoryorder="array", categoryarray=[r["model"] for r in rows][::-1])
    return fig


def roofline(view) -> go.Figure:
    rows = [{**r, "bound": t(f"ch07.bound_{r['bound']}")} for r in view.rows]
    return px.line(
        rows,
        x="batch",
        y="tokens_per_s",
        log_x=True,
        log_y=True,
        markers=True,
        color="bound",
        title=t("ch07.bt_roof_title", gpu=view.gpu["name"], params=view.size),
        labels=col_labels("batch", "tokens_per_s", "bound"),
    )


def batch_measured(data: list[dict]) -> go.Figure:
    long = [
        {"batch": r["batch"], "tok_s": r[k], "kind": t(f"ch07.{k}")}
        for r in data
        for k in ("tokens_per_s", "per_sequence_tokens_per_s")
    ]
    labels = col_labels("batch", "tok_s", "kind")
    return charts.line(long, "batch", "tok_s", "kind", t("ch07.bt_measured_title"), labels=labels)


def quantization(rel: list[dict]) -> tuple[go.Figure, go.Figure, go.Figure]:
    """Memory, speed and perplexity (Korean and English text) per precision."""
    labels = col_labels("precision", "MB", "tokens_per_s", "perplexity", "text")
    mem = px.bar(rel, x="precision", y="MB", title=t("ch07.q_mem_title"), text_auto=".0f", labels=labels)
    speed = px.bar(rel, x="precision", y="tokens_per_s", title=t("ch07.q_speed_title"), text_auto=".1f", labels=labels)
    ppl = [
        {"precision": r["precision"], "perplexity": r[k], "text": t(f"ch07.{k}")}
        for r in rel
        for k in ("perplexity_ko", "perplexity_en")
    ]
    return mem, speed, charts.grouped_bars(ppl, "precision", "perplexity", "text", t("ch07.q_ppl_title"), labels=labels)


def gptq_awq(gq) -> tuple[go.Figure, go.Figure, go.Figure]:
    """Output error per method (held-out and calibration tokens), AWQ's alpha search, per-channel activation size."""
    err = [{"method": m, "error": v, "tokens": t("ch07.gq_heldout")} for m, v in gq.errors.items()]
    err += [{"method": m, "error": v, "tokens": t("ch07.gq_calib")} for m, v in gq.calib_errors.items()]
    curve = [{"alpha": a, "error": e} for a, e in gq.awq_curve]
    chan = [{"channel": i, "mean_x": v} for i, v in enumerate(gq.channel_scale)]
    labels = col_labels("method", "error", "tokens", "alpha", "channel", "mean_x")
    errors = charts.grouped_bars(err, "method", "error", "tokens", t("ch07.gq_err_title"), labels=labels)
    errors.update_traces(texttemplate="%{y:.2g}")  # 0.0071, not 0.007108604535460472
    return (
        errors,
        charts.line(curve, "alpha", "error", None, t("ch07.gq_alpha_title", alpha=gq.awq_alpha), labels=labels),
        px.bar(chan, x="channel", y="mean_x", title=t("ch07.gq_channels_title"), labels=labels),
    )


KD_METRICS = ("test_accuracy", "test_agreement", "test_nll")


def distillation(kd) -> tuple[list[go.Figure], list[dict]]:
    """Accuracy, agreement and NLL curves per student, and the final table."""
    hist = [
        {"epoch": h.epoch, "student": t(f"ch07.kd_{h.student}"), **{m: getattr(h, m) for m in KD_METRICS}}
        for h in kd.history
    ]
    labels = col_labels("epoch", "student", *KD_METRICS)
    titles = ("ch07.kd_acc_title", "ch07.kd_agree_title", "ch07.kd_nll_title")
    figs = [
        charts.line(hist, "epoch", y, "student", t(title), labels=labels)
        for y, title in zip(KD_METRICS, titles, strict=True)
    ]
    final = [{"student": t(f"ch07.kd_{k}"), **{m: getattr(v, m) for m in KD_METRICS}} for k, v in kd.final.items()]
    return figs, final


def own_or_shipped(result, demo: str, slot, prompt: str | None = None):
    """The learner's own result when there is one; otherwise the one shipped with the app (for generation: only
    while the prompt is still the default it answered), labelled in `slot`, just above the run button."""
    if result:
        return result
    shipped = shipped_demo(demo, lang())
    if shipped is None or (prompt is not None and prompt != shipped.prompt):
        return None
    with slot.container():
        precomputed_note(shipped.pre)
    return shipped.result


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
        c2.dataframe(pd.DataFrame(step.beams, columns=[col_name("beam"), "log p"]), hide_index=True)
    with st.expander(t("ch07.all_steps")):
        named_table(steps_table(result.steps))
    if result.finished_beams:
        table(result.finished_beams, [t("ch07.finished_beam"), col_name("score")])


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
    named_table([{**r, "note": pick(r["note"]) if isinstance(r["note"], dict) else r["note"]} for r in calc], fmt)


def show_gptq_awq(gq, method_rows: list[dict]) -> None:
    err, curve, channels = gptq_awq(gq)
    c1, c2 = st.columns(2)
    charts.show(c1, err, width="stretch")
    charts.show(c2, curve, width="stretch")
    charts.show(st, channels, width="stretch")
    named_table(method_rows)
    meta = {"layer": gq.layer, "proj": gq.projection, "shape": str(gq.shape), "bits": gq.bits}
    st.caption(t("ch07.gq_meta", **meta, calib=gq.calib_tokens, eval=gq.eval_tokens))


def show_distillation(kd) -> None:
    figs, final = distillation(kd)
    for col, fig in zip(st.columns(3), figs, strict=True):
        charts.show(col, fig, width="stretch")
    named_table(final)
    frozen = f"{kd.student_params_total - kd.student_params:,}"
    sizes = {"teacher": f"{kd.teacher_params:,}", "student": f"{kd.student_params:,}", "frozen": frozen}
    data = {"vocab": kd.vocab_size, "train": kd.train_positions, "test": kd.test_positions}
    score = {"teacher_acc": f"{kd.teacher_accuracy:.1%}", "s": f"{kd.seconds:.1f}"}
    st.caption(t("ch07.kd_meta", **sizes, **data, **score))
    for note in kd.notes:
        st.caption(note)
