"""Figures for chapter 5 (memory by component, ZeRO stages, training curves), and the `show_*` helpers that draw
them on the page with their metrics and tables: pure drawing of engine records."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from ui import charts
from ui.charts import table
from ui.i18n import pick, t

ZERO_PARTS = ("weights", "gradients", "optimizer")


def mode_label(mode: str) -> str:
    return t(f"ch05.mode_{mode}")


def component_label(component: str) -> str:
    return t(f"ch05.comp_{component}")


def stage_label(i: int, z) -> str:
    """zero_view's lines come in stage order 0-3; stage 0 (plain data parallelism) gets a translated name."""
    return t("ch05.stage_dp") if i == 0 else z.stage


def estimate_bars(lines, title: str) -> go.Figure:
    """Estimated MiB per component, grouped by training mode."""
    bars = [
        {"mode": mode_label(line.mode), "component": component_label(c), "MiB": v}
        for line in lines
        for c, v in line.components.items()
    ]
    return charts.grouped_bars(bars, "mode", "MiB", "component", title, labels=_labels())


def _labels() -> dict[str, str]:
    """Axis and legend titles for the chapter's charts (columns named in English, read in the page language)."""
    return {
        "mode": t("ch05.col_mode"),
        "component": t("ch05.col_component"),
        "MiB": t("ch05.axis_mib"),
        "x": t("ch05.axis_setting"),
        "kind": t("ch05.axis_kind"),
        "stage": t("ch05.col_stage"),
        "GB": t("ch05.axis_gb"),
        "part": t("ch05.col_component"),
        "step": t("ch05.axis_step"),
        "loss": t("ch05.axis_loss"),
    }


def measured_bars(lines, title: str) -> go.Figure:
    """Estimated next to measured MiB for every (mode, component), log scale."""
    bars = [
        {
            "x": f"{mode_label(line.mode)} · {component_label(line.component)}",
            "MiB": getattr(line, kind),
            "kind": t(f"ch05.col_{kind}"),
        }
        for line in lines
        for kind in ("estimated", "measured")
    ]
    return charts.grouped_bars(bars, "x", "MiB", "kind", title, log_y=True, labels=_labels())


def zero_bars(lines, title: str) -> go.Figure:
    bars = [
        {"stage": stage_label(i, z), "GB": getattr(z, part), "part": component_label(part)}
        for i, z in enumerate(lines)
        for part in ZERO_PARTS
    ]
    return charts.grouped_bars(bars, "stage", "GB", "part", title, labels=_labels())


def train_curve(curve, title: str) -> go.Figure:
    """Loss per step, one line per training mode."""
    rows = [{"step": step, "loss": loss, "mode": mode_label(mode)} for mode, step, loss in curve]
    return charts.line(rows, "step", "loss", "mode", title, labels=_labels())


# --- drawing on the page: the figures above with their metrics and tables -------------------------------------
def produced_by(model: str, device: str) -> None:
    st.caption(t("common.produced_by", model=model, device=device, source=t("ch05.source_measured")))


def show_estimate(est, batch: int, seq: int) -> None:
    charts.show(st, estimate_bars(est.lines, t("ch05.estimate_title", batch=batch, seq=seq)), width="stretch")
    components = [component_label(c) for c in est.lines[0].components] if est.lines else []
    columns = [t("ch05.col_mode"), *components, t("ch05.col_total"), t("ch05.col_fits")]
    rows = [(mode_label(x.mode), *x.components.values(), x.total, "✅" if x.fits else "⛔") for x in est.lines]
    table(rows, columns)
    st.caption(t("ch05.estimate_caption", free=est.free))


def show_measured(view, model_label: str | None) -> None:
    """Refused and failed settings, then estimated vs measured for the rest."""
    for mode, why in view.refused:
        st.warning(t("ch05.refused", mode=mode_label(mode), message=why))
    for mode, error in view.errors:
        st.error(f"{mode_label(mode)}: {error}")
    if not view.lines:
        return
    charts.show(st, measured_bars(view.lines, t("ch05.measured_title")), width="stretch")
    columns = [t(f"ch05.{c}") for c in ("col_estimated", "col_measured", "col_ratio")]
    rows = [
        (mode_label(x.mode), x.batch, component_label(x.component), x.estimated, x.measured, x.ratio)
        for x in view.lines
    ]
    table(rows, [t("ch05.col_mode"), t("ch05.batch"), t("ch05.col_component"), *columns])
    produced_by(model_label, view.device)


