"""Chapter 4 — instructions and preferences: SFT, a reward model and best-of-n, PPO vs DPO, reward hacking, β."""

import html

import pandas as pd
import plotly.express as px
import streamlit as st

from engine.alignment import (
    ChatDPOSettings,
    RMSettings,
    SFTSettings,
    ToyConfig,
    best_of_n,
    chat_template_view,
    load_instructions,
    load_preferences,
    parse_preferences,
    preferences_text,
    runs,
    toy_setup,
    train_dpo_chat_fresh,
    train_reward_model,
    train_sft_chat,
)
from engine.models import load_tokenizer
from engine.training import FINISHED
from ui import training as tr
from ui.cache import causal_lm, shared
from ui.i18n import t
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, seed, show_code
from ui.state import param

ch = chapter_header("04")
LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 0.1, 1.0, 10.0, 1000.0]
BETAS = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0]


def loss_mask_chips(tokens) -> str:
    spans = []
    for tok in tokens:
        style = "background:#c8e6c9;color:#111" if tok.trained else "background:#eeeeee;color:#777"
        spans.append(
            f'<span title="id {tok.token_id}" style="{style};padding:1px 3px;margin:1px;border-radius:3px;'
            f'display:inline-block;font-family:monospace">{html.escape(tok.piece) or "∅"}</span>'
        )
    return '<div style="line-height:2">' + "".join(spans) + "</div>"


def summary_table(logs) -> None:
    rows = []
    for s in runs.summary(logs):
        rows.append(
            {
                t("ch04.col_run"): s["run"],
                t("ch04.col_status"): s["status"],
                t("ch04.col_steps"): s["steps"],
                t("ch04.col_reward_first"): s.get("reward_first"),
                t("ch04.col_reward_last"): s.get("reward_last"),
                t("ch04.col_judge_first"): s.get("judge_first"),
                t("ch04.col_judge_last"): s.get("judge_last"),
                t("ch04.col_kl"): s.get("kl_last"),
                t("ch04.col_sps"): s.get("seconds_per_step"),
            }
        )
    st.dataframe(pd.DataFrame(rows).round(3), hide_index=True, width="stretch")


def worst(logs) -> tuple[str, str]:
    for log in logs.values():
        if log.status != FINISHED:
            return log.status, log.message
    return FINISHED, ""


# --- supervised fine-tuning -----------------------------------------------------------------------------------
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
    bar, report = tr.progress_bar()
    chat_tok = shared(("ch04_chat_tokenizer",), lambda p: load_tokenizer("chat", p), report)
    bar.empty()
    pair = pairs_sft[st.session_state["sft_pair"]]
    text, tokens = chat_template_view(chat_tok, pair["instruction"], pair["response"])
    st.markdown(f"**{t('ch04.template_title')}**")
    st.html(loss_mask_chips(tokens))
    st.caption(
        t(
            "ch04.template_counts",
            total=len(tokens),
            trained=sum(x.trained for x in tokens),
            model="SmolLM2-135M-Instruct",
        )
    )
    with st.expander(t("ch04.template_text")):
        st.code(text, language="text")
st.caption(t("ch04.sft_source"))
s1, s2, s3 = st.columns(3)
s1.slider(t("train.steps"), 1, 40, key="sft_steps")
s2.select_slider(t("train.lr"), LRS, key="sft_lr", format_func=lambda v: f"{v:g}")
s3.select_slider(t("ch04.lora_r"), [2, 4, 8, 16, 32], key="sft_r")
SFT = "ch04_sft"
start = tr.controls(SFT, t("ch04.run_sft"))
sft_curves = tr.LiveCurves(SFT, [("loss", t("ch04.sft_loss"))], color="run", every=1, columns=1)
if start:
    tr.begin(SFT)
    with friendly_errors():
        bar, report = tr.progress_bar()
        settings = SFTSettings(
            steps=st.session_state["sft_steps"],
            lr=st.session_state["sft_lr"],
            lora_r=st.session_state["sft_r"],
            lora_alpha=2 * st.session_state["sft_r"],
        )
        res = train_sft_chat(settings, progress=report, should_stop=tr.should_stop(SFT), on_row=sft_curves)
        bar.empty()
        tr.end(SFT, res.log.status, res.log.message, res)
sft_curves.draw()
tr.show_status(SFT)
res = tr.result(SFT)
if res is not None:
    st.caption(
        t(
            "ch04.sft_params",
            trainable=res.trainable_params,
            total=res.total_params,
            pct=100 * res.trainable_params / res.total_params,
            seconds=res.log.seconds,
        )
    )
    st.caption(t("ch04.sft_model", device=str(next(res.model.parameters()).device)))
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("ch04.col_instruction"): q,
                    t("ch04.col_before"): res.before.get(q, ""),
                    t("ch04.col_after"): res.after.get(q, ""),
                }
                for q in res.before
            ]
        ),
        hide_index=True,
        width="stretch",
    )
notice("common.notice", t("ch04.notice_sft"))
quiz("04", "sft")

