"""Home: what this lab is, and the map of all chapters (live and planned)."""

import pandas as pd
import streamlit as st

from engine.core import catalog
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
# a static table wraps long section lists instead of clipping them
st.table(pd.DataFrame(rows).set_index(t("home.col_chapter")))
st.markdown(t("home.how"))
