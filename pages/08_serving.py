"""Chapter 8 — serving: batching, PagedAttention, FlashAttention, relative positions, speculative decoding,
offline and online serving. Every heavy run sits behind a button; the default page load is light."""

import pandas as pd
import streamlit as st
import torch

from engine.core import Cancelled
from engine.inference import (
    COPY_PROMPT,
    PAPER_CITATION,
    PAPER_FIG2,
    POLICIES,
    allocation_usage,
    batched_generate,
    compare_methods,
    compare_on_random,
    default_costs,
    flash_block_sizes,
    make_workload,
    measure_costs,
    measure_sdpa_memory,
    real_kv_check,
    real_static_batch,
    scenario_steps,
    simulate,
    snapshot,
    synthetic_lengths,
    time_sdpa_backends,
    toy_experiment,
    traffic_table,
)
from engine.lm import (
    alibi_bias,
    alibi_slopes,
    alibi_weights_by_distance,
    position_scaling_perplexity,
    rope_angle_table,
    rope_unseen_pairs,
)
from engine.serving import MAX_CONCURRENCY, PROMPTS, backend_info, run_load_test
from ui import charts, serving_charts
from ui.cache import causal_lm, shared
from ui.i18n import t
from ui.layout import chapter_header, friendly_errors, notice, progress_callback, quiz, section_header, seed, show_code
from ui.state import param

ch = chapter_header("08")
CHAT = "SmolLM2-135M-Instruct (chat)"
SS = st.session_state


def run_with_progress(label: str, fn, *args, **kwargs):
    """Call an engine function with a progress bar; a cancel keeps whatever partial rows the engine attached."""
    bar = st.progress(0.0, text=label)
    try:
        return fn(*args, progress=progress_callback(bar), **kwargs)
    except Cancelled as exc:
        st.warning(t("ch8.cancelled"))
        return getattr(exc, "partial", None)
    finally:
        bar.empty()


def chat_model():
    """The shared `chat` model; remembers its device for the "produced by" captions."""
    lm = causal_lm("chat", t("common.loading_model"))
    SS["ch8_device"] = lm.device
    return lm


def produced_by(source: str) -> None:
    st.caption(t("common.produced_by", model=CHAT, device=SS.get("ch8_device", "cpu"), source=source))


def stop_button(key: str) -> None:
    """Any click reruns the page, which interrupts a running job; finished rows are kept in the session."""
    st.button(t("ch8.stop"), key=key, help=t("ch8.stop_help"))


def sim_label() -> None:
    st.caption("🧪 " + t("ch8.simulated"))