# --- reward model and best-of-n -------------------------------------------------------------------------------
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
RM = "ch04_rm"
if prefs is not None:
    start = tr.controls(RM, t("ch04.train_rm"))
    rm_curves = tr.LiveCurves(RM, [("loss", t("ch04.rm_loss"))], color="run", every=1, columns=1)
    if start:
        tr.begin(RM)
        with friendly_errors():
            bar, report = tr.progress_bar()
            rm_res = train_reward_model(prefs, RMSettings(), report, tr.should_stop(RM), rm_curves)
            bar.empty()
            tr.end(RM, rm_res.log.status, rm_res.log.message, rm_res)
    rm_curves.draw()
    tr.show_status(RM)
rm_res = tr.result(RM)
if rm_res is not None:
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
            st.session_state["ch04_bon"] = best_of_n(
                lm.model,
                lm.tokenizer,
                rm_res.model,
                rm_res.tokenizer,
                st.session_state["bon_prompt"],
                st.session_state["bon_n"],
            )
    if st.session_state.get("ch04_bon"):
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("ch04.col_rank"): r["rank"],
                        t("ch04.col_reward"): round(r["reward"], 3),
                        t("ch04.col_answer"): ("🏆 " if r["best"] else "") + r["answer"],
                    }
                    for r in st.session_state["ch04_bon"]
                ]
            ),
            hide_index=True,
            width="stretch",
        )
else:
    st.info(t("ch04.need_rm"))
if st.button(t("ch04.run_toy_bon"), key="ch04_toy_bon"):
    with friendly_errors(), st.spinner(t("ch04.run_toy_bon")):
        st.session_state["ch04_toy_bon_rows"] = runs.best_of_n()
if st.session_state.get("ch04_toy_bon_rows"):
    rows = st.session_state["ch04_toy_bon_rows"]
    long = [
        {"n": r["n"], "score": r[k], "metric": name}
        for r in rows
        for k, name in (
            ("reward_mean", t("ch04.m_reward")),
            ("judge_mean", t("ch04.m_judge")),
            ("kl_bound", "KL = log n − (n−1)/n"),
        )
    ]
    fig = px.line(long, x="n", y="score", color="metric", markers=True, log_x=True, title=t("ch04.bon_curve"))
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend_title_text="")
    st.plotly_chart(fig, width="stretch")
    st.caption(t("train.simulated_toy"))
notice("common.notice", t("ch04.notice_reward"))
quiz("04", "reward")

# --- PPO and DPO side by side ---------------------------------------------------------------------------------
section_header(ch, "ppo_dpo")
st.caption(t("train.simulated_toy"))
param("race_steps", 60, int)
param("race_beta", 0.3, float, choices=tuple(BETAS))
param("race_methods", "ppo,dpo", str)
r1, r2, r3 = st.columns(3)
r1.slider(t("train.steps"), 5, 200, key="race_steps")
r2.select_slider(t("ch04.beta"), BETAS, key="race_beta", help=t("ch04.beta_help"))
chosen = [m for m in st.session_state["race_methods"].split(",") if m in runs.METHODS] or list(runs.METHODS)
methods = r3.multiselect(t("ch04.methods"), list(runs.METHODS), default=chosen, key="_race_methods_widget")
st.session_state["race_methods"] = ",".join(methods)
with r3:
    race_seed = seed("race_seed")
RACE = "ch04_race"
start = tr.controls(RACE, t("ch04.run_race"))
race_curves = tr.LiveCurves(
    RACE,
    [
        ("reward_mean", t("ch04.m_reward")),
        ("kl", t("ch04.m_kl")),
        ("loss", t("ch04.m_loss")),
        ("seconds", t("ch04.m_seconds")),
        ("judge_mean", t("ch04.m_judge")),
    ],
    every=6,
)
if start:
    tr.begin(RACE)
    with friendly_errors():
        bar, report = tr.progress_bar()
        beta = st.session_state["race_beta"]
        logs = runs.race(
            tuple(methods),
            st.session_state["race_steps"],
            race_seed,
            kl_coef=beta,
            beta=max(beta, 1e-3),
            progress=report,
            should_stop=tr.should_stop(RACE),
            on_row=race_curves,
        )
        bar.empty()
        tr.end(RACE, *worst(logs), {"logs": logs, "seed": race_seed})
race_curves.draw()
tr.show_status(RACE)
race = tr.result(RACE)
if race is not None:
    summary_table(race["logs"])
    setup = toy_setup(ToyConfig(seed=race["seed"]))
    st.caption(
        t(
            "ch04.toy_ref",
            reward=setup.ref_stats["reward_mean"],
            judge=setup.ref_stats["judge_mean"],
            pairs=len(setup.pairs),
            seconds=setup.seconds,
        )
    )
    with st.expander(t("ch04.examples")):
        for name, log in race["logs"].items():
            rows = log.train_rows()
            if rows:
                st.markdown(f"**{name}** — " + " · ".join(f"`{e}`" for e in rows[-1].get("examples", [])))
