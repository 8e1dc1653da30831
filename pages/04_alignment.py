"""Chapter 4 — instructions and preferences: SFT, a reward model and best-of-n, PPO vs DPO, reward hacking, β."""

import pandas as pd
import streamlit as st

from engine.alignment import (
    METHODS,
    ChatDPOSettings,
    RMSettings,
    SFTSettings,
    best_of_n,
    eval_points,
    hacking_runs,
    hacking_verdict,
    last_examples,
    load_instructions,
    load_preferences,
    parse_preferences,
    preferences_text,
    race_runs,
    ranked_answers,
    run_table,
    sft_report,
    sweep_runs,
    template_view,
    toy_best_of_n,
    toy_reference,
    train_dpo_chat_fresh,
    train_reward_model,
    train_sft_chat,
)
from engine.models import load_tokenizer
from ui import charts
from ui import charts_training as draw
from ui.cache import cached, causal_lm
from ui.charts import table
from ui.i18n import t
from ui.jobs import last_job, show_job_status
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, seed, show_code
from ui.state import param
from ui.training import LiveCurves, run_training

LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 0.1, 1.0, 10.0, 1000.0]
BETAS = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0]
SWEEP_BETAS = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
SFT, RM, RACE, CHAT, HACK, SWEEP = "ch04_sft", "ch04_rm", "ch04_race", "ch04_chatdpo", "ch04_hack", "ch04_sweep"
RUN_COLUMNS = ("run", "status", "steps", "reward_first", "reward_last", "judge_first", "judge_last", "kl", "sps")


def start_button(key: str, label: str) -> bool:
    return st.button(label, key=f"{key}_start", type="primary", width="stretch")


def summary_table(logs) -> None:
    columns = [t(f"ch04.col_{c}") for c in RUN_COLUMNS]
    table(run_table(logs), columns)


def sft_section(ch) -> None:
    """Supervised fine-tuning."""
    section_header(ch, "sft")
    pairs_sft = load_instructions()
    param("sft_pair", 0, int, choices=tuple(range(len(pairs_sft))))
    param("sft_steps", 6, int)
    param("sft_lr", 1e-3, float, choices=tuple(LRS))
    param("sft_r", 8, int, choices=(2, 4, 8, 16, 32))
    st.selectbox(
        t("ch04.pair"),
        list(range(len(pairs_sft))),
        key="sft_pair",
        format_func=lambda i: f"[{pairs_sft[i]['lang']}] {pairs_sft[i]['instruction']}",
    )
    with friendly_errors():
        chat_tok = cached(("ch04_chat_tokenizer",), lambda p: load_tokenizer("chat", p), t("common.loading_tokenizers"))
        pair = pairs_sft[st.session_state["sft_pair"]]
        view = template_view(chat_tok, pair["instruction"], pair["response"])
        st.markdown(f"**{t('ch04.template_title')}**")
        st.html(draw.loss_mask_chips(view.tokens))
        st.caption(t("ch04.template_counts", total=view.total, trained=view.trained, model="SmolLM2-135M-Instruct"))
        with st.expander(t("ch04.template_text")):
            st.code(view.text, language="text")
    st.caption(t("ch04.sft_source"))
    s1, s2, s3 = st.columns(3)
    s1.slider(t("train.steps"), 1, 40, key="sft_steps")
    s2.select_slider(t("train.lr"), LRS, key="sft_lr", format_func=lambda v: f"{v:g}")
    s3.select_slider(t("ch04.lora_r"), [2, 4, 8, 16, 32], key="sft_r")
    start = start_button(SFT, t("ch04.run_sft"))
    curves = LiveCurves(SFT, [("loss", t("ch04.sft_loss"))], color="run", every=1, columns=1)
    if start:
        r = st.session_state["sft_r"]
        settings = SFTSettings(
            steps=st.session_state["sft_steps"], lr=st.session_state["sft_lr"], lora_r=r, lora_alpha=2 * r
        )
        with friendly_errors():
            run_training(SFT, lambda p, row, stop: train_sft_chat(settings, p, stop, row), (curves,))
    job = last_job(SFT)
    curves.draw(job.rows)
    show_job_status(SFT)
    if job.result is not None:
        rep = sft_report(job.result)
        st.caption(t("ch04.sft_params", trainable=rep.trainable, total=rep.total, pct=rep.percent, seconds=rep.seconds))
        st.caption(t("ch04.sft_model", device=rep.device))
        columns = [t("ch04.col_instruction"), t("ch04.col_before"), t("ch04.col_after")]
        table(rep.answers, columns)
    notice("common.notice", t("ch04.notice_sft"))
    quiz("04", "sft")


