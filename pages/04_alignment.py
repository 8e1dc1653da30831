"""Chapter 4 — instructions and preferences: SFT, a reward model and best-of-n, PPO vs DPO, reward hacking, β."""

from dataclasses import asdict, astuple

import streamlit as st

import engine.alignment as align
from engine.core import load_precomputed
from engine.llmops import instruction_pairs, preference_pairs, save_adapter, toy_preferences
from engine.models import load_tokenizer
from ui import charts
from ui import charts_training as draw
from ui.cache import cached, causal_lm
from ui.charts import table
from ui.i18n import lang, t
from ui.jobs import last_job
from ui.layout import chapter_header, friendly_errors, notice, precomputed_note, quiz, section_header, seed, show_code
from ui.state import param
from ui.tracking import Track
from ui.training import LiveCurves, training_demo

LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 0.1, 1.0, 10.0, 1000.0]
BETAS = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0]
SWEEP_BETAS = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
SFT, RM, RACE, CHAT, HACK, SWEEP = "ch04_sft", "ch04_rm", "ch04_race", "ch04_chatdpo", "ch04_hack", "ch04_sweep"
RUN_COLUMNS = ("run", "status", "steps", "reward_first", "reward_last", "judge_first", "judge_last", "kl", "sps")
AXES = ("step", "loss", "reward_mean", "judge_mean", "kl", "seconds", "margin", "n", "score")


def run_name(name: str) -> str:
    """An engine run name ("ppo", "dpo β=0.1", "reward model") as the legends and tables show it."""
    fixed = {"reward model": t("ch04.run_rm"), "DPO (chat, LoRA)": t("ch04.run_chat")}
    return fixed.get(name) or name.replace("ppo", "PPO").replace("dpo", "DPO")


def axes() -> dict[str, str]:
    """Axis titles (with units) of every chart in the chapter, by the engine's column name."""
    return {a: t(f"ch04.axis_{a}") for a in AXES}


def curves(key: str, metrics: list[tuple[str, str]], **kwargs) -> LiveCurves:
    return LiveCurves(key, metrics, labels=axes(), names=run_name, **kwargs)


def track(name: str, params: dict, dataset, finish=None, by: str | None = None) -> Track:
    """What a training button of this page logs to MLflow (experiment llmlab-ch04) when tracking is on."""
    return Track("ch04", name, params, dataset=dataset, by=by, finish=finish, command="pages/04_alignment.py")


def summary_table(rows) -> None:
    cells = [(run_name(r.run), t(f"train.status_{r.status}"), *astuple(r)[2:]) for r in rows]
    table([["—" if v is None else v for v in row] for row in cells], [t(f"ch04.col_{c}") for c in RUN_COLUMNS])


def sft_section(ch) -> None:
    """Supervised fine-tuning."""
    section_header(ch, "sft")
    pairs_sft = align.load_instructions()
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
        view = align.template_view(chat_tok, pair["instruction"], pair["response"])
        st.markdown(f"**{t('ch04.template_title')}**")
        st.html(draw.loss_mask_chips(view.groups))
        st.caption(t("ch04.template_counts", total=view.total, trained=view.trained, model="SmolLM2-135M-Instruct"))
        with st.expander(t("ch04.template_text")):
            st.code(view.text, language="text")
            cells = [(g.text, g.hex or "—", " ".join(map(str, g.ids)), "✅" if g.trained else "—") for g in view.groups]
            table(cells, [t(f"ch04.col_{c}") for c in ("char", "bytes", "ids", "trained")])
    st.caption(t("ch04.sft_source"))
    s1, s2, s3 = st.columns(3)
    s1.slider(t("train.steps"), 1, 40, key="sft_steps")
    s2.select_slider(t("train.lr"), LRS, key="sft_lr", format_func=lambda v: f"{v:g}")
    s3.select_slider(t("ch04.lora_r"), [2, 4, 8, 16, 32], key="sft_r")
    r, steps, lr = st.session_state["sft_r"], st.session_state["sft_steps"], st.session_state["sft_lr"]
    settings = align.SFTSettings(steps=steps, lr=lr, lora_r=r, lora_alpha=2 * r)
    loss = [("loss", t("ch04.sft_loss"))]
    job, pre = training_demo(
        SFT,
        t("ch04.run_sft"),
        "ch04_sft",
        lambda: curves(SFT, loss, color="run", every=1, columns=1),
        lambda p, row, stop: align.train_sft_chat(settings, p, stop, row),
        track=track("sft (chat, LoRA)", {"model": "chat", **asdict(settings)}, instruction_pairs, save_adapter),
    )
    rep = align.sft_report(job.result) if job.result is not None else (align.sft_shown(pre.data) if pre else None)
    if rep is not None:
        st.caption(t("ch04.sft_params", trainable=rep.trainable, total=rep.total, pct=rep.percent, seconds=rep.seconds))
        st.caption(t("ch04.sft_model", device=rep.device))
        table(rep.answers, [t("ch04.col_instruction"), t("ch04.col_before"), t("ch04.col_after")])
    notice("common.notice", t("ch04.notice_sft"))
    quiz("04", "sft")


