"""LLM Practice Lab (LLM 실전 랩): navigation built from lessons/catalog.yaml."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st

from engine.core import catalog
from ui import layout, state
from ui.i18n import pick, t

st.set_page_config(page_title="LLM Practice Lab · LLM 실전 랩", page_icon="🧪", layout="wide")
layout.sidebar()

home = st.Page(str(ROOT / "pages" / "00_home.py"), title=t("home.nav"), icon=":material/home:", default=True)
live = catalog.live_chapters()
chapters = [
    st.Page(str(ROOT / c.page), title=pick(c.title), icon=c.icon, url_path=c.slug) for c in live if c.book == "llm"
]
handson = [
    st.Page(str(ROOT / c.page), title=pick(c.title), icon=c.icon, url_path=c.slug) for c in live if c.book == "handson"
]
# expanded: every live chapter listed (Streamlit folds a menu of more than 12 pages to 10 behind "View more")
instructor = st.Page(str(ROOT / "pages" / "instructor.py"), title=t("instr.nav"), icon=":material/co_present:")
page = st.navigation(
    {
        t("nav.start"): [home],
        t("nav.chapters"): chapters,
        t("nav.handson"): handson,
        t("instr.nav_group"): [instructor],
    },
    expanded=True,
)
try:
    page.run()
except OSError as exc:  # a read-only or full cache disk outside a section's own guard: a message, not a traceback
    from ui.errors import disk_message

    message = disk_message(exc)
    if message is None:
        raise
    st.error(message, icon="💾")
state.sync()
