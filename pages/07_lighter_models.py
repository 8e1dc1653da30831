"""Chapter 7 — lighter, faster models: decoding, the KV cache, batch size, quantization, GPTQ/AWQ, distillation."""

import pandas as pd
import plotly.express as px
import streamlit as st

from engine.compression import (
    PRECISIONS,
    PROJECTIONS,
    calibration_texts,
    compare_methods,
    distill,
    distillation_docs,
    eval_texts,
    heldout_texts,
    quant_bench,
    relative_to,
    teacher_targets,
)
from engine.inference import (
    DTYPE_BYTES,
    DecodingConfig,
    batch_sweep,
    generate,
    gpu_specs,
    kv_bench,
    kv_calculator,
    measure_machine,
    parse_batch_sizes,
    parse_counts,
    prefill_cache_size,
    ridge_point,
    roofline,
)
from ui import charts
from ui.cache import causal_lm, shared
from ui.i18n import t
from ui.layout import (
    chapter_header,
    friendly_errors,
    notice,
    progress_callback,
    quiz,
    section_header,
    seed,
    show_code,
    truncation_note,
)
from ui.state import param

ch = chapter_header("07")
MODEL = "SmolLM2-135M-Instruct (chat)"


def clamped(key: str, default, lo, hi, cast) -> None:
    """param() for a slider: a value from the URL outside the slider's range falls back to the default."""
    param(key, default, cast)
    if not lo <= st.session_state[key] <= hi:
        st.session_state[key] = default


def heavy_run(run_key: str, job, cache_key: tuple | None = None):
    """Run `job(progress, on_result)` with a progress bar and a Stop button; finished rows survive a Stop.

    Clicking Stop reruns the page, which interrupts the job; the rows it had finished were saved as they came.
    With `cache_key` the full result is shared by every session (ui.cache.shared).
    """
    partial: list = []
    st.session_state[f"{run_key}_partial"] = partial
    st.session_state.pop(f"{run_key}_rows", None)
    bar = st.progress(0.0, text=t("ch07.starting"))
    st.button("⏹ " + t("ch07.stop"), key=f"{run_key}_stop")
    report = progress_callback(bar)
    if cache_key is None:
        rows = job(report, partial.append)
    else:
        rows = shared(cache_key, lambda p: job(p, partial.append), report)
    bar.empty()
    st.session_state[f"{run_key}_rows"] = rows
    return rows


def last_rows(run_key: str):
    """(rows, complete): the last full result, or the rows finished before a Stop."""
    rows = st.session_state.get(f"{run_key}_rows")
    if rows is not None:
        return rows, True
    return st.session_state.get(f"{run_key}_partial") or [], False


with friendly_errors():
    lm = causal_lm("chat", t("common.loading_model"))

# --- decoding strategies --------------------------------------------------------------------------------------
section_header(ch, "generation")
param("gen_prompt", t("ch07.gen_default_prompt"), str)
param("gen_strategy", "greedy", str, choices=("greedy", "sample", "beam"))
param("gen_max", 16, int)
param("gen_temp", 1.0, float)
param("gen_topk", 0, int)
param("gen_topp", 0.9, float)
param("gen_rep", 1.0, float)
param("gen_beams", 3, int)
param("gen_template", True)

left, right = st.columns([2, 1])
with left:
    st.text_area(t("ch07.prompt"), key="gen_prompt", height=90, max_chars=20_000)
    st.radio(
        t("ch07.strategy"),
        ["greedy", "sample", "beam"],
        key="gen_strategy",
        horizontal=True,
        format_func=lambda s: t(f"ch07.strategy_{s}"),
    )
    st.toggle(t("ch07.chat_template"), key="gen_template")
with right:
    strategy = st.session_state["gen_strategy"]
    st.number_input(t("common.max_tokens"), step=1, key="gen_max", help=t("ch07.max_tokens_help"))
    if strategy == "sample":
        st.number_input(t("common.temperature"), step=0.1, key="gen_temp", help=t("ch07.temp_help"))
        st.number_input(t("ch07.top_k"), step=1, key="gen_topk", help=t("ch07.top_k_help"))
        st.number_input(t("ch07.top_p"), step=0.05, key="gen_topp", help=t("ch07.top_p_help"))
        gen_seed = seed("gen_seed")
    else:
        gen_seed = 0
    if strategy == "beam":
        st.number_input(t("ch07.beams"), step=1, key="gen_beams")
    st.number_input(t("ch07.rep_penalty"), step=0.1, key="gen_rep", help=t("ch07.rep_help"))