notice("common.notice", t("ch04.notice_race"))
with st.expander(t("ch04.patient")):
    st.caption(t("ch04.patient_note"))
    param("chatdpo_steps", 6, int)
    st.slider(t("train.steps"), 1, 30, key="chatdpo_steps")
    CHAT = "ch04_chatdpo"
    if prefs is not None:
        start = tr.controls(CHAT, t("ch04.run_chat_dpo"))
        chat_curves = tr.LiveCurves(
            CHAT, [("loss", t("ch04.m_loss")), ("margin", t("ch04.m_margin"))], color="run", every=1
        )
        if start:
            tr.begin(CHAT)
            with friendly_errors():
                bar, report = tr.progress_bar()
                log, _ = train_dpo_chat_fresh(
                    prefs,
                    ChatDPOSettings(steps=st.session_state["chatdpo_steps"]),
                    report,
                    tr.should_stop(CHAT),
                    chat_curves,
                )
                bar.empty()
                tr.end(CHAT, log.status, log.message, log)
        chat_curves.draw()
        tr.show_status(CHAT)
quiz("04", "ppo_dpo")

# --- reward hacking -------------------------------------------------------------------------------------------
section_header(ch, "hacking")
st.caption(t("train.simulated_toy"))
param("hack_steps", 60, int)
param("hack_beta", 0.5, float, choices=tuple(b for b in BETAS if b > 0))
h1, h2 = st.columns(2)
h1.slider(t("train.steps"), 5, 200, key="hack_steps")
h2.select_slider(t("ch04.kl_on"), [b for b in BETAS if b > 0], key="hack_beta")
with h1:
    hack_seed = seed("hack_seed")
HACK = "ch04_hack"
start = tr.controls(HACK, t("ch04.run_hacking"))
hack_curves = tr.LiveCurves(HACK, [("reward_mean", t("ch04.m_reward")), ("judge_mean", t("ch04.m_judge"))], every=4)
if start:
    tr.begin(HACK)
    with friendly_errors():
        bar, report = tr.progress_bar()
        logs = runs.reward_hacking(
            st.session_state["hack_steps"],
            hack_seed,
            (0.0, st.session_state["hack_beta"]),
            report,
            tr.should_stop(HACK),
            hack_curves,
        )
        bar.empty()
        tr.end(HACK, *worst(logs), {"logs": logs})
hack_curves.draw()
tr.show_status(HACK)
hack = tr.result(HACK)
if hack is not None:
    summary_table(hack["logs"])
    off = next(iter(runs.summary(hack["logs"])))
    if off.get("steps"):
        st.markdown(
            "**"
            + t(
                "ch04.hacking_verdict",
                r0=off["reward_first"],
                r1=off["reward_last"],
                j0=off["judge_first"],
                j1=off["judge_last"],
            )
            + "**"
        )
notice("common.notice", t("ch04.notice_hacking"))
quiz("04", "hacking")

# --- what β does in DPO ---------------------------------------------------------------------------------------
section_header(ch, "beta")
st.caption(t("train.simulated_toy"))
SWEEP_BETAS = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
param("sweep_steps", 100, int)
param("sweep_betas", "0.03,0.1,0.3,1", str)
w1, w2 = st.columns([2, 1])
default_betas = [b for b in SWEEP_BETAS if f"{b:g}" in st.session_state["sweep_betas"].split(",")] or [0.1, 1.0]
betas = w1.multiselect(t("ch04.betas"), SWEEP_BETAS, default=default_betas, key="_sweep_betas")
st.session_state["sweep_betas"] = ",".join(f"{b:g}" for b in betas)
w2.slider(t("train.steps"), 20, 300, step=10, key="sweep_steps")
SWEEP = "ch04_sweep"
start = tr.controls(SWEEP, t("ch04.run_sweep"))
sweep_curves = tr.LiveCurves(
    SWEEP, [("kl", t("ch04.sweep_kl")), ("reward_mean", t("ch04.m_reward"))], kind="eval", every=1
)
if start:
    tr.begin(SWEEP)
    with friendly_errors():
        bar, report = tr.progress_bar()
        points, log = runs.beta_sweep(
            tuple(sorted(betas)),
            st.session_state["sweep_steps"],
            0,
            progress=report,
            should_stop=tr.should_stop(SWEEP),
            on_row=sweep_curves,
        )
        bar.empty()
        tr.end(SWEEP, log.status, log.message, points)
sweep_curves.draw()
tr.show_status(SWEEP)
points = tr.result(SWEEP) or [r for r in tr.stored_rows(SWEEP) if r.get("kind") == "eval"]
if points:
    fig = px.scatter(
        points,
        x="kl",
        y="reward_mean",
        color="method",
        size="step",
        hover_data=["judge_mean", "step"],
        title=t("ch04.sweep_title"),
    )
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend_title_text="")
    st.plotly_chart(fig, width="stretch")
notice("common.notice", t("ch04.notice_beta"))
quiz("04", "beta")
show_code(ch)