def reward_section(ch) -> list[dict] | None:
    """Reward model and best-of-n; returns the parsed preferences (None when the text is malformed)."""
    section_header(ch, "reward")
    # The preference text is long: it lives in the session, not in the URL.
    st.session_state.setdefault("ch04_prefs", align.preferences_text(align.load_preferences(), lang()))
    st.text_area(t("ch04.prefs"), key="ch04_prefs", height=180, max_chars=200_000)
    st.caption(t("ch04.prefs_source"))
    prefs = pre = None
    with friendly_errors():
        prefs = align.parse_preferences(st.session_state["ch04_prefs"])
        with st.expander(t("ch04.prefs_count", n=len(prefs))):
            cells = [(p["prompt"], p["chosen"], p["rejected"]) for p in prefs]
            table(cells, [t("ch04.col_prompt"), t("ch04.col_chosen"), t("ch04.col_rejected")])
    if prefs is not None:
        _, pre = training_demo(
            RM,
            t("ch04.train_rm"),
            "ch04_reward",
            lambda: curves(RM, [("loss", t("ch04.rm_loss"))], color="run", every=1, columns=1),
            lambda p, row, stop: align.train_reward_model(prefs, align.RMSettings(), p, stop, row),
            track=track("reward model", asdict(align.RMSettings()), lambda: preference_pairs(prefs)),
        )
    rm_res = last_job(RM).result
    if rm_res is not None:
        rm_captions(rm_res.train_accuracy, len(rm_res.test_pairs), rm_res.test_accuracy, rm_res.log.seconds)
        best_of_n_demo(rm_res)
    elif pre is not None:
        shown = align.reward_shown(pre.data)
        rm_captions(shown.train_accuracy, shown.test_pairs, shown.test_accuracy, shown.seconds)
        rows = shown.best_of_n.get(t("ch04.bon_default"))
        if rows:
            st.markdown(f"**{t('ch04.bon_shipped', prompt=t('ch04.bon_default'), n=len(rows))}**")
            bon_table(rows)
    if rm_res is None:
        st.info(t("ch04.need_rm"))
    toy_best_of_n_demo()
    notice("common.notice", t("ch04.notice_reward"))
    quiz("04", "reward")
    return prefs


def rm_captions(train: float, n_test: int, test: float | None, seconds: float) -> None:
    test_text = "—" if test is None else f"{test:.0%}"
    st.caption(t("ch04.rm_acc", train=train, n=n_test, test=test_text))
    st.caption(t("ch04.rm_backbone", seconds=seconds))


def bon_table(rows: list[dict]) -> None:
    answers = [(a.rank, a.reward, ("🏆 " if a.best else "") + a.answer) for a in align.ranked_answers(rows)]
    table(answers, [t("ch04.col_rank"), t("ch04.col_reward"), t("ch04.col_answer")])


def best_of_n_demo(rm_res) -> None:
    """Best-of-n with the trained reward model on the chat model's answers."""
    param("bon_prompt", t("ch04.bon_default"), str)
    param("bon_n", 4, int)
    b1, b2 = st.columns([3, 1])
    b1.text_input(t("ch04.bon_prompt"), key="bon_prompt", max_chars=1000)
    b2.slider(t("ch04.bon_n"), 2, 8, key="bon_n")
    if st.button(t("ch04.run_bon"), key="ch04_bon_start"):
        with friendly_errors():
            lm = causal_lm("chat", t("common.loading_model"))
            prompt, n = st.session_state["bon_prompt"], st.session_state["bon_n"]
            bon = align.best_of_n(lm.model, lm.tokenizer, rm_res.model, rm_res.tokenizer, prompt, n)
            st.session_state["ch04_bon"] = bon
    if st.session_state.get("ch04_bon"):
        bon_table(st.session_state["ch04_bon"])


