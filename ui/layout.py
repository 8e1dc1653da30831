"""Page frame shared by every chapter: sidebar, lesson text, show-the-code, quizzes, progress and errors."""

from __future__ import annotations

import contextlib
import functools
import html

import streamlit as st

from engine.core import ProgressFn, catalog
from engine.serving import backend_info, ensure_server
from ui import course
from ui.i18n import LANGS, lang, pick, t
from ui.state import param, sync

# Presenter mode: a projector at 1920x1080, read from the back row. Streamlit sizes its text in rem, so one root
# size scales body text, widget labels, select values, captions, code and table cells together and keeps their
# ratios; headings get their own sizes (title > section > sub-section > body) and nothing else sets a font-size,
# so no rule reaches into a heading's inner span. Charts get their sizes from ui.charts.style (plotly text is SVG).
PRESENTER_ROOT_PX = 24  # Streamlit's own root is 16 px: everything in rem grows 1.5x
PRESENTER_CSS = f"""
<style>
html {{ font-size: {PRESENTER_ROOT_PX}px !important; }}
[data-testid="stMainBlockContainer"] h1 {{ font-size: 2.5rem !important; line-height: 1.2; }}
[data-testid="stMainBlockContainer"] h2 {{ font-size: 1.75rem !important; line-height: 1.25; }}
[data-testid="stMainBlockContainer"] h3 {{ font-size: 1.35rem !important; line-height: 1.3; }}
[data-testid="stMainBlockContainer"] :is(h1, h2, h3) {{ word-break: keep-all; overflow-wrap: anywhere; }}
/* Streamlit's side padding is in rem too: at 1.5x it would waste a tenth of the screen */
[data-testid="stMainBlockContainer"] {{ padding-top: 4rem !important; padding-left: 2.5rem !important;
  padding-right: 2.5rem !important; }}
/* Chapter names whole: a wider sidebar (while it is open; a learner may still widen it), and a name that is still
   too long wraps instead of ending in "..." */
[data-testid="stSidebar"][data-collapsed="false"] {{ min-width: 400px !important; }}
[data-testid="stSidebarNavLink"] {{ height: auto !important; min-height: 2rem; }}
[data-testid="stSidebarNavLink"] span, [data-testid="stSidebarNavLink"] .stMarkdownEllipsis,
[data-testid="stSidebarNavLink"] p {{
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important; line-height: 1.3;
  word-break: keep-all; overflow-wrap: anywhere; /* Korean wraps between words, not inside one */
}}
/* Tables (st.dataframe) are drawn on a canvas with the font size of the root at the moment the grid mounted. A grid
   that mounted before this style arrived (a first load, or presenter mode switched on later) still has the 14 px
   of a 16 px root: zoom it by the same 1.5 (glide-data-grid maps the mouse through the zoom). */
[data-testid="stDataFrame"]:has([style*="--gdg-base-font-style: 400 14px"]) {{
  zoom: {PRESENTER_ROOT_PX / 16}; max-width: 100% !important;
}}
/* ... and Streamlit sizes the grid inside in px of the unzoomed column: keep it within the zoomed frame */
[data-testid="stDataFrame"]:has([style*="--gdg-base-font-style: 400 14px"]) > div {{ max-width: 100% !important; }}
* {{ animation: none !important; transition: none !important; }}
</style>
"""


def sidebar() -> None:
    """Language, presenter mode and the backend panel. Called by app.py on every run."""
    with st.sidebar:
        param("lang", "ko", str, choices=LANGS)
        if st.session_state.get("lang") not in LANGS:  # before the widget exists, state may still be set
            st.session_state["lang"] = st.session_state.get("_lang_last", "ko")
        st.session_state["_lang_last"] = st.session_state["lang"]
        st.segmented_control(
            t("sidebar.language"),
            options=list(LANGS),
            key="lang",
            on_change=_keep_language,
            format_func=lambda code: {"ko": "한국어", "en": "English"}[code],
        )
        param("present", False, choices=(True, False))
        st.toggle(t("sidebar.presenter"), key="present", help=t("sidebar.presenter_help"))
        course.learner_box()
        backend_panel()
    if presenter():
        st.html(PRESENTER_CSS)


def _keep_language() -> None:
    """A click on the language already selected clears a segmented control; callbacks run before the script,
    when state may still be set, so put the previous language back there (never after the widget exists)."""
    if st.session_state.get("lang") not in LANGS:
        st.session_state["lang"] = st.session_state.get("_lang_last", "ko")


def presenter() -> bool:
    return bool(st.session_state.get("present", False))


def seed(key: str = "seed", default: int = 0) -> int:
    """A seed widget; presenter mode fixes it so the projected demo is the one that was rehearsed."""
    if presenter():
        st.caption(t("common.seed_fixed", seed=default))
        return default
    param(key, default, int)
    return int(st.number_input(t("common.seed"), min_value=0, max_value=2**31 - 1, step=1, key=key))