if st.button(t("ch07.generate"), key="gen_run", type="primary"):
    with friendly_errors():
        ss = st.session_state
        cfg = DecodingConfig(
            strategy,
            int(ss["gen_max"]),
            float(ss["gen_temp"]),
            int(ss["gen_topk"]),
            float(ss["gen_topp"]),
            float(ss["gen_rep"]),
            int(ss["gen_beams"]),
            seed=gen_seed,
        )
        bar = st.progress(0.0)
        st.session_state["gen_result"] = generate(
            lm,
            st.session_state["gen_prompt"],
            cfg,
            use_chat_template=st.session_state["gen_template"],
            progress=progress_callback(bar),
        )
        bar.empty()
result = st.session_state.get("gen_result")
if result is not None:
    for note in result.notes:
        truncation_note(note)
    st.markdown(f"**{t('ch07.output')}** {result.text}")
    st.caption(
        t(
            "ch07.gen_meta",
            strategy=t(f"ch07.strategy_{result.strategy}"),
            n=len(result.new_ids),
            finish=t(f"ch07.finish_{result.finish}"),
            s=f"{result.seconds:.1f}",
            model=MODEL,
            device=lm.device,
        )
    )
    if result.steps:
        n_steps = len(result.steps)
        if not 1 <= st.session_state.get("gen_step_view", 1) <= n_steps:  # a new, shorter result
            st.session_state["gen_step_view"] = 1
        if n_steps > 1:
            st.slider(t("ch07.step"), 1, n_steps, key="gen_step_view")
        step = result.steps[st.session_state.get("gen_step_view", 1) - 1]
        cand_rows = []
        for i, c in enumerate(step.candidates):  # numbered: plotly would merge two tokens that look alike
            cand_rows.append({"token": f"{i + 1}. {c.label}", "p": c.prob_raw, "kind": t("ch07.p_raw")})
            cand_rows.append({"token": f"{i + 1}. {c.label}", "p": c.prob_final, "kind": t("ch07.p_final")})
        c1, c2 = st.columns([3, 1])
        c1.plotly_chart(
            charts.grouped_bars(
                cand_rows, "token", "p", "kind", t("ch07.step_title", i=step.index + 1, token=step.chosen_label)
            ),
            width="stretch",
        )
        c2.metric(t("ch07.chosen"), step.chosen_label)
        c2.metric(t("ch07.kept"), f"{step.kept:,}")
        if step.beams:
            c2.dataframe(pd.DataFrame(step.beams, columns=["beam", "log p"]), hide_index=True)
        with st.expander(t("ch07.all_steps")):
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "step": s.index + 1,
                            "token": s.chosen_label,
                            "kept": s.kept,
                            "top-3": " | ".join(f"{c.label} {c.prob_raw:.0%}" for c in s.candidates[:3]),
                        }
                        for s in result.steps
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
        if result.finished_beams:
            st.dataframe(
                pd.DataFrame(result.finished_beams, columns=[t("ch07.finished_beam"), "score"]),
                hide_index=True,
                width="stretch",
            )
notice("common.notice", t("ch07.notice_generation"))
quiz("07", "generation")

# --- KV cache -------------------------------------------------------------------------------------------------
section_header(ch, "kv_cache")
param("kv_prompt", t("ch07.kv_default_prompt"), str)
st.text_input(t("ch07.kv_prompt"), key="kv_prompt", max_chars=5_000)
with friendly_errors():
    size = prefill_cache_size(lm, st.session_state["kv_prompt"])
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

st.subheader(t("ch07.kv_sweep"))
param("kv_counts", "16,64", str)
st.text_input(t("ch07.kv_counts"), key="kv_counts", help=t("ch07.kv_counts_help"))
if st.button(t("ch07.kv_run"), key="kv_run"):
    with friendly_errors():
        counts = parse_counts(st.session_state["kv_counts"])
        heavy_run("kv", lambda p, on: kv_bench(lm, counts, progress=p, on_result=on), ("ch07_kv", tuple(counts)))