def toy_best_of_n_demo() -> None:
    """Best-of-n in the toy world: the shipped curve until the learner draws it here."""
    note = st.empty()
    if st.button(t("ch04.run_toy_bon"), key="ch04_toy_bon"):
        with friendly_errors(), st.spinner(t("ch04.run_toy_bon")):
            st.session_state["ch04_toy_bon_rows"] = align.toy_best_of_n()
    points = st.session_state.get("ch04_toy_bon_rows")
    pre = None if points else load_precomputed("ch04_reward")
    if pre is not None:
        with note:
            precomputed_note(pre)
        points = align.reward_shown(pre.data).toy_best_of_n
    if points:
        names = {"reward_mean": t("ch04.m_reward"), "judge_mean": t("ch04.m_judge"), "kl_bound": t("ch04.kl_bound")}
        charts.show(st, draw.best_of_n_curve(points, names, t("ch04.bon_curve"), axes()), width="stretch")
        st.caption(t("train.simulated_toy"))


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
    chosen = [m for m in st.session_state["race_methods"].split(",") if m in align.METHODS] or list(align.METHODS)
    methods = r3.multiselect(
        t("ch04.methods"), list(align.METHODS), default=chosen, key="_race_methods_widget", format_func=run_name
    )
    st.session_state["race_methods"] = ",".join(methods)
    with r3:
        race_seed = seed("race_seed")
    metrics = [("reward_mean", "m_reward"), ("kl", "m_kl"), ("loss", "m_loss"), ("seconds", "m_seconds")]
    metrics = [(m, t(f"ch04.{k}")) for m, k in [*metrics, ("judge_mean", "m_judge")]]
    steps, beta = st.session_state["race_steps"], st.session_state["race_beta"]
    job, pre = training_demo(
        RACE,
        t("ch04.run_race"),
        "ch04_race",
        lambda: curves(RACE, metrics, every=6),
        lambda p, row, stop: align.race_runs(tuple(methods), steps, race_seed, beta, p, stop, row),
        track=track(
            "race",
            {"methods": ",".join(methods), "steps": steps, "seed": race_seed, "beta": beta},
            lambda: toy_preferences(race_seed),
            by="run",
        ),
    )
    shown = align.runs_view(job.result, reference=True) if job.result else (align.runs_shown(pre.data) if pre else None)
    if shown is not None:
        summary_table(shown.table)
        ref = shown.reference
        st.caption(t("ch04.toy_ref", reward=ref.reward, judge=ref.judge, pairs=ref.pairs, seconds=ref.seconds))
        with st.expander(t("ch04.examples")):
            for name, answers in shown.examples:
                st.markdown(f"**{run_name(name)}** — " + " · ".join(f"`{e}`" for e in answers))
    notice("common.notice", t("ch04.notice_race"))
    with st.expander(t("ch04.patient")):
        st.caption(t("ch04.patient_note"))
        param("chatdpo_steps", 6, int)
        st.slider(t("train.steps"), 1, 30, key="chatdpo_steps")
        if prefs is not None:
            settings = align.ChatDPOSettings(steps=st.session_state["chatdpo_steps"])
            training_demo(
                CHAT,
                t("ch04.run_chat_dpo"),
                None,
                lambda: curves(CHAT, [("loss", t("ch04.m_loss")), ("margin", t("ch04.m_margin"))], color="run"),
                lambda p, row, stop: align.train_dpo_chat_fresh(prefs, settings, p, stop, row)[0],
                track=track("DPO (chat, LoRA)", {"model": "chat", **asdict(settings)}, lambda: preference_pairs(prefs)),
            )
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
    steps, beta = st.session_state["hack_steps"], st.session_state["hack_beta"]
    metrics = [("reward_mean", t("ch04.m_reward")), ("judge_mean", t("ch04.m_judge"))]
    job, pre = training_demo(
        HACK,
        t("ch04.run_hacking"),
        "ch04_hacking",
        lambda: curves(HACK, metrics, every=4),
        lambda p, row, stop: align.hacking_runs(steps, hack_seed, beta, p, stop, row),
        track=track(
            "hacking",
            {"steps": steps, "seed": hack_seed, "kl_coef": beta},
            lambda: toy_preferences(hack_seed),
            by="run",
        ),
    )
    shown = align.runs_view(job.result) if job.result else (align.runs_shown(pre.data) if pre else None)
    if shown is not None:
        summary_table(shown.table)
    if shown is not None and (v := shown.verdict) is not None:
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
    steps = st.session_state["sweep_steps"]
    metrics = [("kl", t("ch04.sweep_kl")), ("reward_mean", t("ch04.m_reward"))]
    job, pre = training_demo(
        SWEEP,
        t("ch04.run_sweep"),
        "ch04_beta",
        lambda: curves(SWEEP, metrics, kind="eval", every=1),
        lambda p, row, stop: align.sweep_runs(tuple(betas), steps, p, stop, row),
        track=track("beta sweep", {"betas": sorted(betas), "steps": steps, "seed": 0}, toy_preferences, by="run"),
    )
    points = job.result.points if job.result else (pre.data["points"] if pre else align.eval_points(job.rows))
    if points:
        fig = draw.beta_sweep(points, t("ch04.sweep_title"), axes(), run_name)
        charts.show(st, fig, width="stretch")
    notice("common.notice", t("ch04.notice_beta"))
    quiz("04", "beta")


ch = chapter_header("04")
sft_section(ch)
prefs = reward_section(ch)
race_section(ch, prefs)
hacking_section(ch)
beta_section(ch)
show_code(ch)
