"""Chapter 6 — training an sLLM for Text2SQL: Chinook and Spider, prompt strategies, execution accuracy and the LLM
judge, LoRA fine-tuning, and the read-only executor. The model server, evaluations and training run only behind
buttons; a fresh page shows shipped results (assets/precomputed/ch06_*.json)."""

import dataclasses

import streamlit as st

from engine.text2sql import (
    DEFAULT_STRATEGY,
    MAX_UPLOAD_BYTES,
    STRATEGIES,
    check_question,
    chinook,
    chinook_questions,
    evaluate_set,
    predict,
    spider_db_ids,
    spider_dev,
)
from ui import text2sql as view
from ui.i18n import t
from ui.jobs import last_job, run_job, show_job_status
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, seed, show_code
from ui.state import clamped, param
from ui.tracking import track_toggle, tracked, tracked_note

SS = st.session_state
SAFETY_CHIPS = ("delete", "multi", "attach", "pragma", "cte")


def data_section(ch) -> None:
    section_header(ch, "data")
    st.subheader(t("ch06.schema_title"))
    view.show_schema(chinook())
    st.subheader(t("ch06.questions_title"))
    view.split_counts()
    param("dt_split", "test", str, choices=("train", "dev", "test"))
    param("dt_level", "all", str, choices=("all", *view.LEVELS))
    c1, c2 = st.columns(2)
    c1.radio(t("ch06.split"), ["train", "dev", "test"], key="dt_split", horizontal=True, format_func=split_name)
    c2.radio(t("ch06.level"), ["all", *view.LEVELS], key="dt_level", horizontal=True, format_func=level_name)
    view.show_questions(SS["dt_split"], [] if SS["dt_level"] == "all" else [SS["dt_level"]])
    st.subheader(t("ch06.spider_title"))
    view.spider_numbers()
    st.subheader(t("ch06.synthetic_title"))
    pre = view.shipped_note("ch06_synthetic")
    if pre:
        view.synthetic_counts(pre.data)
        examples = pre.data.get("examples") or []
        if examples:
            with st.expander(t("ch06.synthetic_examples", n=len(examples))):
                view.pair_rows(examples)
    clamped("sy_n", 20, 5, 100, int)
    c1, c2 = st.columns([3, 1])
    c1.slider(t("ch06.synthetic_n"), 5, 100, step=5, key="sy_n")
    with c2:
        sy_seed = seed("sy_seed")
    if st.button(t("ch06.synthetic_run"), key="sy_run"):
        with friendly_errors(), st.spinner(t("ch06.synthetic_running")):
            SS["ch06_pairs"] = view.live_pairs(SS["sy_n"], sy_seed)
    live = SS.get("ch06_pairs")
    if live:
        st.caption(t("ch06.synthetic_live", n=live["n"], kept=live["kept"], dropped=sum(live["dropped"].values())))
        view.pair_rows(live["rows"])
    notice("common.notice", t("ch06.notice_data"))
    quiz("06", "data")


def split_name(split: str) -> str:
    return t(f"ch06.split_{split}")


def level_name(level: str) -> str:
    return t("ch06.level_all") if level == "all" else view.level_label(level)


def use_chip() -> None:
    if SS.get("gen_chip"):
        SS["gen_question"] = SS["gen_chip"]


