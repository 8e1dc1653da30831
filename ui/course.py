"""The learner's progress in the app: a sidebar box to sign in (by name, optional passphrase, or anonymously) with a
resume link, and the small hooks ui.layout and ui.jobs call to record visits, answers and runs.

Nothing is recorded until the learner signs in, and nothing here can break a page: every call to the store goes
through `_guarded`, which turns a failure (a database that is down, a bad name) into one message and carries on.
The store is one per process and database URL (engine.course.ProgressStore is thread-safe), shared by all sessions.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

from engine.core import catalog
from engine.course import latest_demo
from ui.i18n import pick, t

log = logging.getLogger(__name__)
T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
LEARNER = "_course_learner"  # session state: {"id": int, "name": str, "anonymous": bool} while signed in
_SEEN = "_course_seen"  # (chapter, section) visits recorded in this session
_LAST = "_course_last"  # the chapter the resume point was last moved into in this session
_ANSWERED = "_course_answered"  # quiz key -> the choice last recorded
_WARNED = "_course_warned"  # the store failed once in this session: said so, stay quiet after

_stores: dict[str, Any] = {}
_lock = threading.Lock()


def store():
    """The process's ProgressStore for the configured URL (LLMLAB_DB_URL or SQLite under LLMLAB_CACHE)."""
    from engine.course import ProgressStore, default_db_url

    url = default_db_url()
    with _lock:
        if url not in _stores:
            _stores[url] = ProgressStore(url)
        return _stores[url]


def current() -> dict | None:
    """The signed-in learner of this session, or None."""
    return st.session_state.get(LEARNER)


def md_escape(text: str) -> str:
    """A learner's name as literal text in markdown: `[x](javascript:..)`, `**`, `<b>` show as typed. (Streamlit
    never renders raw HTML in st.markdown without unsafe_allow_html; the escapes stop markdown's own syntax.)"""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$&])", r"\\\1", text)


def _message(exc: Exception) -> str:
    from engine.core.errors import UserError
    from ui.errors import error_message

    return error_message(exc) if isinstance(exc, UserError) else t("course.save_failed", error=type(exc).__name__)


def _guarded(call: Callable[[], T], *, loud: bool = False) -> T | None:
    """`call()`, or None when the store fails: a warning the first time in this session (every time when `loud`),
    never an exception on the page. Progress is a convenience; the lesson must work without it."""
    try:
        return call()
    except Exception as exc:  # the store, the network, the driver: none of it may break a page
        log.warning("learner progress: %s", exc)
        if loud:
            st.warning(_message(exc), icon="⚠️")
        elif not st.session_state.get(_WARNED):
            st.session_state[_WARNED] = True
            st.toast(_message(exc), icon="⚠️")
        return None


def _sign_in(name: str, passphrase: str) -> None:
    learner = _guarded(lambda: store().sign_in(name, passphrase or None), loud=True)
    if learner is not None:
        _set(learner)


def _anonymous() -> None:
    learner = _guarded(lambda: store().anonymous(), loud=True)
    if learner is not None:
        _set(learner)


def _set(learner) -> None:
    st.session_state[LEARNER] = {"id": learner.id, "name": learner.name, "anonymous": learner.anonymous}
    st.session_state[_SEEN] = set()
    st.session_state[_ANSWERED] = {}
    st.session_state.pop(_LAST, None)
    st.session_state.pop(_WARNED, None)


def sign_out() -> None:
    for key in (LEARNER, _SEEN, _LAST, _ANSWERED, _WARNED):
        st.session_state.pop(key, None)


# ---------------------------------------------------------------------------------------------------- the sidebar box


