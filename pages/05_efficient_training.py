"""Chapter 5 — fitting training into memory: where the bytes go, accumulation, checkpointing, ZeRO, LoRA, QLoRA."""

import pandas as pd
import streamlit as st

from engine.core import get_settings
from engine.training import (
    COMPONENTS,
    LLAMA_LINEARS,
    MODES,
    STAGE_NAMES,
    LoraSpec,
    ModelShape,
    QuantSpec,
    available_memory_bytes,
    book_comparison,
    book_reference,
    compare_checkpointing,
    count_parameters,
    dummy_batch,
    estimate_rows,
    estimated_weight_bytes,
    load_training_model,
    lora_parameter_count,
    max_params_that_fit,
    memory_profile,
    merge_check,
    model_config,
    parameter_counts,
    randomize_adapters,
    run_accumulation_demo,
    train_steps,
    weight_bytes,
    zero_table,
)
from ui import charts
from ui.cache import shared
from ui.i18n import pick, t
from ui.layout import chapter_header, friendly_errors, notice, progress_callback, quiz, section_header, show_code
from ui.state import param

ch = chapter_header("05")
MODELS = {"chat": "SmolLM2-135M-Instruct (chat)", "tiny": "tiny Llama (7.5M, random)"}
MIB = 1024**2
SEQS = (16, 32, 64, 128, 256, 512, 1024)
LRS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)


def mib(n) -> float | None:
    return None if n is None else round(n / MIB, 2)


def mode_label(mode: str) -> str:
    return t(f"ch05.mode_{mode}")


def shape_of(source: str) -> ModelShape:
    cfg = shared(("ch05_config", source), lambda p: model_config(source), lambda *_: None)
    return ModelShape.from_config(cfg, name=source)


# The LoRA / QLoRA settings are read by several sections; their widgets live in the LoRA and QLoRA sections.
param("lora_r", 8, int)
param("lora_alpha", 16, int)
param("lora_targets", "q_proj,v_proj", str)
param("q_type", "nf4", str, choices=("nf4", "fp4"))
param("q_double", False)


def lora_spec() -> LoraSpec:
    targets = tuple(x for x in str(st.session_state["lora_targets"]).split(",") if x in LLAMA_LINEARS)
    return LoraSpec(
        r=st.session_state["lora_r"], alpha=st.session_state["lora_alpha"], targets=targets or ("q_proj", "v_proj")
    )


def quant_spec() -> QuantSpec:
    return QuantSpec(quant_type=st.session_state["q_type"], double_quant=st.session_state["q_double"])