def reward_section(ch) -> list[dict] | None:
    """Reward model and best-of-n; returns the parsed preferences (None when the text is malformed)."""
    section_header(ch, "reward")
    # The preference text is long: it lives in the session, not in the URL.
    st.session_state.setdefault("ch04_prefs", preferences_text(load_preferences()))
    st.text_area(t("ch04.prefs"), key="ch04_prefs", height=180, max_chars=200_000)
    st.caption(t("ch04.prefs_source"))
    prefs = None
    with friendly_errors():
        prefs = parse_preferences(st.session_state["ch04_prefs"])
        with st.expander(t("ch04.prefs_count", n=len(prefs))):
            st.dataframe(pd.DataFrame(prefs), hide_index=True, width="stretch")
    if prefs is not None:
        start = start_button(RM, t("ch04.train_rm"))
        curves = LiveCurves(RM, [("loss", t("ch04.rm_loss"))], color="run", every=1, columns=1)
        if start:
            with friendly_errors():
                run_training(RM, lambda p, row, stop: train_reward_model(prefs, RMSettings(), p, stop, row), (curves,))
        curves.draw(last_job(RM).rows)
        show_job_status(RM)
    rm_res = last_job(RM).result
    if rm_res is not None:
        best_of_n_demo(rm_res)
    else:
        st.info(t("ch04.need_rm"))
    if st.button(t("ch04.run_toy_bon"), key="ch04_toy_bon"):
        with friendly_errors(), st.spinner(t("ch04.run_toy_bon")):
            st.session_state["ch04_toy_bon_rows"] = toy_best_of_n()
    if st.session_state.get("ch04_toy_bon_rows"):
        names = {"reward_mean": t("ch04.m_reward"), "judge_mean": t("ch04.m_judge"), "kl_bound": "KL = log n − (n−1)/n"}
        charts.show(
            st, draw.best_of_n_curve(st.session_state["ch04_toy_bon_rows"], names, t("ch04.bon_curve")), width="stretch"
        )
        st.caption(t("train.simulated_toy"))
    notice("common.notice", t("ch04.notice_reward"))
    quiz("04", "reward")
    return prefs


