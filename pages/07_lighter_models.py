"""Chapter 7 — lighter, faster models: decoding, the KV cache, batch size, quantization, GPTQ/AWQ, distillation."""

import streamlit as st

import engine.compression as compression
import engine.inference as inference
from ui import charts, charts_lighter
from ui.cache import cached, causal_lm
from ui.i18n import t
from ui.jobs import last_job, run_job, show_job_status
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, seed, show_code
from ui.state import clamped, param

MODEL = "SmolLM2-135M-Instruct (chat)"


def job_rows(key: str) -> list:
    """The rows of the last run of a job: all of them once it finished, those finished before a Stop otherwise."""
    job = last_job(key)
    rows = (job.result if job.complete else job.rows) or []
    if rows:
        show_job_status(key)
    return rows


def generation_section(ch, lm) -> None:
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
    ss = st.session_state
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
        strategy = ss["gen_strategy"]
        st.number_input(t("common.max_tokens"), step=1, key="gen_max", help=t("ch07.max_tokens_help"))
        gen_seed = 0
        if strategy == "sample":
            st.number_input(t("common.temperature"), step=0.1, key="gen_temp", help=t("ch07.temp_help"))
            st.number_input(t("ch07.top_k"), step=1, key="gen_topk", help=t("ch07.top_k_help"))
            st.number_input(t("ch07.top_p"), step=0.05, key="gen_topp", help=t("ch07.top_p_help"))
            gen_seed = seed("gen_seed")
        if strategy == "beam":
            st.number_input(t("ch07.beams"), step=1, key="gen_beams")
        st.number_input(t("ch07.rep_penalty"), step=0.1, key="gen_rep", help=t("ch07.rep_help"))
    slot = st.empty()
    if st.button(t("ch07.generate"), key="gen_run", type="primary"):
        with friendly_errors():
            cfg = inference.DecodingConfig(
                strategy,
                int(ss["gen_max"]),
                float(ss["gen_temp"]),
                int(ss["gen_topk"]),
                float(ss["gen_topp"]),
                float(ss["gen_rep"]),
                int(ss["gen_beams"]),
                seed=gen_seed,
            )
            prompt, template = ss["gen_prompt"], ss["gen_template"]
            job = run_job(
                "gen",
                lambda p, on_row, stop: inference.generate(
                    lm, prompt, cfg, use_chat_template=template, progress=p, should_stop=stop
                ),
            )
            ss["gen_result"] = job.result
    result = charts_lighter.own_or_shipped(ss.get("gen_result"), "generation", slot, prompt=ss["gen_prompt"])
    if result is not None:
        charts_lighter.show_generation(result, MODEL, lm.device)
    notice("common.notice", t("ch07.notice_generation"))
    quiz("07", "generation")


def kv_cache_section(ch, lm) -> None:
    section_header(ch, "kv_cache")
    param("kv_prompt", t("ch07.kv_default_prompt"), str)
    st.text_input(t("ch07.kv_prompt"), key="kv_prompt", max_chars=5_000)
    with friendly_errors():
        prompt = st.session_state["kv_prompt"]  # one forward pass per prompt, not one per rerun of the page
        size = cached(("ch07_prefill", prompt), lambda _: inference.prefill_cache_size(lm, prompt), t("ch07.kv_prompt"))
        charts_lighter.show_cache_size(size)

    st.subheader(t("ch07.kv_sweep"))
    param("kv_counts", "16,64", str)
    st.text_input(t("ch07.kv_counts"), key="kv_counts", help=t("ch07.kv_counts_help"))
    slot = st.empty()
    if st.button(t("ch07.kv_run"), key="kv_run"):
        with friendly_errors():
            counts = inference.parse_counts(st.session_state["kv_counts"])
            run_job(
                "kv",
                lambda p, on_row, stop: inference.kv_bench(lm, counts, progress=p, should_stop=stop, on_result=on_row),
                shared_key=("ch07_kv", tuple(counts)),
            )
    if rows := charts_lighter.own_or_shipped(job_rows("kv"), "kv", slot):
        data = [r.as_dict() for r in rows]
        c1, c2 = st.columns(2)
        charts.show(c1, charts_lighter.kv_times(data), width="stretch")
        charts.show(c2, charts_lighter.kv_speedup(data), width="stretch")
        charts_lighter.named_table(data)
        st.caption(t("common.produced_by", model=MODEL, device=lm.device, source=lm.resolved.source))

    st.subheader(t("ch07.kv_calc"))
    clamped("kv_calc_tokens", 4096, 1, 131072, int)
    param("kv_calc_batch", 1, int)
    param("kv_calc_dtype", "fp16/bf16", str, choices=tuple(inference.DTYPE_BYTES))
    c1, c2, c3 = st.columns(3)
    c1.slider(t("ch07.kv_calc_tokens"), 1, 131072, key="kv_calc_tokens")
    c2.number_input(t("ch07.kv_calc_batch"), step=1, key="kv_calc_batch")
    c3.selectbox(t("ch07.kv_calc_dtype"), list(inference.DTYPE_BYTES), key="kv_calc_dtype")
    with friendly_errors():
        ss = st.session_state
        calc = inference.kv_calculator(
            ss["kv_calc_tokens"], int(ss["kv_calc_batch"]), inference.DTYPE_BYTES[ss["kv_calc_dtype"]]
        )
        charts_lighter.show_kv_calculator(calc)
    notice("common.notice", t("ch07.notice_kv"))
    quiz("07", "kv_cache")