# --- where the memory goes ------------------------------------------------------------------------------------
section_header(ch, "breakdown")
param("mem_model", "chat", str, choices=tuple(MODELS))
param("mem_batch", 4, int)
param("mem_seq", 32, int, choices=SEQS)
param("mem_ckpt", False)
c1, c2, c3, c4 = st.columns(4)
c1.selectbox(t("common.model"), list(MODELS), format_func=MODELS.get, key="mem_model")
c2.number_input(t("ch05.batch"), min_value=1, max_value=4096, step=1, key="mem_batch", help=t("ch05.batch_help"))
c3.select_slider(t("ch05.seq_len"), SEQS, key="mem_seq")
c4.toggle(t("ch05.checkpointing"), key="mem_ckpt")
with friendly_errors():
    source, batch, seq = st.session_state["mem_model"], int(st.session_state["mem_batch"]), st.session_state["mem_seq"]
    shape_of(source)
    est = estimate_rows(source, list(MODES), [batch], seq, lora_spec(), quant_spec(), st.session_state["mem_ckpt"])
    free = available_memory_bytes()
    bars = [
        {"mode": mode_label(r.mode), "component": t(f"ch05.comp_{c}"), "MiB": mib(r.estimated[c])}
        for r in est
        for c in COMPONENTS
    ]
    st.plotly_chart(
        charts.grouped_bars(bars, "mode", "MiB", "component", t("ch05.estimate_title", batch=batch, seq=seq)),
        width="stretch",
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("ch05.col_mode"): mode_label(r.mode),
                    **{t(f"ch05.comp_{c}"): mib(r.estimated[c]) for c in COMPONENTS},
                    t("ch05.col_total"): mib(sum(r.estimated.values())),
                    t("ch05.col_fits"): "✅" if sum(r.estimated.values()) * 1.3 < free else "⛔",
                }
                for r in est
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(t("ch05.estimate_caption", free=mib(free)))

    param("mem_modes", "full,lora,qlora", str)
    st.session_state.setdefault("mem_modes_ms", [m for m in st.session_state["mem_modes"].split(",") if m in MODES])
    chosen = st.multiselect(t("ch05.modes_to_measure"), list(MODES), format_func=mode_label, key="mem_modes_ms")
    st.session_state["mem_modes"] = ",".join(chosen)
    if st.button(t("ch05.measure"), type="primary", key="mem_measure", disabled=not chosen):
        st.session_state["ch05_rows"] = []
        bar = st.progress(0.0)
        result = memory_profile(
            source,
            chosen,
            [batch],
            seq,
            lora_spec(),
            quant_spec(),
            st.session_state["mem_ckpt"],
            progress=progress_callback(bar),
            on_row=st.session_state["ch05_rows"].append,
        )
        bar.empty()
        st.session_state["ch05_cancelled"] = result.cancelled
    rows = st.session_state.get("ch05_rows") or []
    if rows:
        table, chart = [], []
        for r in rows:
            if r.refused:
                st.warning(t("ch05.refused", mode=mode_label(r.mode), message=r.refused))
                continue
            if r.error:
                st.error(f"{mode_label(r.mode)}: {r.error}")
                continue
            for c in COMPONENTS:
                ratio = r.ratio(c)
                table.append(
                    {
                        t("ch05.col_mode"): mode_label(r.mode),
                        "batch": r.batch,
                        t("ch05.col_component"): t(f"ch05.comp_{c}"),
                        t("ch05.col_estimated"): mib(r.estimated[c]),
                        t("ch05.col_measured"): mib(r.measured[c]),
                        t("ch05.col_ratio"): None if ratio is None else round(ratio, 4),
                    }
                )
                for kind in ("estimated", "measured"):
                    chart.append(
                        {
                            "x": f"{mode_label(r.mode)} · {t(f'ch05.comp_{c}')}",
                            "MiB": mib(getattr(r, kind)[c]),
                            "kind": t(f"ch05.col_{kind}"),
                        }
                    )
        if table:
            st.plotly_chart(
                charts.grouped_bars(chart, "x", "MiB", "kind", t("ch05.measured_title"), log_y=True), width="stretch"
            )
            st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
            done = [r for r in rows if r.measured]
            st.caption(
                t(
                    "common.produced_by",
                    model=MODELS.get(done[0].model, done[0].model),
                    device=done[0].device,
                    source=t("ch05.source_measured"),
                )
            )
        if st.session_state.get("ch05_cancelled"):
            st.info(t("ch05.cancelled"))
notice("common.notice", t("ch05.notice_breakdown"))
quiz("05", "breakdown")

# --- gradient accumulation ------------------------------------------------------------------------------------
section_header(ch, "accumulation")
param("acc_batch", 8, int, choices=(4, 8, 16))
param("acc_micro", 2, int, choices=(1, 2, 4, 8))
param("acc_dtype", "float64", str, choices=("float32", "float64"))
a1, a2, a3 = st.columns(3)
a1.selectbox(t("ch05.big_batch"), (4, 8, 16), key="acc_batch")
a2.selectbox(t("ch05.micro_batch"), (1, 2, 4, 8), key="acc_micro")
a3.radio(t("ch05.dtype"), ("float64", "float32"), key="acc_dtype", horizontal=True)
if st.button(t("ch05.run_accumulation"), key="acc_run"):
    with friendly_errors():
        bar = st.progress(0.0)
        st.session_state["ch05_acc"] = run_accumulation_demo(
            "tiny",
            st.session_state["acc_batch"],
            st.session_state["acc_micro"],
            seq_len=32,
            dtype=st.session_state["acc_dtype"],
            progress=progress_callback(bar),
        )
        bar.empty()