# --- static vs dynamic vs continuous batching ------------------------------------------------------------------
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
    cost = SS.get("ch8_costs") or default_costs()
    bm1, bm2 = st.columns([3, 1])
    bm1.caption(
        t(
            "ch8.costs_line",
            pa=cost.prefill_base_s * 1000,
            pb=cost.prefill_per_token_s * 1000,
            da=cost.decode_base_s * 1000,
            db=cost.decode_per_seq_s * 1000,
            source=cost.source,
        )
    )
    if cost.samples:
        with bm1.expander(t("ch8.cost_samples")):
            st.dataframe(pd.DataFrame(cost.samples), hide_index=True, width="stretch")
    if bm2.button(t("ch8.measure_costs"), key="b_measure"):
        lm = chat_model()
        measured = run_with_progress(t("ch8.measuring"), measure_costs, lm)
        if measured is not None:
            SS["ch8_costs"] = cost = measured
            st.rerun()
    work = make_workload(SS["b_n"], SS["b_rate"], seed=b_seed)
    results = {p: simulate(work, p, cost, SS["b_max_batch"], SS["b_wait"]) for p in POLICIES}
    sim_label()
    metrics = [results[p].metrics() for p in POLICIES]
    st.dataframe(pd.DataFrame(metrics).round(3), hide_index=True, width="stretch")
    horizon = max(m["makespan_s"] for m in metrics) + work[0].arrival_s
    param("b_t", 0.0, float)
    SS["b_t"] = min(float(SS["b_t"]), round(horizon, 1))
    st.slider(t("ch8.b_time"), 0.0, max(0.1, round(horizon, 1)), step=0.1, key="b_t")
    labels = {k: t(f"ch8.phase_{k}") for k in serving_charts.PHASE_COLORS}
    tabs = st.tabs([t(f"ch8.policy_{p}") for p in POLICIES])
    for tab, p in zip(tabs, POLICIES, strict=True):
        with tab:
            g1, g2 = st.columns([3, 2])
            g1.plotly_chart(
                serving_charts.gantt(results[p].segments, len(work), t(f"ch8.policy_{p}"), SS["b_t"], labels),
                width="stretch",
            )
            snap = pd.DataFrame(snapshot(results[p], SS["b_t"]))
            snap["status"] = [t(f"ch8.status_{status}") for status in snap["status"].str.replace(" ", "_")]
            g2.dataframe(snap, hide_index=True, width="stretch", height=38 * min(len(work), 12) + 40)
            with g2.expander(t("ch8.events")):
                st.text("\n".join(f"{ts:7.2f}s  {msg}" for ts, msg in results[p].events[:200]))
    with st.expander(t("ch8.real_batch_title")):
        st.markdown(t("ch8.real_batch_help"))
        param("b_real_batch", 4, int, choices=(1, 2, 4, 8))
        st.select_slider(t("ch8.b_max_batch"), [1, 2, 4, 8], key="b_real_batch")
        if st.button(t("ch8.run_real_batch"), key="b_real"):
            lm = chat_model()
            with st.spinner(t("ch8.running")):
                SS["ch8_real_batch"] = real_static_batch(lm, SS["b_real_batch"], 32, 16, cost=cost)
        if "ch8_real_batch" in SS:
            st.dataframe(pd.DataFrame([SS["ch8_real_batch"]]).round(3), hide_index=True, width="stretch")
notice("common.notice", t("ch8.notice_batching"))
quiz("08", "batching")