def generate_section(ch) -> None:
    section_header(ch, "generate")
    ids = spider_db_ids()
    param("gen_db", "chinook", str, choices=("chinook", "spider", "upload"))
    param("gen_spider", ids[0], str, choices=tuple(ids))
    param("gen_strategy", DEFAULT_STRATEGY, str, choices=tuple(STRATEGIES))
    param("gen_question", t("ch06.default_question"), str)
    c1, c2 = st.columns(2)
    c1.radio(t("ch06.db"), ["chinook", "spider", "upload"], key="gen_db", format_func=lambda v: t(f"ch06.db_{v}"))
    if SS["gen_db"] == "spider":
        c2.selectbox(t("ch06.spider_db"), ids, key="gen_spider")
    elif SS["gen_db"] == "upload":
        mb = MAX_UPLOAD_BYTES // 1_000_000
        kinds = ["sqlite", "db", "sqlite3"]
        c2.file_uploader(t("ch06.upload"), type=kinds, key="gen_upload", help=t("ch06.upload_help", mb=mb))
    c2.selectbox(t("ch06.strategy"), list(STRATEGIES), key="gen_strategy", format_func=view.strategy_label)
    c2.caption(t(f"ch06.strategy_help_{view.slug(SS['gen_strategy'])}"))
    db = None
    with friendly_errors():
        db = view.database(SS["gen_db"], SS["gen_spider"])
    if SS["gen_db"] == "spider":
        samples = [e.question for e in spider_dev(db_ids=[SS["gen_spider"]])[:4]]
    else:
        samples = [q.question for q in chinook_questions("dev")[::6]]
    if SS["gen_db"] != "upload":
        st.pills(t("ch06.samples"), samples, key="gen_chip", on_change=use_chip)
    st.text_area(t("ch06.question"), key="gen_question", height=80, help=t("ch06.question_help"))
    note = st.container()  # the shipped answer's label goes above the answer it labels
    if st.button(t("ch06.generate"), key="gen_run", type="primary", disabled=db is None):
        with friendly_errors():
            question, strategy = check_question(SS["gen_question"]), SS["gen_strategy"]
            work = lambda p, on_row, stop: predict(db, question, strategy, progress=p)  # noqa: E731
            job = run_job("ch06_generate", work, label=t("ch06.generating"))
            if job.complete:
                SS["ch06_answer"] = view.answer_view(job.result, question, db)
    shown = SS.get("ch06_answer")
    if shown is None and SS["gen_db"] == "chinook":
        with note:
            pre = view.shipped_note("ch06_answer")
        shown = pre.data if pre else None
    if shown is not None:
        view.show_answer(shown)
        if shown.get("zero_shot"):
            with st.expander(t("ch06.zero_shot_title")):
                view.show_answer({**shown["zero_shot"], "question": shown["question"], "model": shown.get("model")})
    notice("common.notice", t("ch06.notice_generate"))
    quiz("06", "generate")


def evaluate_section(ch) -> None:
    section_header(ch, "evaluate")
    pre = view.shipped_note("ch06_strategies")
    if pre:
        view.show_strategies(pre.data)
    st.subheader(t("ch06.eval_live_title"))
    clamped("ev_n", 10, 5, 60, int)
    param("ev_strategy", DEFAULT_STRATEGY, str, choices=tuple(STRATEGIES))
    c1, c2 = st.columns(2)
    c1.slider(t("ch06.eval_n"), 5, 60, key="ev_n", help=t("ch06.eval_n_help"))
    c2.selectbox(t("ch06.strategy"), list(STRATEGIES), key="ev_strategy", format_func=view.strategy_label)
    if st.button(t("ch06.eval_run"), key="ev_run"):
        with friendly_errors():
            n, strategy = SS["ev_n"], SS["ev_strategy"]
            SS["ch06_eval_planned"] = n

            def work(p, on_row, stop):
                return evaluate_set("chinook-test", strategy, limit=n, progress=p, should_stop=stop, on_row=on_row)

            job = run_job("ch06_eval", work, label=t("ch06.evaluating"))
            if job.complete:
                SS["ch06_eval"] = job.result.to_json()
    show_job_status("ch06_eval")
    job = last_job("ch06_eval")
    data = SS.get("ch06_eval") if job.status in (None, "finished") else None
    if data:
        view.show_eval(data["rows"], data["planned"])
    elif job.rows:
        view.show_eval([dataclasses.asdict(r) for r in job.rows], SS.get("ch06_eval_planned", len(job.rows)))
    elif pre and (shipped := view.shipped_answers(pre.data, SS["ev_strategy"]))[0]:  # before a run: shipped answers
        with st.expander(t("ch06.eval_shipped_rows", strategy=shipped[1])):
            view.eval_rows(shipped[0])
    st.subheader(t("ch06.judge_title"))
    pre = view.shipped_note("ch06_judge")
    if pre:
        view.show_judge(pre.data)
    judge_this()
    notice("common.notice", t("ch06.notice_evaluate"))
    quiz("06", "evaluate")