acc = st.session_state.get("ch05_acc")
if acc:
    m1, m2, m3 = st.columns(3)
    m1.metric(
        t("ch05.max_diff"), f"{acc.max_abs_diff:.2e}", help=t("ch05.max_diff_help", scale=f"{acc.max_abs_grad:.2e}")
    )
    m2.metric(t("ch05.acts_full", batch=acc.batch), f"{mib(acc.activations_full)} MiB")
    m3.metric(
        t("ch05.acts_micro", micro=acc.micro_batch, steps=acc.steps),
        f"{mib(acc.activations_micro)} MiB",
        delta=f"{acc.activations_micro / acc.activations_full - 1:.0%}",
        delta_color="inverse",
    )
    st.caption(
        t(
            "ch05.acc_caption",
            dtype=acc.dtype,
            full=f"{acc.seconds_full:.2f}",
            acc=f"{acc.seconds_accumulated:.2f}",
            loss=f"{acc.loss_full:.4f}",
        )
    )
notice("common.notice", t("ch05.notice_accumulation"))
quiz("05", "accumulation")

# --- gradient checkpointing -----------------------------------------------------------------------------------
section_header(ch, "checkpointing")
param("ck_model", "chat", str, choices=tuple(MODELS))
param("ck_batch", 1, int, choices=(1, 2, 4))
param("ck_seq", 64, int, choices=SEQS[:5])
k1, k2, k3 = st.columns(3)
k1.selectbox(t("common.model"), list(MODELS), format_func=MODELS.get, key="ck_model")
k2.selectbox(t("ch05.batch"), (1, 2, 4), key="ck_batch")
k3.select_slider(t("ch05.seq_len"), SEQS[:5], key="ck_seq")
if st.button(t("ch05.run_checkpointing"), key="ck_run"):
    with friendly_errors():
        bar = st.progress(0.0)
        st.session_state["ch05_ck"] = compare_checkpointing(
            st.session_state["ck_model"],
            "full",
            st.session_state["ck_batch"],
            st.session_state["ck_seq"],
            progress=progress_callback(bar),
        )
        bar.empty()
ck = st.session_state.get("ch05_ck")
if ck and ck.runs:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("ch05.checkpointing"): "on" if r.checkpointing else "off",
                    t("ch05.col_measured") + " (MiB)": mib(r.activations),
                    t("ch05.col_estimated") + " (MiB)": mib(r.estimated),
                    t("ch05.recompute") + " (MiB)": mib(r.recompute_layer),
                    "forward (s)": round(r.forward_seconds, 3),
                    "backward (s)": round(r.backward_seconds, 3),
                }
                for r in ck.runs
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    if len(ck.runs) == 2:
        n1, n2, n3 = st.columns(3)
        n1.metric(t("ch05.acts_ratio"), f"{ck.ratio('activations'):.0%}")
        n2.metric(t("ch05.time_ratio"), f"{ck.ratio('seconds'):.2f}×")
        n3.metric(t("ch05.grad_diff"), f"{ck.grad_max_diff:.1e}")
    else:
        st.info(t("ch05.cancelled"))
    st.caption(
        t(
            "common.produced_by",
            model=MODELS.get(ck.model, ck.model),
            device="cpu",
            source=t("ch05.source_measured"),
        )
    )
notice("common.notice", t("ch05.notice_checkpointing"))
quiz("05", "checkpointing")