def learner_box() -> None:
    """The sidebar's learner box: sign in, or who is signed in, where to resume, and a short summary."""
    me = current()
    if me is not None:  # the instructor put a demo on every screen (pages/instructor.py): in view, not folded away
        demo = _guarded(lambda: latest_demo(store()))
        if demo is not None:
            st.link_button(t("instr.open_demo"), demo.link, help=demo.note or None, use_container_width=True)
    with st.expander(t("course.title"), expanded=False):
        if me is None:
            with st.form("_course_sign_in", border=False):
                name = st.text_input(t("course.name"), max_chars=64, key="_course_name")
                passphrase = st.text_input(
                    t("course.passphrase"), type="password", key="_course_pass", help=t("course.passphrase_help")
                )
                submitted = st.form_submit_button(t("course.sign_in"))
            if submitted:
                _sign_in(name, passphrase)
                if current() is not None:
                    st.rerun()
            if st.button(t("course.anonymous"), key="_course_anon"):
                _anonymous()
                if current() is not None:
                    st.rerun()
            st.caption(t("course.privacy"))
            return
        st.markdown(t("course.signed_in_as", name=md_escape(me["name"])))
        progress = _guarded(lambda: store().progress(me["id"]))
        if progress is not None:
            sections = sum(len(v) for v in progress.visited.values())
            latest = progress.latest_answers.values()
            st.caption(
                t(
                    "course.summary",
                    sections=sections,
                    correct=sum(a.correct for a in latest),
                    answered=len(latest),
                    runs=len(progress.runs),
                )
            )
            if progress.resume is not None:
                _resume_link(progress.resume.chapter, progress.resume.section)
        if me.get("anonymous"):
            st.caption(t("course.anonymous_id", name=me["name"]))
        if st.button(t("course.sign_out"), key="_course_out"):
            sign_out()
            st.rerun()


def _resume_link(chapter_id: str, section_id: str) -> None:
    try:
        chapter = catalog.chapter(chapter_id)
    except (KeyError, ValueError, LookupError):
        return
    section = next((pick(s.title) for s in chapter.sections if s.id == section_id), None)
    if section is None:  # the chapter itself ("intro"), or a section that was renamed since
        label = t("course.resume_chapter", chapter=pick(chapter.title))
    else:
        label = t("course.resume", chapter=pick(chapter.title), section=section)
    try:
        st.page_link(str(ROOT / chapter.page), label=label, icon="▶️")
    except Exception:  # a page run on its own (no navigation): the link cannot be built, say where instead
        st.caption(label)


# ---------------------------------------------------------------------------------------------------- the hooks


def visited(chapter_id: str, section_id: str, *, resume: bool = False) -> None:
    """A section was drawn for a signed-in learner. A page draws all its sections on every rerun, so a section is
    recorded once per session; a place that moves the resume point (a chapter opened, `resume=True`) is recorded
    whenever the learner arrives in that chapter from another one (chapter 3 -> 5 -> 3 is three visits; a rerun, or
    a quiz answered inside the chapter, is not an arrival)."""
    me = current()
    if me is None:
        return
    place = (chapter_id, section_id)
    if resume:
        if st.session_state.get(_LAST) == chapter_id:
            return
        st.session_state[_LAST] = chapter_id
    else:
        seen: set = st.session_state.setdefault(_SEEN, set())
        if place in seen:
            return
        seen.add(place)
    _guarded(lambda: store().record_visit(me["id"], chapter_id, section_id, resume=resume))


def answered(chapter_id: str, section_id: str, quiz_key: str, choice: Any, correct: bool) -> None:
    """A predict-then-reveal answer, recorded when the learner picks (not again on every rerun). Answering is
    something the learner did in that section, so it also moves the resume point there."""
    me = current()
    if me is None:
        return
    done: dict = st.session_state.setdefault(_ANSWERED, {})
    if done.get(quiz_key) == choice:
        return
    done[quiz_key] = choice
    _guarded(lambda: store().record_answer(me["id"], chapter_id, quiz_key, choice, correct))
    st.session_state.setdefault(_SEEN, set()).add((chapter_id, section_id))
    st.session_state[_LAST] = chapter_id
    _guarded(lambda: store().record_visit(me["id"], chapter_id, section_id, resume=True))


def ran(kind: str, status: str, rows: int, label: str = "") -> None:
    """A job ended (finished, stopped, failed): its key, status and row count, for a signed-in learner."""
    me = current()
    if me is None:
        return
    summary = {"status": status, "rows": int(rows), "label": str(label)[:200]}
    _guarded(lambda: store().record_run(me["id"], kind[:100], summary, chapter=_chapter_of(kind)))


def _chapter_of(job_key: str) -> str | None:
    """'ch16_train_x' -> '16' (job keys start with their chapter), else None."""
    head = job_key.split("_", 1)[0]
    return head[2:] if head.startswith("ch") and head[2:].isdigit() else None
