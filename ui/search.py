"""Search results as a table: one row per hit (chapters 10 and 11 show the same shape)."""

from __future__ import annotations

import pandas as pd
import streamlit as st


def hits_table(hits, text_chars: int = 80) -> None:
    """rank · doc_id · score · the start of the document's text, for a list of engine.retrieval Hit."""
    rows = [{"rank": h.rank, "doc_id": h.doc_id, "score": round(h.score, 4), "text": h.text[:text_chars]} for h in hits]
    st.dataframe(pd.DataFrame(rows, columns=["rank", "doc_id", "score", "text"]), hide_index=True)