# --- ZeRO -----------------------------------------------------------------------------------------------------
section_header(ch, "zero")
param("zero_params_b", 7.5, float)
param("zero_gpus", 64, int)
param("zero_gpu_gb", 32.0, float)
z1, z2, z3 = st.columns(3)
z1.number_input(t("ch05.zero_params"), min_value=0.001, max_value=100_000.0, step=0.5, key="zero_params_b")
z2.number_input(t("ch05.zero_gpus"), min_value=1, max_value=100_000, step=1, key="zero_gpus")
z3.number_input(t("ch05.zero_gpu_gb"), min_value=1.0, max_value=1_000.0, step=8.0, key="zero_gpu_gb")
with friendly_errors():
    psi = int(st.session_state["zero_params_b"] * 1e9)
    gpus, gpu_bytes = int(st.session_state["zero_gpus"]), st.session_state["zero_gpu_gb"] * 1e9
    table = zero_table(psi, gpus)
    zbars = [
        {"stage": STAGE_NAMES[z.stage], "GB": round(getattr(z, c) / 1e9, 3), "part": t(f"ch05.comp_{c}")}
        for z in table
        for c in ("weights", "gradients", "optimizer")
    ]
    st.plotly_chart(charts.grouped_bars(zbars, "stage", "GB", "part", t("ch05.zero_title", gpus=gpus)), width="stretch")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "stage": STAGE_NAMES[z.stage],
                    t("ch05.col_total_gb"): round(z.total / 1e9, 2),
                    t("ch05.col_fits_gpu"): "✅" if z.total <= gpu_bytes else "⛔",
                    t("ch05.zero_max") + " (B)": round(max_params_that_fit(gpu_bytes, gpus, z.stage) / 1e9, 1),
                }
                for z in table
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(t("ch05.zero_caption"))
notice("common.notice", t("ch05.notice_zero"))
quiz("05", "zero")

# --- LoRA -----------------------------------------------------------------------------------------------------
section_header(ch, "lora")
l1, l2, l3 = st.columns([1, 1, 2])
l1.select_slider(t("ch05.lora_r"), (1, 2, 4, 8, 16, 32, 64, 128), key="lora_r")
l2.select_slider(t("ch05.lora_alpha"), (1, 2, 4, 8, 16, 32, 64, 128, 256), key="lora_alpha")
st.session_state.setdefault(
    "lora_targets_ms", [x for x in st.session_state["lora_targets"].split(",") if x in LLAMA_LINEARS]
)
targets = l3.multiselect(t("ch05.lora_targets"), list(LLAMA_LINEARS), key="lora_targets_ms")
st.session_state["lora_targets"] = ",".join(targets) or "q_proj,v_proj"
with friendly_errors():
    spec = lora_spec()
    shape = shape_of("chat")
    total = count_parameters(shape)["total"]
    lora_n = lora_parameter_count(shape, spec)["trainable"]
    q1, q2, q3 = st.columns(3)
    q1.metric(t("ch05.trainable"), f"{lora_n:,}")
    q2.metric(t("ch05.trainable_share"), f"{lora_n / total:.3%}")
    q3.metric(t("ch05.scaling"), f"{spec.scaling:g}")
    st.caption(t("ch05.lora_caption", total=f"{total:,}"))
    if st.button(t("ch05.run_merge"), key="lora_merge"):
        with st.spinner(t("common.loading_model")):
            model = load_training_model("chat", "lora", spec)
            counted = parameter_counts(model)["trainable"]
            randomize_adapters(model, seed=0)
            st.session_state["ch05_merge"] = (merge_check(model, dummy_batch(shape.vocab, 1, 16)["input_ids"]), counted)
merge = st.session_state.get("ch05_merge")
if merge:
    r, counted = merge
    st.success(
        t("ch05.merge_result", diff=f"{r.max_abs_diff:.2e}", delta=f"{r.delta_norm:.3f}", counted=f"{counted:,}")
    )
notice("common.notice", t("ch05.notice_lora"))
quiz("05", "lora")

# --- QLoRA ----------------------------------------------------------------------------------------------------
section_header(ch, "qlora")
w1, w2 = st.columns(2)
w1.radio(t("ch05.quant_type"), ("nf4", "fp4"), key="q_type", horizontal=True)
w2.toggle(t("ch05.double_quant"), key="q_double")
with friendly_errors():
    shape = shape_of("chat")
    fp32 = estimated_weight_bytes(shape, "full")
    four = estimated_weight_bytes(shape, "qlora", lora_spec(), quant_spec())
    e1, e2, e3 = st.columns(3)
    e1.metric(t("ch05.fp32_weights"), f"{mib(fp32)} MiB")
    e2.metric(t("ch05.q_weights"), f"{mib(four)} MiB")
    e3.metric(t("ch05.q_ratio"), f"{four / fp32:.1%}")
    if st.button(t("ch05.run_qlora_load"), key="q_load"):
        bar = st.progress(0.0)
        q = quant_spec()
        model = shared(
            ("ch05_qlora", q, lora_spec()),
            lambda p: load_training_model("chat", "qlora", lora_spec(), q, progress=p),
            progress_callback(bar),
        )
        bar.empty()
        kinds = sorted({type(p).__name__ for p in model.parameters()})
        st.session_state["ch05_qload"] = (weight_bytes(model), kinds, q)
