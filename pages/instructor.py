"""The instructor's view of a course: who is on which chapter, the live answers to a quiz question (a projected
poll), and a demo state put on every learner's screen. Everything is read from the progress database the learners'
sidebar writes to (engine.course); when LLMLAB_INSTRUCTOR_KEY is set, the page asks for it first."""

import hmac
from datetime import datetime, timezone

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.core import catalog, get_settings
from engine.course import class_now, latest_demo, poll, publish_demo
from ui import course
from ui.i18n import pick, t
from ui.layout import friendly_errors

SS = st.session_state
OPEN = "_instructor_open"


def gate() -> bool:
    """True when this session may see the class (no key configured, or the right key typed once)."""
    key = get_settings().instructor_key
    if not key or SS.get(OPEN):
        return True
    typed = st.text_input(t("instr.key"), type="password", key="_instr_key")
    if typed:
        if hmac.compare_digest(typed.encode(), key.encode()):
            SS[OPEN] = True
            st.rerun()
        st.warning(t("instr.key_wrong"), icon="🔒")
    return False


def _ago(at: datetime | None) -> str:
    if at is None:
        return "—"
    minutes = max(0, int((datetime.now(timezone.utc) - at).total_seconds() // 60))
    return t("instr.minutes_ago", n=minutes)


def _where(chapter_id: str | None, section_id: str | None) -> tuple[str, str]:
    if not chapter_id:
        return "—", "—"
    try:
        ch = catalog.chapter(chapter_id)
    except (KeyError, ValueError, LookupError):
        return chapter_id, section_id or "—"
    section = next((pick(s.title) for s in ch.sections if s.id == section_id), section_id or "—")
    return pick(ch.title), section


def class_section() -> None:
    st.subheader(t("instr.class_title"))
    minutes = st.select_slider(t("instr.active"), [5, 15, 60, 240, 1440], value=60, key="in_active")
    with friendly_errors():
        rows = class_now(course.store(), active_minutes=minutes)
        if not rows:
            st.info(t("instr.nobody"), icon="👥")
            return
        table = []
        for r in rows:
            chapter, section = _where(r.chapter, r.section)
            table.append(
                {
                    t("instr.col_name"): r.name,  # a dataframe cell is text, never markup
                    t("instr.col_chapter"): chapter,
                    t("instr.col_section"): section,
                    t("instr.col_seen"): _ago(r.at),
                    t("instr.col_answers"): f"{r.correct}/{r.answers}",
                }
            )
        st.dataframe(pd.DataFrame(table), hide_index=True, use_container_width=True)
        counts = pd.Series([_where(r.chapter, None)[0] for r in rows]).value_counts()
        st.caption(" · ".join(f"{name}: {n}" for name, n in counts.items()))


def poll_section() -> None:
    st.subheader(t("instr.poll_title"))
    chapters = [c for c in catalog.live_chapters() if catalog.quiz(c.id)]
    ch = st.selectbox(t("instr.chapter"), chapters, format_func=lambda c: pick(c.title), key="in_chapter")
    questions = []
    for section in ch.sections:
        for i, q in enumerate(x for x in catalog.quiz(ch.id) if x.get("section") == section.id):
            questions.append((f"quiz_{ch.id}_{section.id}_{i}", q))  # the key ui.layout.quiz gives the radio
    if not questions:
        st.info(t("instr.no_questions"))
        return
    key, q = st.selectbox(
        t("instr.question"), questions, format_func=lambda kq: pick(kq[1]["question"])[:90], key=f"in_q_{ch.id}"
    )
    st.markdown(f"**{pick(q['question'])}**")
    with friendly_errors():
        result = poll(course.store(), key)
    st.caption(t("instr.answered", n=result.total))
    if result.total:
        choices = list(result.counts)
        colors = ["#2ca02c" if result.correct.get(c) else "#9aa5b1" for c in choices]
        fig = go.Figure(go.Bar(x=[result.counts[c] for c in choices], y=choices, orientation="h", marker_color=colors))
        fig.update_layout(
            height=80 + 40 * len(choices), margin=dict(l=10, r=10, t=10, b=10), yaxis_autorange="reversed"
        )
        st.plotly_chart(fig, use_container_width=True)
    st.button(t("instr.refresh"), key="in_refresh")  # a click reruns the page: the newest answers


def demo_section() -> None:
    st.subheader(t("instr.demo_title"))
    st.caption(t("instr.demo_help"))
    link = st.text_input(t("instr.demo_link"), key="in_link", max_chars=4000, placeholder="/mamba?s4_n=16")
    note = st.text_input(t("instr.demo_note"), key="in_note", max_chars=300)
    if st.button(t("instr.demo_publish"), key="in_publish", type="primary"):
        with friendly_errors():
            demo = publish_demo(course.store(), link, note)
            st.success(t("instr.demo_published", link=demo.link), icon="📣")
    with friendly_errors():
        current = latest_demo(course.store())
        if current is not None:
            st.caption(t("instr.demo_current", link=current.link, ago=_ago(current.at)))


st.title(t("instr.title"))
if gate():
    class_section()
    poll_section()
    demo_section()