def batching_section(ch, lm) -> None:
    section_header(ch, "batching")
    gpus = [g["name"] for g in inference.gpu_specs()]
    param("bt_gpu", "NVIDIA A100 80GB SXM", str, choices=tuple(gpus))
    param("bt_params", "7B", str, choices=tuple(inference.MODEL_SIZES))
    param("bt_dtype", "fp16/bf16", str, choices=tuple(inference.DTYPE_BYTES))
    c1, c2, c3 = st.columns(3)
    c1.selectbox("GPU", gpus, key="bt_gpu")
    c2.selectbox(t("ch07.bt_params"), list(inference.MODEL_SIZES), key="bt_params")
    c3.selectbox(t("ch07.kv_calc_dtype"), list(inference.DTYPE_BYTES), key="bt_dtype")
    roof = inference.roofline_view(
        st.session_state["bt_gpu"], st.session_state["bt_params"], st.session_state["bt_dtype"]
    )
    charts.show(st, charts_lighter.roofline(roof), width="stretch")
    st.caption(t("ch07.bt_ridge", ridge=f"{roof.ridge:.0f}", source=roof.gpu["source"]))

    st.subheader(t("ch07.bt_measured"))
    param("bt_sizes", "1,2,4,8", str)
    clamped("bt_tokens", 16, 1, 64, int)
    c1, c2 = st.columns(2)
    c1.text_input(t("ch07.bt_sizes"), key="bt_sizes")
    c2.slider(t("ch07.bt_tokens"), 1, 64, key="bt_tokens")
    slot = st.empty()
    if st.button(t("ch07.bt_run"), key="bt_run"):
        with friendly_errors():
            sizes = inference.parse_batch_sizes(st.session_state["bt_sizes"])
            n_tok = st.session_state["bt_tokens"]
            st.session_state["bt_machine"] = inference.measure_machine(str(lm.device))
            run_job(
                "bt",
                lambda p, on_row, stop: inference.batch_sweep(
                    lm, sizes, n_tok, progress=p, should_stop=stop, on_result=on_row
                ),
                shared_key=("ch07_batch", tuple(sizes), n_tok),
            )
    rows, m = job_rows("bt"), st.session_state.get("bt_machine")
    if not rows and (shipped := charts_lighter.own_or_shipped(None, "batch", slot)):
        rows, m = shipped["rows"], shipped["machine"]
    if rows:
        data = [r.as_dict() for r in rows]
        charts.show(st, charts_lighter.batch_measured(data), width="stretch")
        charts_lighter.named_table(data)
        if m is not None:
            gflops, gbs, ridge = f"{m.matmul_gflops:.0f}", f"{m.copy_gbs:.1f}", f"{m.ridge:.0f}"
            st.caption(t("ch07.bt_machine", gflops=gflops, gbs=gbs, ridge=ridge, threads=m.threads, device=m.device))
    notice("common.notice", t("ch07.notice_batching"))
    quiz("07", "batching")


def quantization_section(ch) -> None:
    section_header(ch, "quantization")
    texts = compression.eval_texts()
    with st.expander(t("ch07.q_texts")):
        for name in ("perplexity_ko", "perplexity_en"):
            st.markdown(f"**{name}** — {texts[name]['source']}")
            st.caption(texts[name]["text"][:400] + "…")
    slot = st.empty()
    if st.button(t("ch07.q_run"), key="q_run"):
        with friendly_errors():
            run_job(
                "q",
                lambda p, on_row, stop: compression.quant_bench(
                    compression.PRECISIONS, progress=p, should_stop=stop, on_result=on_row
                ),
                shared_key=("ch07_quant", compression.PRECISIONS),
            )
    if rows := charts_lighter.own_or_shipped(job_rows("q"), "quant", slot):
        rel = compression.relative_to(rows)
        for col, fig in zip(st.columns(3), charts_lighter.quantization(rel), strict=True):
            charts.show(col, fig, width="stretch")
        charts_lighter.named_table(rel)
        st.markdown("**" + t("ch07.q_answers") + "**")
        charts_lighter.named_table([{"precision": r.precision, "answer": r.answer} for r in rows])
        st.caption(t("ch07.q_meta", model=MODEL))
    notice("common.notice", t("ch07.notice_quantization"))
    quiz("07", "quantization")


