"""Chapter 8 — serving: batching, PagedAttention, FlashAttention, relative positions, speculative decoding,
offline and online serving. Every heavy run sits behind a button; the default page load is light."""

import streamlit as st

import engine.inference as inference
from engine.core import InputError
from engine.lm import alibi_view, rope_view
from engine.serving import MAX_CONCURRENCY, PROMPTS, backend_info, run_load_test
from ui import charts, serving_charts
from ui.cache import causal_lm
from ui.i18n import t
from ui.jobs import last_job, run_job, show_job_status
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, seed, show_code
from ui.serving_charts import light_or_button, pure, shipped
from ui.serving_charts import named_table as table
from ui.state import param

CHAT = "SmolLM2-135M-Instruct (chat)"
SS = st.session_state


def chat_model():
    """The shared `chat` model; remembers its device for the "produced by" captions."""
    lm = causal_lm("chat", t("common.loading_model"))
    SS["ch8_device"] = lm.device
    return lm


def produced_by(source: str) -> str:
    return t("common.produced_by", model=CHAT, device=SS.get("ch8_device", "cpu"), source=source)


def run_rows(key: str, slot: str, fn, *args, label: str = "", rows_to: str = "", **kwargs) -> bool:
    """run_job of fn(*args, progress=, should_stop=, **kwargs), `rows_to` naming fn's callback for finished rows; a
    finished run's result goes under `slot` (a Stop's rows are picked up by `kept`). True when it finished."""

    def work(progress, on_row, should_stop):
        rows = {rows_to: on_row} if rows_to else {}
        return fn(*args, progress=progress, should_stop=should_stop, **rows, **kwargs)

    job = run_job(key, work, label=label or t("ch8.running"))
    if job.complete and job.result:
        SS[slot] = job.result
    return job.complete


def kept(key: str, slot: str):
    """What the page shows under `slot`: the last full result, or the rows a stopped run had finished."""
    job = last_job(key)
    if job.status is not None and not job.complete and job.rows:
        SS[slot] = job.rows
        show_job_status(key)
    return SS.get(slot)


def batching_section(ch) -> None:
    section_header(ch, "batching")
    param("b_n", 12, int)
    param("b_rate", 0.5, float)
    param("b_max_batch", 4, int)
    param("b_wait", 1.0, float)
    c1, c2, c3, c4 = st.columns(4)
    c1.slider(t("ch8.b_requests"), 2, 40, key="b_n")
    c2.slider(t("ch8.b_rate"), 0.1, 10.0, step=0.1, key="b_rate", help=t("ch8.b_rate_help"))
    c3.slider(t("ch8.b_max_batch"), 1, 16, key="b_max_batch")
    c4.slider(t("ch8.b_wait"), 0.0, 10.0, step=0.5, key="b_wait", help=t("ch8.b_wait_help"))
    with c4:
        b_seed = seed("b_seed")
    with friendly_errors():
        cost = SS.get("ch8_costs") or inference.default_costs()
        bm1, bm2 = st.columns([3, 1])
        serving_charts.show_costs(cost, bm1)
        if bm2.button(t("ch8.measure_costs"), key="b_measure"):
            lm = chat_model()
            if run_rows("b_measure", "ch8_costs", inference.measure_costs, lm, label=t("ch8.measuring")):
                st.rerun()
        args = (SS["b_n"], SS["b_rate"], SS["b_max_batch"], SS["b_wait"])
        costs = (cost.prefill_base_s, cost.prefill_per_token_s, cost.decode_base_s, cost.decode_per_seq_s)
        key = ("ch08_policies", *args, *costs, cost.source, b_seed)
        cmp = pure(key, lambda: inference.compare_policies(*args, cost, seed=b_seed))
        st.caption("🧪 " + t("ch8.simulated"))
        table([{**m, "policy": t(f"ch8.policy_{m['policy']}")} for m in cmp.metrics])
        param("b_t", 0.0, float)
        SS["b_t"] = min(float(SS["b_t"]), round(cmp.horizon_s, 1))
        st.slider(t("ch8.b_time"), 0.0, max(0.1, round(cmp.horizon_s, 1)), step=0.1, key="b_t")
        serving_charts.show_policies(cmp, SS["b_t"])
        with st.expander(t("ch8.real_batch_title")):
            st.markdown(t("ch8.real_batch_help"))
            param("b_real_batch", 4, int, choices=(1, 2, 4, 8))
            st.select_slider(t("ch8.b_max_batch"), [1, 2, 4, 8], key="b_real_batch")
            if st.button(t("ch8.run_real_batch"), key="b_real"):
                lm = chat_model()
                with st.spinner(t("ch8.running")):
                    SS["ch8_real_batch"] = inference.real_static_batch(lm, SS["b_real_batch"], 32, 16, cost=cost)
            if "ch8_real_batch" in SS:
                table([SS["ch8_real_batch"]])
    notice("common.notice", t("ch8.notice_batching"))
    quiz("08", "batching")