qload = st.session_state.get("ch05_qload")
if qload:
    measured, kinds, q = qload
    st.success(
        t(
            "ch05.qlora_loaded",
            measured=mib(measured),
            ratio=f"{measured / fp32:.1%}",
            kinds=", ".join(kinds),
            qtype=q.quant_type,
        )
    )

st.subheader(t("ch05.train_title"))
param("tr_model", "tiny", str, choices=tuple(MODELS))
param("tr_lr", 1e-3, float, choices=LRS)
param("tr_steps", 8, int)
r1, r2, r3 = st.columns(3)
r1.selectbox(t("common.model"), list(MODELS), format_func=MODELS.get, key="tr_model", help=t("ch05.train_model_help"))
r2.select_slider(t("ch05.lr"), LRS, key="tr_lr", format_func=lambda x: f"{x:g}")
r3.slider(t("ch05.steps"), 1, 30, key="tr_steps")
if st.button(t("ch05.run_train"), key="tr_run", type="primary"):
    logs = st.session_state["ch05_train"] = {}
    bar = st.progress(0.0)
    with friendly_errors():
        src = st.session_state["tr_model"]
        data = dummy_batch(shape_of(src).vocab, 2, 32)
        for i, mode in enumerate(MODES):
            report = progress_callback(bar)
            model = load_training_model(src, mode, lora_spec(), quant_spec())
            logs[mode] = train_steps(
                model,
                data,
                st.session_state["tr_steps"],
                st.session_state["tr_lr"],
                mode,
                progress=lambda f, m, i=i, report=report: report((i + f) / 3, m),
            )
            del model
    bar.empty()
logs = st.session_state.get("ch05_train") or {}
if logs:
    curve = [
        {"step": s + 1, "loss": loss, "mode": mode_label(m)}
        for m, log in logs.items()
        for s, loss in enumerate(log.losses)
    ]
    if curve:
        st.plotly_chart(charts.line(curve, "step", "loss", "mode", t("ch05.train_chart")), width="stretch")
    for m, log in logs.items():
        if log.diverged_at is not None:
            st.error(
                t("ch05.diverged", mode=mode_label(m), step=log.diverged_at, lr=f"{log.lr:g}", kept=log.finished_steps)
            )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("ch05.col_mode"): mode_label(m),
                    t("ch05.steps"): log.finished_steps,
                    "loss (first → last)": f"{log.losses[0]:.3f} → {log.losses[-1]:.3f}" if log.losses else "—",
                    "s/step": round(sum(log.seconds) / max(1, len(log.seconds)), 3),
                }
                for m, log in logs.items()
            ]
        ),
        hide_index=True,
        width="stretch",
    )

st.subheader(t("ch05.book_title"))
ref = book_reference()
st.dataframe(
    pd.DataFrame(
        [
            {
                t("ch05.col_setting"): r["mode"]
                + (f" · batch {r['batch']}" if r["batch"] else "")
                + f" ({t('ch05.example')} {r['example']})",
                t("ch05.col_book"): "OOM" if r["book_oom"] else f"{r['book_gib']:.3f}",
                t("ch05.col_formula_state"): round(r["estimated_state_gib"], 3),
                t("ch05.col_formula_peak"): None
                if r["estimated_peak_gib"] is None
                else round(r["estimated_peak_gib"], 2),
                t("ch05.col_note"): r["note"],
            }
            for r in book_comparison()
        ]
    ),
    hide_index=True,
    width="stretch",
)
st.caption(
    t(
        "ch05.book_caption",
        source=pick(ref["source"]),
        hardware=ref["hardware"],
        how=pick(ref["how"]),
        model=ref["model"]["id"],
    )
)
st.caption(t("ch05.settings_note", device=get_settings().device))
notice("common.notice", t("ch05.notice_qlora"))
quiz("05", "qlora")
show_code(ch)