def backend_panel() -> None:
    info = backend_info()
    with st.expander(t("backend.title"), expanded=False):
        health = {
            True: "🟢 " + t("backend.healthy"),
            False: "🔴 " + t("backend.down"),
            None: "⚪ " + t("backend.unknown"),
        }
        st.markdown(
            f"**{t('backend.tier')}**: `{info['tier']}`  \n"
            f"**{t('backend.model')}**: `{info['model']}`  \n"
            f"**{t('backend.device')}**: `{info['device']}`  \n"
            f"**{t('backend.url')}**: `{info.get('url') or t('backend.not_started')}`  \n"
            f"**{t('backend.health')}**: {health[info.get('healthy')]}"
        )
        if info.get("local") and st.button(t("backend.start"), key="_start_server"):
            with st.spinner(t("backend.starting")):
                try:
                    server = ensure_server()
                    st.success(t("backend.started", url=server.url))
                except Exception as exc:  # shown to the user, app keeps working
                    st.error(t("backend.failed", error=str(exc)))


def app_shell_guard() -> None:
    """Make a deep link work on a freshly started server.

    Streamlit treats a top-level pages/ folder as an old-style (v1) multipage app until st.navigation has run
    once in the process, so the very first visit to /llm_map would run the page file alone, without app.py's
    sidebar. Switching the flag off and rerunning sends that first run through app.py like every later one.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def chapter_header(chapter_id: str) -> catalog.Chapter:
    app_shell_guard()
    chapter = catalog.chapter(chapter_id)
    st.title(pick(chapter.title))
    intro = lesson(chapter_id).get("intro")
    if intro:
        st.markdown(intro)
    course.visited(chapter_id, "intro", resume=True)  # a signed-in learner opened this chapter (no-op otherwise)
    return chapter


def lesson(chapter_id: str) -> dict[str, str]:
    return catalog.lesson_text(chapter_id, lang())


def section_header(chapter: catalog.Chapter, section_id: str) -> None:
    """Section title and its lesson text (what to read before running the demo)."""
    title = next((pick(s.title) for s in chapter.sections if s.id == section_id), section_id)
    st.header(title, anchor=section_id)
    text = lesson(chapter.id).get(section_id)
    if text:
        with st.expander(t("common.lesson"), expanded=not presenter()):
            st.markdown(text)
    course.visited(chapter.id, section_id)  # seen (once per session); the resume point stays with the chapter


def live_section(draw):
    """A page section that reruns alone when one of its own widgets changes (`st.fragment`), not the whole page.

    Thirty learners on one 2-core server each moving a slider rerun whole pages (a dozen charts, five lessons) under
    one GIL; a fragment reruns one section's charts. For sections that read only their own widgets (a section that
    reads another's widget sees the change on the next full run). A fragment run skips app.py, so the share link is
    synced here."""

    @st.fragment
    @functools.wraps(draw)
    def section(*args, **kwargs):
        draw(*args, **kwargs)
        sync()

    return section


def notice(title_key: str, body: str) -> None:
    """'What to notice' after a result."""
    st.info(f"**{t(title_key)}** — {body}", icon="🔎")


def quiz(chapter_id: str, section_id: str) -> None:
    """Predict-then-reveal: the learner commits to an answer before seeing the explanation."""
    for i, q in enumerate(x for x in catalog.quiz(chapter_id) if x.get("section") == section_id):
        key = f"quiz_{chapter_id}_{section_id}_{i}"
        with st.container(border=True):
            st.markdown(f"**{t('quiz.predict')}** {pick(q['question'])}")
            options = q["options"][lang()] if isinstance(q["options"], dict) else q["options"]
            choice = st.radio(t("quiz.your_answer"), options, index=None, key=key, label_visibility="collapsed")
            if choice is not None:
                correct = options.index(choice) == q["answer"]
                course.answered(chapter_id, section_id, key, choice, correct)
                (st.success if correct else st.warning)(
                    (t("quiz.correct") if correct else t("quiz.not_quite", answer=options[q["answer"]]))
                    + " "
                    + pick(q["explain"])
                )


def show_code(chapter: catalog.Chapter, refs: list[str] | None = None) -> None:
    """Show the engine source that produced the result (inspect.getsource), as in Streamlit's hello app."""
    refs = refs if refs is not None else list(chapter.code)
    with st.expander(t("common.show_code")):
        for ref in refs:
            st.caption(f"`{ref}`")
            try:
                st.code(catalog.source_of(ref), language="python")
            except (ImportError, AttributeError, OSError) as exc:
                st.caption(f"({exc})")


def progress_callback(bar) -> ProgressFn:
    def report(fraction: float, message: str) -> None:
        bar.progress(max(0.0, min(1.0, fraction)), text=html.escape(message))

    return report


@contextlib.contextmanager
def friendly_errors():
    """Show an error the learner can fix (a `UserError`: bad input, a model that is not there) as a message on the
    page, in the learner's language, and keep the app working. Anything else is a bug: it propagates, and
    Streamlit shows it as an exception."""
    from engine.core.errors import UserError
    from ui.errors import disk_message, error_message, is_backend

    try:
        yield
    except UserError as exc:
        if is_backend(exc):
            st.error(error_message(exc), icon="🛑")
        else:
            st.warning(error_message(exc), icon="⚠️")
    except OSError as exc:  # only a read-only or full disk is the machine's problem, not a bug
        message = disk_message(exc)
        if message is None:
            raise
        st.error(message, icon="💾")


def truncation_note(note: str | None) -> None:
    if note:
        st.caption("✂️ " + t("common.truncated", note=note))


def precomputed_note(pre) -> None:
    """Label a shipped result as such (what made it, where), so nobody mistakes it for a run of their own."""
    st.caption("📦 " + t("common.precomputed", command=pre.command, made=pre.made, machine=pre.machine or "—"))