def paged_attention_section(ch) -> None:
    section_header(ch, "paged_attention")
    param("pa_block", 4, int, choices=(2, 4, 8))
    param("pa_step", 1, int)
    pc1, pc2 = st.columns([1, 3])
    pc1.radio(t("ch8.pa_block"), [2, 4, 8], key="pa_block", horizontal=True)
    with friendly_errors():
        # 12 blocks tell the story for blocks of 4 and 8; blocks of 2 need 24 to get as far as copy-on-write
        block = SS["pa_block"]
        steps = pure(("ch08_scenario", block), lambda: inference.scenario_steps(block, max(12, 48 // block), 8))
        SS["pa_step"] = max(1, min(int(SS["pa_step"]), len(steps)))
        pc2.slider(t("ch8.pa_step"), 1, len(steps), key="pa_step")
        st.caption("🧪 " + t("ch8.simulated"))
        serving_charts.show_block_step(steps[SS["pa_step"] - 1], SS["pa_block"])

        st.subheader(t("ch8.pa_usage_title"))
        param("pa_trace", "ShareGPT", str, choices=("ShareGPT", "Alpaca"))
        param("pa_usage_block", 16, int, choices=(1, 8, 16, 32, 64, 128))
        u1, u2 = st.columns(2)
        u1.radio(t("ch8.pa_trace"), ["ShareGPT", "Alpaca"], key="pa_trace", horizontal=True)
        u2.select_slider(t("ch8.pa_block"), [1, 8, 16, 32, 64, 128], key="pa_usage_block")
        trace, ub = SS["pa_trace"], SS["pa_usage_block"]
        usage = pure(("ch08_usage", trace, ub), lambda: inference.usage_with_paper(trace, ub))
        charts.show(st, serving_charts.usage_chart(usage, trace), width="stretch")
        st.caption(t("ch8.pa_usage_caption", citation=inference.PAPER_CITATION))
        with st.expander(t("ch8.pa_real_title")):
            st.markdown(t("ch8.pa_real_help"))
            if st.button(t("ch8.pa_real_run"), key="pa_real"):
                SS["ch8_pa_real"] = inference.real_kv_check(chat_model(), block_size=SS["pa_block"])
            if "ch8_pa_real" in SS:
                r = SS["ch8_pa_real"]
                kv = {"diff": r["max_abs_diff"], "per_token": r["kv_bytes_per_token"]}
                st.write(t("ch8.pa_real_result", tokens=r["tokens"], table=r["block_table"], **kv))
    notice("common.notice", t("ch8.notice_paged"))
    quiz("08", "paged_attention")


def flash_attention_section(ch) -> None:
    section_header(ch, "flash_attention")
    param("fa_T", 48, int)
    param("fa_bq", 16, int, choices=(4, 8, 16, 32, 64))
    param("fa_bk", 16, int, choices=(4, 8, 16, 32, 64))
    param("fa_causal", True)
    f1, f2, f3, f4 = st.columns(4)
    f1.slider(t("ch8.fa_T"), 4, 256, key="fa_T")
    f2.select_slider(t("ch8.fa_bq"), [4, 8, 16, 32, 64], key="fa_bq")
    f3.select_slider(t("ch8.fa_bk"), [4, 8, 16, 32, 64], key="fa_bk")
    f4.toggle(t("ch8.fa_causal"), key="fa_causal")
    with friendly_errors():
        causal, shape = SS["fa_causal"], (SS["fa_T"], SS["fa_bq"], SS["fa_bk"])
        tiles = inference.tile_count(*shape, causal)
        check = light_or_button(
            ("ch08_flash_check", *shape, causal),
            tiles > 32,  # Python-level tiles: about 0.01-0.04 s each on 2 cores
            lambda p: inference.compare_on_random(shape[0], 32, *shape[1:], causal, progress=p),
            t("ch8.fa_heavy", tiles=tiles),
        )
        if check:
            serving_charts.show_flash_check(check)
        br, bc = inference.flash_block_sizes(64)
        rows = inference.traffic_table([256, 512, 1024, 2048, 4096, 8192], D=64, causal=causal)
        title = t("ch8.fa_hbm_chart", br=br, bc=bc)
        charts.show(st, serving_charts.hbm_chart(rows, title), width="stretch")
        with st.expander(t("ch8.fa_time_title"), expanded=False):
            st.markdown(t("ch8.fa_time_help"))
            if st.button(t("ch8.fa_time_run"), key="fa_run"):
                run_rows("fa", "ch8_sdpa", inference.sdpa_timing, [256, 1024, 2048], causal)
            if "ch8_sdpa" in SS:
                serving_charts.show_sdpa_timing(SS["ch8_sdpa"])
    notice("common.notice", t("ch8.notice_flash"))
    quiz("08", "flash_attention")


def positions_section(ch) -> None:
    section_header(ch, "positions")
    param("rp_heads", 8, int, choices=(4, 8, 12, 16))
    param("rp_train", 16, int)
    r1, r2 = st.columns(2)
    r1.select_slider(t("ch8.rp_heads"), [4, 8, 12, 16], key="rp_heads")
    r2.slider(t("ch8.rp_train"), 4, 64, key="rp_train")
    with friendly_errors():
        heads, train = SS["rp_heads"], SS["rp_train"]
        serving_charts.show_alibi(pure(("ch08_alibi", heads, train), lambda: alibi_view(heads, train)))
        serving_charts.show_rope(pure(("ch08_rope",), lambda: rope_view(64, 8192, base=100000.0)))
        with st.expander(t("ch8.rp_ppl_title")):
            st.markdown(t("ch8.rp_ppl_help"))
            if st.button(t("ch8.rp_ppl_run"), key="rp_run"):
                run_rows("rp", "ch8_ppl", inference.position_scaling_demo, chat_model())
            if rows := kept("rp", "ch8_ppl"):
                table([{**r, "setting": t(f"ch8.rp_setting_{r['setting']}")} for r in rows])
                st.caption(produced_by("transformers (in-process)"))
    notice("common.notice", t("ch8.notice_positions"))
    quiz("08", "positions")


def _numbers(text: str, cast, message: str) -> list:
    try:
        return [cast(x) for x in text.replace(";", ",").replace(" ", "").split(",") if x]
    except ValueError as exc:
        raise InputError(t(message)) from exc


def speculative_section(ch) -> None:
    section_header(ch, "speculative")
    param("sp_p", "0.5, 0.2, 0.2, 0.1", str)
    param("sp_q", "0.1, 0.4, 0.3, 0.2", str)
    param("sp_k", 2, int)
    param("sp_n", 5000, int, choices=(1000, 5000, 20000))
    sc1, sc2, sc3, sc4 = st.columns(4)
    sc1.text_input(t("ch8.sp_p"), key="sp_p", max_chars=300)
    sc2.text_input(t("ch8.sp_q"), key="sp_q", max_chars=300)
    sc3.slider(t("ch8.sp_k"), 1, 8, key="sp_k")
    sc4.select_slider(t("ch8.sp_n"), [1000, 5000, 20000], key="sp_n")
    with sc4:
        sp_seed = seed("sp_seed")
    with friendly_errors():
        p, q = (tuple(_numbers(SS[x], float, "ch8.sp_bad_list")) for x in ("sp_p", "sp_q"))
        n, k = SS["sp_n"], SS["sp_k"]
        toy = light_or_button(
            ("ch08_toy", p, q, n, k, sp_seed),
            n * k > 10_000,  # one Python loop per sample and draft
            lambda _: inference.toy_experiment(list(p), list(q), n, k, sp_seed),
            t("ch8.sp_heavy", n=n, k=k),
        )
        if toy:
            serving_charts.show_toy(toy)

    st.subheader(t("ch8.sp_real_title"))
    param("sp_prompt", t("ch8.sp_default_prompt"), str)
    param("sp_exit", 24, int)
    param("sp_real_k", 4, int)
    st.text_area(t("ch8.sp_prompt"), key="sp_prompt", height=110, max_chars=3000)
    rc1, rc2 = st.columns(2)
    rc1.slider(t("ch8.sp_exit"), 2, 29, key="sp_exit", help=t("ch8.sp_exit_help"))
    rc2.slider(t("ch8.sp_k"), 1, 8, key="sp_real_k")
    with friendly_errors():
        note = st.empty()
        if st.button(t("ch8.sp_real_run"), key="sp_run"):
            settings = {"max_new_tokens": 32, "k": SS["sp_real_k"], "exit_layers": SS["sp_exit"]}
            run_rows("sp", "ch8_spec", inference.compare_methods, chat_model(), SS["sp_prompt"], **settings)
        if rows := kept("sp", "ch8_spec") or shipped(note, "speculative", SS["sp_prompt"]):
            serving_charts.show_speculative(rows, produced_by("transformers (in-process)"))
    notice("common.notice", t("ch8.notice_speculative"))
    quiz("08", "speculative")


def serving_section(ch) -> None:
    section_header(ch, "serving")
    st.subheader(t("ch8.offline_title"))
    param("sv_off_n", 8, int)
    param("sv_off_tokens", 24, int)
    o1, o2 = st.columns(2)
    o1.slider(t("ch8.sv_off_n"), 1, 16, key="sv_off_n")
    o2.slider(t("common.max_tokens"), 1, 64, key="sv_off_tokens")
    with friendly_errors():
        note = st.empty()
        if st.button(t("ch8.sv_off_run"), key="sv_off_run"):
            lm = chat_model()
            prompts, n_tok = PROMPTS[: SS["sv_off_n"]], SS["sv_off_tokens"]
            label = f"{t('ch8.sv_batch_one')} → {t('ch8.sv_batch_all')}"
            run_rows(
                "sv_off", "ch8_offline", inference.offline_batches, lm, prompts, n_tok, label=label, rows_to="on_row"
            )
        if rows := kept("sv_off", "ch8_offline") or shipped(note, "offline"):
            serving_charts.show_offline(rows, PROMPTS, produced_by("transformers (in-process, greedy)"))

    st.subheader(t("ch8.online_title"))
    info = backend_info(check=False)
    url = info.get("url") or t("backend.not_started")
    st.caption(t("ch8.sv_target", url=url, model=info["model"], tier=info["tier"]))
    param("sv_levels", "1,4,8", str)
    param("sv_requests", 16, int)
    param("sv_tokens", 32, int)
    l1, l2, l3 = st.columns(3)
    l1.text_input(t("ch8.sv_levels"), key="sv_levels", max_chars=60, help=t("ch8.sv_levels_help", max=MAX_CONCURRENCY))
    l2.slider(t("ch8.sv_requests"), 1, 64, key="sv_requests")
    l3.slider(t("common.max_tokens"), 1, 256, key="sv_tokens")
    note, run_clicked = st.empty(), st.button(t("ch8.sv_run"), key="sv_run", type="primary")  # note: above it
    with friendly_errors():
        if run_clicked:
            levels = _numbers(SS["sv_levels"], int, "ch8.sv_bad_levels")
            SS.pop("ch8_load", None)
            limits = {"requests": SS["sv_requests"], "max_tokens": SS["sv_tokens"]}
            run_rows("sv", "ch8_load", run_load_test, levels, rows_to="on_level", **limits)
        if rows := kept("sv", "ch8_load") or shipped(note, "load"):
            serving_charts.show_load_test(rows)
        st.markdown(t("ch8.sv_vllm"))
    notice("common.notice", t("ch8.notice_serving"))
    quiz("08", "serving")


ch = chapter_header("08")
batching_section(ch)
paged_attention_section(ch)
flash_attention_section(ch)
positions_section(ch)
speculative_section(ch)
serving_section(ch)
show_code(ch)
