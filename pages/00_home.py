"""Home: what this lab is, and the map of all chapters (live and planned)."""

import streamlit as st

from engine import catalog
from ui.i18n import pick, t
from ui.layout import app_shell_guard

app_shell_guard()
st.title(t("home.title"))
st.markdown(t("home.intro"))
rows = [
    {
        t("home.col_chapter"): pick(c.title),
        t("home.col_status"): t("home.live") if c.live else t("home.planned"),
        t("home.col_sections"): ", ".join(pick(s.title) for s in c.sections),
    }
    for c in catalog.load_catalog()
]
st.dataframe(rows, hide_index=True, use_container_width=True, height=36 * (len(rows) + 1) + 3)
st.markdown(t("home.how"))