# --- PagedAttention ----------------------------------------------------------------------------------------------
section_header(ch, "paged_attention")
param("pa_block", 4, int, choices=(2, 4, 8))
param("pa_step", 1, int)
pc1, pc2 = st.columns([1, 3])
pc1.radio(t("ch8.pa_block"), [2, 4, 8], key="pa_block", horizontal=True)
with friendly_errors():
    steps = scenario_steps(block_size=SS["pa_block"], num_blocks=12, num_cpu_blocks=8)
    SS["pa_step"] = max(1, min(int(SS["pa_step"]), len(steps)))
    pc2.slider(t("ch8.pa_step"), 1, len(steps), key="pa_step")
    step = steps[SS["pa_step"] - 1]
    sim_label()
    step_key = step["key"]
    st.markdown(f"**{step['step']}. {t(f'ch8.pa_{step_key}', **step['fmt'])}**")
    s1, s2 = st.columns([3, 2])
    s1.plotly_chart(serving_charts.block_grid(step, SS["pa_block"], t("ch8.pa_grid")), width="stretch")
    with s2:
        st.markdown("**" + t("ch8.pa_tables") + "**")
        tables = [{"seq": s, "tokens": step["lengths"][s], "block table": str(tb)} for s, tb in step["tables"].items()]
        st.dataframe(pd.DataFrame(tables), hide_index=True, width="stretch")
        if step["swapped"]:
            st.caption(t("ch8.pa_swapped", seqs=", ".join(f"{s} → CPU {c}" for s, c in step["swapped"].items())))
        st.metric(t("ch8.pa_waste"), f"{step['waste_slots']} / {step['allocated_blocks'] * SS['pa_block']}")
        st.caption(t("ch8.pa_shared", logical=step["logical_tokens"], stored=step["stored_tokens"]))
        with st.expander(t("ch8.events")):
            st.text("\n".join(step["log"]))

    st.subheader(t("ch8.pa_usage_title"))
    param("pa_trace", "ShareGPT", str, choices=("ShareGPT", "Alpaca"))
    param("pa_usage_block", 16, int, choices=(1, 8, 16, 32, 64, 128))
    u1, u2 = st.columns(2)
    u1.radio(t("ch8.pa_trace"), ["ShareGPT", "Alpaca"], key="pa_trace", horizontal=True)
    u2.select_slider(t("ch8.pa_block"), [1, 8, 16, 32, 64, 128], key="pa_usage_block")
    trace, ub = SS["pa_trace"], SS["pa_usage_block"]
    usage = shared(
        ("ch08_usage", trace, ub),
        lambda _: allocation_usage(synthetic_lengths(300, trace, 2048, seed=0), 2048, ub),
        lambda *_: None,
    )
    paper = [
        {
            "policy": f"📄 {k}",
            "token_states_pct": v["token_states"],
            "reservation_pct": v["reservation"],
            "internal_frag_pct": v["internal_frag"],
            "external_frag_pct": v["external_frag"],
        }
        for k, v in PAPER_FIG2.items()
    ]
    ulabels = {
        k: t(f"ch8.usage_{k}")
        for k in ("token_states_pct", "reservation_pct", "internal_frag_pct", "external_frag_pct")
    }
    st.plotly_chart(
        serving_charts.stacked_usage(usage + paper, t("ch8.pa_usage_chart", trace=trace), ulabels), width="stretch"
    )
    st.caption(t("ch8.pa_usage_caption", citation=PAPER_CITATION))
    with st.expander(t("ch8.pa_real_title")):
        st.markdown(t("ch8.pa_real_help"))
        if st.button(t("ch8.pa_real_run"), key="pa_real"):
            lm = chat_model()
            SS["ch8_pa_real"] = real_kv_check(lm, block_size=SS["pa_block"])
        if "ch8_pa_real" in SS:
            r = SS["ch8_pa_real"]
            st.write(
                t(
                    "ch8.pa_real_result",
                    tokens=r["tokens"],
                    table=r["block_table"],
                    diff=r["max_abs_diff"],
                    per_token=r["kv_bytes_per_token"],
                )
            )
notice("common.notice", t("ch8.notice_paged"))
quiz("08", "paged_attention")

# --- FlashAttention ----------------------------------------------------------------------------------------------
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
    cmp = compare_on_random(SS["fa_T"], 32, SS["fa_bq"], SS["fa_bk"], SS["fa_causal"])
    m1, m2, m3 = st.columns(3)
    m1.metric(t("ch8.fa_diff_scratch"), f"{cmp['max_diff_scratch']:.1e}")
    m2.metric(t("ch8.fa_diff_torch"), f"{cmp['max_diff_torch']:.1e}")
    m3.metric(t("ch8.fa_traffic_ratio"), f"{cmp['traffic_ratio']:.2f}×")
    traffic = [{**r, "read": str(r["read"]), "written": str(r["written"])} for r in cmp["traffic"]]
    st.dataframe(pd.DataFrame(traffic), hide_index=True, width="stretch")
    st.caption(t("ch8.fa_elements"))
    br, bc = flash_block_sizes(64)
    rows = traffic_table([256, 512, 1024, 2048, 4096, 8192], D=64, causal=SS["fa_causal"])
    st.plotly_chart(
        charts.line(rows, "T", "total_bytes", "method", t("ch8.fa_hbm_chart", br=br, bc=bc), log_y=True),
        width="stretch",
    )
    with st.expander(t("ch8.fa_time_title"), expanded=False):
        st.markdown(t("ch8.fa_time_help"))
        stop_button("fa_stop")
        if st.button(t("ch8.fa_time_run"), key="fa_run"):
            rows_t = run_with_progress(t("ch8.running"), time_sdpa_backends, [256, 1024, 2048], causal=SS["fa_causal"])
            mem = measure_sdpa_memory(1024, causal=SS["fa_causal"])
            if rows_t:
                SS["ch8_sdpa"] = {
                    "rows": rows_t,
                    "mem": mem,
                    "threads": torch.get_num_threads(),
                    "torch": torch.__version__,
                }
        if "ch8_sdpa" in SS:
            res = SS["ch8_sdpa"]
            ok = [r for r in res["rows"] if r.get("ms") is not None]
            st.plotly_chart(
                charts.grouped_bars(ok, "T", "ms", "implementation", t("ch8.fa_time_chart"), log_y=True),
                width="stretch",
            )
            st.dataframe(pd.DataFrame(res["mem"]), hide_index=True, width="stretch")
            st.caption(t("ch8.fa_time_caption", torch=res["torch"], threads=res["threads"]))