def gptq_awq_section(ch, lm) -> None:
    section_header(ch, "gptq_awq")
    clamped("gq_layer", 2, 0, 29, int)
    param("gq_proj", "q_proj", str, choices=compression.PROJECTIONS)
    param("gq_bits", 4, int, choices=(3, 4))
    param("gq_group", 0, int, choices=(0, 64, 128))
    c1, c2, c3, c4 = st.columns(4)
    c1.slider(t("ch07.gq_layer"), 0, 29, key="gq_layer", help=t("ch07.gq_layer_help"))
    c2.selectbox(t("ch07.gq_proj"), list(compression.PROJECTIONS), key="gq_proj")
    c3.selectbox(t("ch07.gq_bits"), [3, 4], key="gq_bits")
    c4.selectbox(t("ch07.gq_group"), [0, 64, 128], key="gq_group", help=t("ch07.gq_group_help"))
    slot = st.empty()
    if st.button(t("ch07.gq_run"), key="gq_run"):
        with friendly_errors():
            settings = tuple(st.session_state[k] for k in ("gq_layer", "gq_proj", "gq_bits", "gq_group"))
            st.session_state["gq_result"] = cached(
                ("ch07_gptq_awq", *settings),
                lambda p: compression.compare_methods(
                    lm, compression.calibration_texts(), compression.heldout_texts(), *settings, progress=p
                ),
                t("ch07.gq_run"),
            )
    gq = charts_lighter.own_or_shipped(st.session_state.get("gq_result"), "gptq_awq", slot)
    if gq is not None:
        charts_lighter.show_gptq_awq(gq, inference.method_table(gq.errors, gq.weight_errors))
    notice("common.notice", t("ch07.notice_gptq_awq"))
    quiz("07", "gptq_awq")


def distillation_section(ch, lm) -> None:
    section_header(ch, "distillation")
    clamped("kd_epochs", 100, 10, 1000, int)
    clamped("kd_temp", 1.0, 0.5, 10.0, float)
    clamped("kd_alpha", 1.0, 0.0, 1.0, float)
    c1, c2, c3 = st.columns(3)
    c1.slider(t("ch07.kd_epochs"), 10, 1000, step=10, key="kd_epochs")
    c2.slider(t("ch07.kd_temp"), 0.5, 10.0, step=0.5, key="kd_temp", help=t("ch07.kd_temp_help"))
    c3.slider(t("ch07.kd_alpha"), 0.0, 1.0, step=0.1, key="kd_alpha", help=t("ch07.kd_alpha_help"))
    kd_seed = seed("kd_seed")
    slot = st.empty()
    if st.button(t("ch07.kd_run"), key="kd_run"):
        with friendly_errors():
            ss = st.session_state
            data = cached(
                ("ch07_teacher_targets",),
                lambda p: compression.teacher_targets(lm, *compression.distillation_docs()),
                t("ch07.kd_run"),
            )
            settings = {
                "epochs": ss["kd_epochs"],
                "temperature": ss["kd_temp"],
                "alpha": ss["kd_alpha"],
                "seed": kd_seed,
            }
            job = run_job(
                "kd", lambda p, on_row, stop: compression.distill(lm, data, progress=p, should_stop=stop, **settings)
            )
            if job.complete:
                ss["kd_result"] = job.result
    kd = charts_lighter.own_or_shipped(st.session_state.get("kd_result"), "distillation", slot)
    if kd is not None:
        charts_lighter.show_distillation(kd)
    notice("common.notice", t("ch07.notice_distillation"))
    quiz("07", "distillation")


ch = chapter_header("07")
lm = None
with friendly_errors():
    lm = causal_lm("chat", t("common.loading_model"))
generation_section(ch, lm)
kv_cache_section(ch, lm)
batching_section(ch, lm)
quantization_section(ch)
gptq_awq_section(ch, lm)
distillation_section(ch, lm)
show_code(ch)