def judge_this() -> None:
    answer = SS.get("ch06_answer")
    if answer is None:
        pre = view.load_precomputed("ch06_answer")
        answer = pre.data if pre else None
    if not answer or not answer.get("sql"):
        st.caption(t("ch06.judge_needs_answer"))
        return
    st.markdown(t("ch06.judge_this", question=answer["question"]))
    gold = view.known_gold(answer["question"])
    if gold is None:
        param("jd_gold", "", str)
        st.text_area(t("ch06.gold_sql"), key="jd_gold", height=80, help=t("ch06.gold_sql_help"))
        gold = SS["jd_gold"]
    else:
        st.caption(t("ch06.gold_known"))
        st.code(gold, language="sql")
    if st.button(t("ch06.judge_run"), key="jd_run", disabled=not gold.strip()):
        with friendly_errors(), st.spinner(t("ch06.judging")):
            SS["ch06_judged"] = view.judge_one(answer, gold)
    judged = SS.get("ch06_judged")
    if judged and judged.get("question") == answer["question"]:
        view.show_judged(judged)


def finetune_section(ch) -> None:
    section_header(ch, "finetune")
    pre = view.shipped_note("ch06_finetune")
    if pre:
        view.show_finetune_shipped(pre.data)
    st.subheader(t("ch06.ft_live_heading"))
    clamped("ft_steps", 10, 1, 60, int)
    st.slider(t("ch06.ft_steps"), 1, 60, key="ft_steps", help=t("ch06.ft_steps_help"))
    left, right = st.columns([4, 1], vertical_alignment="center")
    clicked = left.button(t("ch06.ft_run"), key="ft_run")
    on = track_toggle("ch06_track", "ch06_ft", right)
    if clicked:
        with friendly_errors():
            steps, slot = SS["ft_steps"], st.empty()

            def work(p, on_row, stop):
                return view.finetune_live(steps, p, view.streaming(slot, on_row), stop)

            job = run_job(
                "ch06_ft",
                tracked("ch06_ft", work, view.finetune_track(steps), on),
                label=t("ch06.ft_running"),
                heavy=True,
            )
            slot.empty()
            if job.complete:
                SS["ch06_ft"] = job.result
    show_job_status("ch06_ft")
    tracked_note("ch06_ft")
    run = SS.get("ch06_ft")
    job = last_job("ch06_ft")
    if run and job.status == "finished":
        view.show_finetune_live(run)
    elif job.rows:
        view.show_loss_rows(job.rows)
    notice("common.notice", t("ch06.notice_finetune"))
    quiz("06", "finetune")


def use_safety_chip() -> None:
    chip = SS.get("sf_chip")
    if chip:
        SS["sf_sql"] = t(f"ch06.safety_sql_{chip}")


def safety_section(ch) -> None:
    section_header(ch, "safety")
    param("sf_sql", t("ch06.safety_sql_delete"), str)
    chips = list(SAFETY_CHIPS)
    st.pills(t("ch06.safety_chips"), chips, key="sf_chip", on_change=use_safety_chip, format_func=chip_name)
    st.text_area(t("ch06.safety_sql"), key="sf_sql", height=110, help=t("ch06.safety_sql_help"))
    if st.button(t("ch06.safety_run"), key="sf_run"):
        with friendly_errors(), st.spinner(t("ch06.safety_running")):
            SS["ch06_guarded"] = view.run_guarded(SS["sf_sql"])
    if SS.get("ch06_guarded"):
        view.show_guarded(SS["ch06_guarded"])
    notice("common.notice", t("ch06.notice_safety"))
    quiz("06", "safety")


def chip_name(chip: str) -> str:
    return t(f"ch06.safety_chip_{chip}")


ch = chapter_header("06")
data_section(ch)
generate_section(ch)
evaluate_section(ch)
finetune_section(ch)
safety_section(ch)
show_code(ch)