rows, complete = last_rows("kv")
if rows:
    if not complete:
        st.warning(t("ch07.partial"))
    data = [r.as_dict() for r in rows]
    long = [
        {"new tokens": r["new_tokens"], "s": r[k], "run": t(f"ch07.{k}")}
        for r in data
        for k in ("with_cache_s", "without_cache_s")
    ]
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.line(long, "new tokens", "s", "run", t("ch07.kv_time_title")), width="stretch")
    c2.plotly_chart(charts.line(data, "new_tokens", "speedup", None, t("ch07.kv_speedup_title")), width="stretch")
    st.dataframe(pd.DataFrame(data), hide_index=True, width="stretch")
    st.caption(t("common.produced_by", model=MODEL, device=lm.device, source=lm.resolved.source))

st.subheader(t("ch07.kv_calc"))
clamped("kv_calc_tokens", 4096, 1, 131072, int)
param("kv_calc_batch", 1, int)
param("kv_calc_dtype", "fp16/bf16", str, choices=tuple(DTYPE_BYTES))
c1, c2, c3 = st.columns(3)
c1.slider(t("ch07.kv_calc_tokens"), 1, 131072, key="kv_calc_tokens")
c2.number_input(t("ch07.kv_calc_batch"), step=1, key="kv_calc_batch")
c3.selectbox(t("ch07.kv_calc_dtype"), list(DTYPE_BYTES), key="kv_calc_dtype")
with friendly_errors():
    calc = kv_calculator(
        st.session_state["kv_calc_tokens"],
        int(st.session_state["kv_calc_batch"]),
        DTYPE_BYTES[st.session_state["kv_calc_dtype"]],
    )
    st.plotly_chart(
        px.bar(
            calc,
            x="model",
            y="kv_gib",
            color="attention",
            log_y=True,
            title=t("ch07.kv_calc_title"),
            hover_data=["kv_heads", "heads", "layers", "head_dim"],
        ),
        width="stretch",
    )
    st.dataframe(
        pd.DataFrame(calc),
        hide_index=True,
        width="stretch",
        column_config={
            "kv_gib": st.column_config.NumberColumn(format="%.3f"),
            "mha_gib": st.column_config.NumberColumn(format="%.3f"),
            "saving_vs_mha": st.column_config.NumberColumn(format="percent"),
        },
    )
notice("common.notice", t("ch07.notice_kv"))
quiz("07", "kv_cache")