def best_of_n_demo(rm_res) -> None:
    """Best-of-n with the trained reward model on the chat model's answers."""
    test = "—" if rm_res.test_accuracy is None else f"{rm_res.test_accuracy:.0%}"
    st.caption(t("ch04.rm_acc", train=rm_res.train_accuracy, n=len(rm_res.test_pairs), test=test))
    st.caption(t("ch04.rm_backbone", seconds=rm_res.log.seconds))
    param("bon_prompt", t("ch04.bon_default"), str)
    param("bon_n", 4, int)
    b1, b2 = st.columns([3, 1])
    b1.text_input(t("ch04.bon_prompt"), key="bon_prompt", max_chars=1000)
    b2.slider(t("ch04.bon_n"), 2, 8, key="bon_n")
    if st.button(t("ch04.run_bon"), key="ch04_bon_start"):
        with friendly_errors():
            lm = causal_lm("chat", t("common.loading_model"))
            prompt, n = st.session_state["bon_prompt"], st.session_state["bon_n"]
            st.session_state["ch04_bon"] = best_of_n(lm.model, lm.tokenizer, rm_res.model, rm_res.tokenizer, prompt, n)
    if st.session_state.get("ch04_bon"):
        rows = [
            {
                t("ch04.col_rank"): a.rank,
                t("ch04.col_reward"): a.reward,
                t("ch04.col_answer"): ("🏆 " if a.best else "") + a.answer,
            }
            for a in ranked_answers(st.session_state["ch04_bon"])
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def race_section(ch, prefs) -> None:
    """PPO and DPO side by side (and DPO on the real chat model, for the patient)."""
    section_header(ch, "ppo_dpo")
    st.caption(t("train.simulated_toy"))
    param("race_steps", 60, int)
    param("race_beta", 0.3, float, choices=tuple(BETAS))
    param("race_methods", "ppo,dpo", str)
    r1, r2, r3 = st.columns(3)
    r1.slider(t("train.steps"), 5, 200, key="race_steps")
    r2.select_slider(t("ch04.beta"), BETAS, key="race_beta", help=t("ch04.beta_help"))
    chosen = [m for m in st.session_state["race_methods"].split(",") if m in METHODS] or list(METHODS)
    methods = r3.multiselect(t("ch04.methods"), list(METHODS), default=chosen, key="_race_methods_widget")
    st.session_state["race_methods"] = ",".join(methods)
    with r3:
        race_seed = seed("race_seed")
    start = start_button(RACE, t("ch04.run_race"))
    metrics = [
        ("reward_mean", "m_reward"),
        ("kl", "m_kl"),
        ("loss", "m_loss"),
        ("seconds", "m_seconds"),
        ("judge_mean", "m_judge"),
    ]
    curves = LiveCurves(RACE, [(m, t(f"ch04.{k}")) for m, k in metrics], every=6)
    if start:
        steps, beta = st.session_state["race_steps"], st.session_state["race_beta"]
        with friendly_errors():
            run_training(
                RACE, lambda p, row, stop: race_runs(tuple(methods), steps, race_seed, beta, p, stop, row), (curves,)
            )
    job = last_job(RACE)
    curves.draw(job.rows)
    show_job_status(RACE)
    if job.result is not None:
        summary_table(job.result.logs)
        ref = toy_reference(job.result.seed)
        st.caption(t("ch04.toy_ref", reward=ref.reward, judge=ref.judge, pairs=ref.pairs, seconds=ref.seconds))
        with st.expander(t("ch04.examples")):
            for name, examples in last_examples(job.result.logs):
                st.markdown(f"**{name}** — " + " · ".join(f"`{e}`" for e in examples))
    notice("common.notice", t("ch04.notice_race"))
    with st.expander(t("ch04.patient")):
        st.caption(t("ch04.patient_note"))
        param("chatdpo_steps", 6, int)
        st.slider(t("train.steps"), 1, 30, key="chatdpo_steps")
        if prefs is not None:
            start = start_button(CHAT, t("ch04.run_chat_dpo"))
            curves = LiveCurves(
                CHAT, [("loss", t("ch04.m_loss")), ("margin", t("ch04.m_margin"))], color="run", every=1
            )
            if start:
                settings = ChatDPOSettings(steps=st.session_state["chatdpo_steps"])
                with friendly_errors():
                    run_training(
                        CHAT, lambda p, row, stop: train_dpo_chat_fresh(prefs, settings, p, stop, row)[0], (curves,)
                    )
            curves.draw(last_job(CHAT).rows)
            show_job_status(CHAT)
    quiz("04", "ppo_dpo")


def hacking_section(ch) -> None:
    """Reward hacking."""
    section_header(ch, "hacking")
    st.caption(t("train.simulated_toy"))
    param("hack_steps", 60, int)
    param("hack_beta", 0.5, float, choices=tuple(b for b in BETAS if b > 0))
    h1, h2 = st.columns(2)
    h1.slider(t("train.steps"), 5, 200, key="hack_steps")
    h2.select_slider(t("ch04.kl_on"), [b for b in BETAS if b > 0], key="hack_beta")
    with h1:
        hack_seed = seed("hack_seed")
    start = start_button(HACK, t("ch04.run_hacking"))
    curves = LiveCurves(HACK, [("reward_mean", t("ch04.m_reward")), ("judge_mean", t("ch04.m_judge"))], every=4)
    if start:
        steps, beta = st.session_state["hack_steps"], st.session_state["hack_beta"]
        with friendly_errors():
            run_training(HACK, lambda p, row, stop: hacking_runs(steps, hack_seed, beta, p, stop, row), (curves,))
    job = last_job(HACK)
    curves.draw(job.rows)
    show_job_status(HACK)
    if job.result is not None:
        summary_table(job.result.logs)
        v = hacking_verdict(job.result.logs)
        if v is not None:
            verdict = t("ch04.hacking_verdict", r0=v.reward_first, r1=v.reward_last, j0=v.judge_first, j1=v.judge_last)
            st.markdown(f"**{verdict}**")
    notice("common.notice", t("ch04.notice_hacking"))
    quiz("04", "hacking")


def beta_section(ch) -> None:
    """What β does in DPO."""
    section_header(ch, "beta")
    st.caption(t("train.simulated_toy"))
    param("sweep_steps", 100, int)
    param("sweep_betas", "0.03,0.1,0.3,1", str)
    w1, w2 = st.columns([2, 1])
    default_betas = [b for b in SWEEP_BETAS if f"{b:g}" in st.session_state["sweep_betas"].split(",")] or [0.1, 1.0]
    betas = w1.multiselect(t("ch04.betas"), SWEEP_BETAS, default=default_betas, key="_sweep_betas")
    st.session_state["sweep_betas"] = ",".join(f"{b:g}" for b in betas)
    w2.slider(t("train.steps"), 20, 300, step=10, key="sweep_steps")
    start = start_button(SWEEP, t("ch04.run_sweep"))
    curves = LiveCurves(SWEEP, [("kl", t("ch04.sweep_kl")), ("reward_mean", t("ch04.m_reward"))], kind="eval", every=1)
    if start:
        steps = st.session_state["sweep_steps"]
        with friendly_errors():
            run_training(SWEEP, lambda p, row, stop: sweep_runs(tuple(betas), steps, p, stop, row), (curves,))
    job = last_job(SWEEP)
    curves.draw(job.rows)
    show_job_status(SWEEP)
    points = job.result.points if job.result is not None else eval_points(job.rows)
    if points:
        charts.show(st, draw.beta_sweep(points, t("ch04.sweep_title")), width="stretch")
    notice("common.notice", t("ch04.notice_beta"))
    quiz("04", "beta")


ch = chapter_header("04")
sft_section(ch)
prefs = reward_section(ch)
race_section(ch, prefs)
hacking_section(ch)
beta_section(ch)
show_code(ch)