def show_accumulation(acc, view) -> None:
    m1, m2, m3 = st.columns(3)
    scale = f"{acc.max_abs_grad:.2e}"
    m1.metric(t("ch05.max_diff"), f"{acc.max_abs_diff:.2e}", help=t("ch05.max_diff_help", scale=scale))
    m2.metric(t("ch05.acts_full", batch=acc.batch), f"{view.activations_full} MiB")
    m3.metric(
        t("ch05.acts_micro", micro=acc.micro_batch, steps=acc.steps),
        f"{view.activations_micro} MiB",
        delta=f"{view.change:.0%}",
        delta_color="inverse",
    )
    full, accumulated, loss = f"{acc.seconds_full:.2f}", f"{acc.seconds_accumulated:.2f}", f"{acc.loss_full:.4f}"
    st.caption(t("ch05.acc_caption", dtype=acc.dtype, full=full, acc=accumulated, loss=loss))


def show_checkpointing(ck, lines, model_label: str) -> None:
    columns = [t("ch05.checkpointing"), *(t(f"ch05.{k}") for k in ("col_acts_measured", "col_acts_estimated"))]
    columns += [t("ch05.recompute") + " (MiB)", t("ch05.col_forward"), t("ch05.col_backward")]
    rows = [(t(f"ch05.ck_{x.checkpointing}"), *list(vars(x).values())[1:]) for x in lines]
    table(rows, columns)
    if len(ck.runs) == 2:
        n1, n2, n3 = st.columns(3)
        n1.metric(t("ch05.acts_ratio"), f"{ck.ratio('activations'):.0%}")
        n2.metric(t("ch05.time_ratio"), f"{ck.ratio('seconds'):.2f}×")
        n3.metric(t("ch05.grad_diff"), f"{ck.grad_max_diff:.1e}")
    else:
        st.info(t("ch05.cancelled"))
    produced_by(model_label, "cpu")


def show_zero(lines, gpus: int) -> None:
    charts.show(st, zero_bars(lines, t("ch05.zero_title", gpus=gpus)), width="stretch")
    columns = [t("ch05.col_stage"), t("ch05.col_total_gb"), t("ch05.col_fits_gpu"), t("ch05.zero_max") + " (B)"]
    table([(stage_label(i, z), z.total, "✅" if z.fits else "⛔", z.max_params) for i, z in enumerate(lines)], columns)
    st.caption(t("ch05.zero_caption"))


def show_training(view) -> None:
    if view.curve:
        charts.show(st, train_curve(view.curve, t("ch05.train_chart")), width="stretch")
    for mode, step, lr, kept in view.diverged:
        st.error(t("ch05.diverged", mode=mode_label(mode), step=step, lr=f"{lr:g}", kept=kept))
    rows = [(mode_label(x.mode), x.steps, x.losses, x.seconds_per_step) for x in view.lines]
    table(rows, [t("ch05.col_mode"), t("ch05.steps"), t("ch05.col_losses"), t("ch05.col_s_per_step")])


def show_book(lines, ref: dict) -> None:
    """The book's T4 measurements next to the formulas, and where they come from."""
    st.subheader(t("ch05.book_title"))
    rows = [
        (
            t(f"ch05.mode_{b.mode}")
            + (f" · {t('ch05.batch')} {b.batch}" if b.batch else "")
            + f" ({t('ch05.example')} {b.example})",
            b.book,
            b.state,
            "—" if b.peak is None else f"{b.peak:.2f}",  # the activation formula covers full fine-tuning only
            pick(b.note) if isinstance(b.note, dict) else b.note,
        )
        for b in lines
    ]
    table(rows, [t(f"ch05.col_{c}") for c in ("setting", "book", "formula_state", "formula_peak", "note")])
    source, how = pick(ref["source"]), pick(ref["how"])
    st.caption(t("ch05.book_caption", source=source, hardware=pick(ref["hardware"]), how=how, model=ref["model"]["id"]))
    st.caption(t("ch05.book_no_peak"))
