"""Hands-On LLM ch.6 — the prompt studio: the anatomy of a chat template (the model's own Jinja template, token by
token), and six prompting techniques on one Korean task set — zero-/few-shot, chain-of-thought, self-consistency,
tree-of-thought as a real search, structured output with and without a grammar — one problem live (a job with a Stop
button), the whole table shipped (assets/precomputed/h6_prompting.json, `python -m engine prompt-compare`)."""

import streamlit as st

from engine.core import clean_text
from engine.handson import SYSTEM, TECHNIQUES, problems, render_template, run_technique, server_chat, server_structured
from ui import prompting as view
from ui.i18n import t
from ui.jobs import last_job, run_and_keep
from ui.layout import chapter_header, friendly_errors, live_section, notice, quiz, section_header, show_code
from ui.state import param

SS = st.session_state
MAX_CHARS = 4000
TECHS = TECHNIQUES
IDS = [p.id for p in problems()]


@live_section
def template_section(ch) -> None:
    section_header(ch, "template")
    param("tp_system", SYSTEM, str)
    param("tp_user", problems()[0].question, str)
    param("tp_gen", True, bool)
    c = st.columns(2)
    c[0].text_area(t("h6.system"), key="tp_system", height=90)
    c[1].text_area(t("h6.user"), key="tp_user", height=90)
    st.toggle(t("h6.add_generation_prompt"), key="tp_gen", help=t("h6.add_generation_prompt_help"))
    with friendly_errors():
        system, user = clean_text(SS["tp_system"], MAX_CHARS, allow_empty=True), clean_text(SS["tp_user"], MAX_CHARS)
        if system.truncated or user.truncated:
            st.caption("✂️ " + t("h6.truncated", limit=MAX_CHARS))
        messages = ([{"role": "system", "content": system.text}] if system.text else []) + [
            {"role": "user", "content": user.text}
        ]
        view.show_template(render_template(messages, SS["tp_gen"]))
    notice("common.notice", t("h6.notice_template"))
    quiz("H6", "template")


@live_section
def techniques_section(ch) -> None:
    section_header(ch, "techniques")
    pre = view.shipped()
    if pre:
        view.show_table(pre.data)
        st.code(pre.command, language="bash")
    st.subheader(t("h6.live"))
    param("tq_problem", IDS[0], str, choices=IDS)
    param("tq_tech", "cot", str, choices=list(TECHS), labels=view.technique_label)
    c = st.columns([3, 2])
    c[0].selectbox(
        t("h6.problem"),
        IDS,
        key="tq_problem",
        format_func=lambda i: next(p.question for p in problems() if p.id == i),
    )
    # a radio, not a select box: a select box keeps its *label* across a language switch, and the label of the
    # other language is then no technique at all (the monkey test's crash)
    c[1].radio(t("h6.technique"), list(TECHS), key="tq_tech", format_func=view.technique_label)
    problem = next(p for p in problems() if p.id == SS["tq_problem"])
    with st.expander(t("h6.prompt_sent")):
        st.code(view.messages_json(SS["tq_tech"], problem.question), language="json")
    if st.button(t("h6.run"), key="tq_run", type="primary"):
        tech = SS["tq_tech"]

        def work(progress, on_row, should_stop):
            progress(0.05, t("h6.running_one", technique=view.technique_label(tech)))
            samples = 3  # the page's self-consistency: three samples keep one problem under a minute
            from dataclasses import asdict

            return asdict(run_technique(tech, problem, server_chat, server_structured, samples=samples))

        run_and_keep("h6_one", work, t("h6.running"), "h6_attempt", heavy=True)
    last_job("h6_one")
    if SS.get("h6_attempt"):
        view.show_attempt(SS["h6_attempt"])
    notice("common.notice", t("h6.notice_techniques"))
    quiz("H6", "techniques")


ch = chapter_header("H6")
template_section(ch)
techniques_section(ch)
show_code(ch)