# --- GPU structure and batch size -----------------------------------------------------------------------------
section_header(ch, "batching")
gpus = {g["name"]: g for g in gpu_specs()}
param("bt_gpu", "NVIDIA A100 80GB SXM", str, choices=tuple(gpus))
param("bt_params", "7B", str, choices=("1B", "7B", "70B"))
param("bt_dtype", "fp16/bf16", str, choices=tuple(DTYPE_BYTES))
c1, c2, c3 = st.columns(3)
c1.selectbox("GPU", list(gpus), key="bt_gpu")
c2.selectbox(t("ch07.bt_params"), ["1B", "7B", "70B"], key="bt_params")
c3.selectbox(t("ch07.kv_calc_dtype"), list(DTYPE_BYTES), key="bt_dtype")
gpu = gpus[st.session_state["bt_gpu"]]
n_params = {"1B": 1e9, "7B": 7e9, "70B": 70e9}[st.session_state["bt_params"]]
roof = roofline(
    n_params,
    [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    gpu["peak_tflops"],
    gpu["bandwidth_tbs"],
    DTYPE_BYTES[st.session_state["bt_dtype"]],
)
ridge = ridge_point(gpu["peak_tflops"], gpu["bandwidth_tbs"])
fig = px.line(
    roof,
    x="batch",
    y="tokens_per_s",
    log_x=True,
    log_y=True,
    markers=True,
    color="bound",
    title=t("ch07.bt_roof_title", gpu=gpu["name"], params=st.session_state["bt_params"]),
)
st.plotly_chart(fig, width="stretch")
st.caption(t("ch07.bt_ridge", ridge=f"{ridge:.0f}", source=gpu["source"]))

st.subheader(t("ch07.bt_measured"))
param("bt_sizes", "1,2,4,8", str)
clamped("bt_tokens", 16, 1, 64, int)
c1, c2 = st.columns(2)
c1.text_input(t("ch07.bt_sizes"), key="bt_sizes")
c2.slider(t("ch07.bt_tokens"), 1, 64, key="bt_tokens")
if st.button(t("ch07.bt_run"), key="bt_run"):
    with friendly_errors():
        sizes = parse_batch_sizes(st.session_state["bt_sizes"])
        n_tok = st.session_state["bt_tokens"]
        st.session_state["bt_machine"] = measure_machine(str(lm.device))
        heavy_run(
            "bt",
            lambda p, on: batch_sweep(lm, sizes, n_tok, progress=p, on_result=on),
            ("ch07_batch", tuple(sizes), n_tok),
        )
rows, complete = last_rows("bt")
if rows:
    if not complete:
        st.warning(t("ch07.partial"))
    data = [r.as_dict() for r in rows]
    long = [
        {"batch": r["batch"], "tokens/s": r[k], "kind": t(f"ch07.{k}")}
        for r in data
        for k in ("tokens_per_s", "per_sequence_tokens_per_s")
    ]
    st.plotly_chart(charts.line(long, "batch", "tokens/s", "kind", t("ch07.bt_measured_title")), width="stretch")
    st.dataframe(pd.DataFrame(data), hide_index=True, width="stretch")
    machine = st.session_state.get("bt_machine")
    if machine is not None:
        st.caption(
            t(
                "ch07.bt_machine",
                gflops=f"{machine.matmul_gflops:.0f}",
                gbs=f"{machine.copy_gbs:.1f}",
                ridge=f"{machine.ridge:.0f}",
                threads=machine.threads,
                device=machine.device,
            )
        )
notice("common.notice", t("ch07.notice_batching"))
quiz("07", "batching")

# --- quantization with bitsandbytes ---------------------------------------------------------------------------
section_header(ch, "quantization")
texts = eval_texts()
with st.expander(t("ch07.q_texts")):
    for name in ("perplexity_ko", "perplexity_en"):
        st.markdown(f"**{name}** — {texts[name]['source']}")
        st.caption(texts[name]["text"][:400] + "…")
if st.button(t("ch07.q_run"), key="q_run"):
    with friendly_errors():
        heavy_run("q", lambda p, on: quant_bench(PRECISIONS, progress=p, on_result=on), ("ch07_quant", PRECISIONS))
rows, complete = last_rows("q")
if rows:
    if not complete:
        st.warning(t("ch07.partial"))
    rel = relative_to(rows)
    c1, c2, c3 = st.columns(3)
    c1.plotly_chart(px.bar(rel, x="precision", y="MB", title=t("ch07.q_mem_title"), text_auto=".0f"), width="stretch")
    c2.plotly_chart(
        px.bar(rel, x="precision", y="tokens_per_s", title=t("ch07.q_speed_title"), text_auto=".1f"), width="stretch"
    )
    ppl = [
        {"precision": r["precision"], "perplexity": r[k], "text": k.removeprefix("perplexity_")}
        for r in rel
        for k in ("perplexity_ko", "perplexity_en")
    ]
    c3.plotly_chart(charts.grouped_bars(ppl, "precision", "perplexity", "text", t("ch07.q_ppl_title")), width="stretch")
    st.dataframe(pd.DataFrame(rel), hide_index=True, width="stretch")
    st.markdown("**" + t("ch07.q_answers") + "**")
    st.dataframe(
        pd.DataFrame([{"precision": r.precision, "answer": r.answer} for r in rows]), hide_index=True, width="stretch"
    )
    st.caption(t("ch07.q_meta", model=MODEL))
notice("common.notice", t("ch07.notice_quantization"))
quiz("07", "quantization")

# --- GPTQ and AWQ on one layer --------------------------------------------------------------------------------
section_header(ch, "gptq_awq")
clamped("gq_layer", 2, 0, 29, int)
param("gq_proj", "q_proj", str, choices=PROJECTIONS)
param("gq_bits", 4, int, choices=(3, 4))
param("gq_group", 0, int, choices=(0, 64, 128))
c1, c2, c3, c4 = st.columns(4)
c1.slider(t("ch07.gq_layer"), 0, 29, key="gq_layer", help=t("ch07.gq_layer_help"))
c2.selectbox(t("ch07.gq_proj"), list(PROJECTIONS), key="gq_proj")
c3.selectbox(t("ch07.gq_bits"), [3, 4], key="gq_bits")
c4.selectbox(t("ch07.gq_group"), [0, 64, 128], key="gq_group", help=t("ch07.gq_group_help"))
if st.button(t("ch07.gq_run"), key="gq_run"):
    with friendly_errors():
        settings = (
            st.session_state["gq_layer"],
            st.session_state["gq_proj"],
            st.session_state["gq_bits"],
            st.session_state["gq_group"],
        )
        bar = st.progress(0.0)
        st.session_state["gq_result"] = shared(
            ("ch07_gptq_awq", *settings),
            lambda p: compare_methods(lm, calibration_texts(), heldout_texts(), *settings, progress=p),
            progress_callback(bar),
        )
        bar.empty()
gq = st.session_state.get("gq_result")
if gq is not None:
    err = [{"method": m, "error": v, "tokens": t("ch07.gq_heldout")} for m, v in gq.errors.items()]
    err += [{"method": m, "error": v, "tokens": t("ch07.gq_calib")} for m, v in gq.calib_errors.items()]
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.grouped_bars(err, "method", "error", "tokens", t("ch07.gq_err_title")), width="stretch")
    curve = [{"alpha": a, "error": e} for a, e in gq.awq_curve]
    c2.plotly_chart(
        charts.line(curve, "alpha", "error", None, t("ch07.gq_alpha_title", alpha=gq.awq_alpha)), width="stretch"
    )
    chan = [{"channel": i, "mean |x|": v} for i, v in enumerate(gq.channel_scale)]
    st.plotly_chart(px.bar(chan, x="channel", y="mean |x|", title=t("ch07.gq_channels_title")), width="stretch")
    rtn = gq.errors["RTN"]
    st.dataframe(
        pd.DataFrame(
            [
                {"method": m, "held-out output error": v, "vs RTN": v / rtn, "weight error": gq.weight_errors[m]}
                for m, v in gq.errors.items()
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        t(
            "ch07.gq_meta",
            layer=gq.layer,
            proj=gq.projection,
            shape=str(gq.shape),
            bits=gq.bits,
            calib=gq.calib_tokens,
            eval=gq.eval_tokens,
        )
    )
notice("common.notice", t("ch07.notice_gptq_awq"))
quiz("07", "gptq_awq")

# --- knowledge distillation -----------------------------------------------------------------------------------
section_header(ch, "distillation")
clamped("kd_epochs", 100, 10, 1000, int)
clamped("kd_temp", 1.0, 0.5, 10.0, float)
clamped("kd_alpha", 1.0, 0.0, 1.0, float)
c1, c2, c3 = st.columns(3)
c1.slider(t("ch07.kd_epochs"), 10, 1000, step=10, key="kd_epochs")
c2.slider(t("ch07.kd_temp"), 0.5, 10.0, step=0.5, key="kd_temp", help=t("ch07.kd_temp_help"))
c3.slider(t("ch07.kd_alpha"), 0.0, 1.0, step=0.1, key="kd_alpha", help=t("ch07.kd_alpha_help"))
kd_seed = seed("kd_seed")
if st.button(t("ch07.kd_run"), key="kd_run"):
    with friendly_errors():
        bar = st.progress(0.0)
        report = progress_callback(bar)
        data = shared(("ch07_teacher_targets",), lambda p: teacher_targets(lm, *distillation_docs()), report)
        st.session_state["kd_result"] = distill(
            lm,
            data,
            progress=report,
            epochs=st.session_state["kd_epochs"],
            temperature=st.session_state["kd_temp"],
            alpha=st.session_state["kd_alpha"],
            seed=kd_seed,
        )
        bar.empty()
kd = st.session_state.get("kd_result")
if kd is not None:
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
    c1, c2, c3 = st.columns(3)
    c1.plotly_chart(charts.line(hist, "epoch", "held-out accuracy", "student", t("ch07.kd_acc_title")), width="stretch")
    c2.plotly_chart(
        charts.line(hist, "epoch", "agreement with teacher", "student", t("ch07.kd_agree_title")), width="stretch"
    )
    c3.plotly_chart(charts.line(hist, "epoch", "held-out NLL", "student", t("ch07.kd_nll_title")), width="stretch")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "student": t(f"ch07.kd_{k}"),
                    "held-out accuracy": v.test_accuracy,
                    "agreement with teacher": v.test_agreement,
                    "held-out NLL": v.test_nll,
                }
                for k, v in kd.final.items()
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        t(
            "ch07.kd_meta",
            teacher=f"{kd.teacher_params:,}",
            student=f"{kd.student_params:,}",
            frozen=f"{kd.student_params_total - kd.student_params:,}",
            vocab=kd.vocab_size,
            train=kd.train_positions,
            test=kd.test_positions,
            teacher_acc=f"{kd.teacher_accuracy:.1%}",
            s=f"{kd.seconds:.1f}",
        )
    )
    for note in kd.notes:
        st.caption(note)
notice("common.notice", t("ch07.notice_distillation"))
quiz("07", "distillation")
show_code(ch)