notice("common.notice", t("ch8.notice_flash"))
quiz("08", "flash_attention")

# --- relative positions: ALiBi and RoPE --------------------------------------------------------------------------
section_header(ch, "positions")
param("rp_heads", 8, int, choices=(4, 8, 12, 16))
param("rp_train", 16, int)
r1, r2 = st.columns(2)
r1.select_slider(t("ch8.rp_heads"), [4, 8, 12, 16], key="rp_heads")
r2.slider(t("ch8.rp_train"), 4, 64, key="rp_train")
with friendly_errors():
    H, L = SS["rp_heads"], SS["rp_train"]
    bias = alibi_bias(H, 2 * L)
    head = 0
    a1, a2 = st.columns(2)
    a1.plotly_chart(
        charts.heatmap(
            bias[head].clamp_min(-20).tolist(),
            [str(i) for i in range(2 * L)],
            title=t("ch8.rp_alibi", slope=float(alibi_slopes(H)[head]), L=L),
            colorscale="Viridis",
        ),
        width="stretch",
    )
    w = alibi_weights_by_distance(H, 2 * L)  # (H, 2L)
    wrows = [
        {"key": j, "weight": float(w[h, j]), "head": f"h{h} (m={float(alibi_slopes(H)[h]):.3f})"}
        for h in range(0, H, max(1, H // 4))
        for j in range(2 * L)
    ]
    a2.plotly_chart(charts.line(wrows, "key", "weight", "head", t("ch8.rp_alibi_weights", L=L)), width="stretch")
    train_len = 8192
    pairs = rope_unseen_pairs(64, train_len, base=100000.0)
    unseen = sum(p["unseen_beyond"] for p in pairs)
    angles = rope_angle_table(64, 2 * train_len, base=100000.0)[:: 2 * train_len // 128]  # (128, 32) sampled rows
    b1, b2 = st.columns(2)
    b1.plotly_chart(
        charts.heatmap(
            angles.T.tolist(),
            [str(i * (2 * train_len // 128)) for i in range(angles.shape[0])],
            [str(i) for i in range(angles.shape[1])],
            t("ch8.rp_rope_angles", L=train_len),
            colorscale="Twilight",
        ),
        width="stretch",
    )
    turns = [{"pair": p["pair"], "turns": p["turns_in_training"]} for p in pairs]
    b2.plotly_chart(
        charts.line(turns, "pair", "turns", title=t("ch8.rp_turns", L=train_len), log_y=True), width="stretch"
    )
    st.caption(t("ch8.rp_unseen", unseen=unseen, total=len(pairs), L=train_len))
    with st.expander(t("ch8.rp_ppl_title")):
        st.markdown(t("ch8.rp_ppl_help"))
        stop_button("rp_stop")
        if st.button(t("ch8.rp_ppl_run"), key="rp_run"):
            lm = chat_model()
            text = "\n\n".join([*PROMPTS, COPY_PROMPT, *PROMPTS])
            rows_p = run_with_progress(
                t("ch8.running"),
                position_scaling_perplexity,
                lm,
                text,
                scales=(0.5, 2.0, 4.0, 16.0, 64.0),
                max_tokens=192,
            )
            if rows_p:
                SS["ch8_ppl"] = rows_p
        if "ch8_ppl" in SS:
            df = pd.DataFrame(SS["ch8_ppl"])
            st.dataframe(df.round(3), hide_index=True, width="stretch")
            produced_by("transformers (in-process)")
notice("common.notice", t("ch8.notice_positions"))
quiz("08", "positions")

# --- speculative decoding ----------------------------------------------------------------------------------------
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

    def _floats(text: str) -> list[float]:
        try:
            return [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
        except ValueError as exc:
            raise ValueError(t("ch8.sp_bad_list")) from exc

    toy = toy_experiment(_floats(SS["sp_p"]), _floats(SS["sp_q"]), SS["sp_n"], SS["sp_k"], sp_seed)
    series = {
        t("ch8.sp_target"): toy["target"],
        t("ch8.sp_draft"): toy["draft"],
        t("ch8.sp_spec"): toy["speculative_freq"],
    }
    tc1, tc2 = st.columns([3, 2])
    tc1.plotly_chart(serving_charts.dist_bars(toy["tokens"], series, t("ch8.sp_toy_chart")), width="stretch")
    tc2.metric(t("ch8.sp_accept"), f"{toy['acceptance_measured']:.3f}", help=t("ch8.sp_accept_help"))
    tc2.caption(t("ch8.sp_accept_pred", a=toy["acceptance_predicted"]))
    tc2.metric(t("ch8.sp_tps"), f"{toy['tokens_per_step_measured']:.2f}")
    tc2.caption(t("ch8.sp_tps_pred", v=toy["tokens_per_step_predicted"], k=toy["k"]))
    tc2.metric("χ² p-value", f"{toy['p_value']:.3f}", help=t("ch8.sp_chi_help"))

st.subheader(t("ch8.sp_real_title"))
param("sp_prompt", COPY_PROMPT, str)
param("sp_exit", 24, int)
param("sp_real_k", 4, int)
st.text_area(t("ch8.sp_prompt"), key="sp_prompt", height=110, max_chars=3000)
rc1, rc2, rc3 = st.columns(3)
rc1.slider(t("ch8.sp_exit"), 2, 29, key="sp_exit", help=t("ch8.sp_exit_help"))
rc2.slider(t("ch8.sp_k"), 1, 8, key="sp_real_k")
with rc3:
    stop_button("sp_stop")
with friendly_errors():
    if st.button(t("ch8.sp_real_run"), key="sp_run"):
        lm = chat_model()
        rows_s = run_with_progress(
            t("ch8.running"),
            compare_methods,
            lm,
            SS["sp_prompt"],
            max_new_tokens=32,
            k=SS["sp_real_k"],
            exit_layers=SS["sp_exit"],
        )
        if rows_s:
            SS["ch8_spec"] = rows_s
    if "ch8_spec" in SS:
        df = pd.DataFrame(SS["ch8_spec"])
        st.dataframe(
            df[
                [
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
            ].round(3),
            hide_index=True,
            width="stretch",
        )
        st.caption(t("ch8.sp_real_caption"))
        produced_by("transformers (in-process)")
        with st.expander(t("ch8.sp_texts")):
            for r in SS["ch8_spec"]:
                st.markdown(f"**{r['method']}** — {r['text']}")
notice("common.notice", t("ch8.notice_speculative"))
quiz("08", "speculative")

# --- offline and online serving ----------------------------------------------------------------------------------
section_header(ch, "serving")
st.subheader(t("ch8.offline_title"))
param("sv_off_n", 8, int)
param("sv_off_tokens", 24, int)
o1, o2, o3 = st.columns(3)
o1.slider(t("ch8.sv_off_n"), 1, 16, key="sv_off_n")
o2.slider(t("common.max_tokens"), 1, 64, key="sv_off_tokens")
with o3:
    stop_button("sv_off_stop")
with friendly_errors():
    if st.button(t("ch8.sv_off_run"), key="sv_off_run"):
        lm = chat_model()
        prompts = PROMPTS[: SS["sv_off_n"]]
        one = run_with_progress(t("ch8.sv_batch_one"), batched_generate, lm, prompts, SS["sv_off_tokens"], 1)
        if one:
            allb = run_with_progress(
                t("ch8.sv_batch_all"), batched_generate, lm, prompts, SS["sv_off_tokens"], len(prompts)
            )
            if allb:
                SS["ch8_offline"] = [one, allb]
    if "ch8_offline" in SS:
        st.dataframe(
            pd.DataFrame([{k: v for k, v in r.items() if k != "answers"} for r in SS["ch8_offline"]]).round(3),
            hide_index=True,
            width="stretch",
        )
        with st.expander(t("ch8.sv_answers")):
            for p, a in zip(PROMPTS, SS["ch8_offline"][-1]["answers"], strict=False):
                st.markdown(f"**{p}** — {a}")
        produced_by("transformers (in-process, greedy)")

st.subheader(t("ch8.online_title"))
info = backend_info(check=False)
st.caption(t("ch8.sv_target", url=info.get("url") or t("backend.not_started"), model=info["model"], tier=info["tier"]))
param("sv_levels", "1,4,8", str)
param("sv_requests", 16, int)
param("sv_tokens", 32, int)
l1, l2, l3 = st.columns(3)
l1.text_input(t("ch8.sv_levels"), key="sv_levels", max_chars=60, help=t("ch8.sv_levels_help", max=MAX_CONCURRENCY))
l2.slider(t("ch8.sv_requests"), 1, 64, key="sv_requests")
l3.slider(t("common.max_tokens"), 1, 256, key="sv_tokens")
b1, b2 = st.columns([1, 4])
with b2:
    stop_button("sv_stop")
run_clicked = b1.button(t("ch8.sv_run"), key="sv_run", type="primary")
with friendly_errors():
    if run_clicked:
        try:
            levels = [int(x) for x in SS["sv_levels"].replace(" ", "").split(",") if x]
        except ValueError as exc:
            raise ValueError(t("ch8.sv_bad_levels")) from exc
        SS["ch8_load"] = []
        run_with_progress(
            t("ch8.running"),
            run_load_test,
            levels,
            requests=SS["sv_requests"],
            max_tokens=SS["sv_tokens"],
            on_level=SS["ch8_load"].append,
        )
    if SS.get("ch8_load"):
        rows_l = SS["ch8_load"]
        st.dataframe(
            pd.DataFrame(rows_l).drop(columns=["error_examples"], errors="ignore").round(3),
            hide_index=True,
            width="stretch",
        )
        lc1, lc2 = st.columns(2)
        lc1.plotly_chart(
            charts.line(rows_l, "concurrency", "tokens_per_s", title=t("ch8.sv_tps_chart")), width="stretch"
        )
        lat = [
            {"concurrency": r["concurrency"], "s": r[q], "percentile": q[:-2]}
            for r in rows_l
            for q in ("p50_s", "p95_s")
            if r[q] is not None
        ]
        lc2.plotly_chart(charts.line(lat, "concurrency", "s", "percentile", t("ch8.sv_lat_chart")), width="stretch")
        errs = [e for r in rows_l for e in r.get("error_examples", [])]
        if errs:
            st.warning(t("ch8.sv_errors", errors="; ".join(errs[:3])))
    st.markdown(t("ch8.sv_vllm"))
notice("common.notice", t("ch8.notice_serving"))
quiz("08", "serving")
show_code(ch)
