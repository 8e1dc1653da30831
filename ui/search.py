"""Search results as a table: one row per hit (chapters 10 and 11 show the same shape)."""

from __future__ import annotations

import pandas as pd
import streamlit as st


def hits_table(hits, text_chars: int = 80) -> None:
    """rank · doc_id · score · the start of the document's text, for a list of engine.retrieval Hit."""
    rows = [{"rank": h.rank, "doc_id": h.doc_id, "score": round(h.score, 4), "text": h.text[:text_chars]} for h in hits]
    st.dataframe(pd.DataFrame(rows, columns=["rank", "doc_id", "score", "text"]), hide_index=True)


INDEX_KEY = ("search_index", "constitution")


def constitution_index():
    """The built Korean search index, loaded once per process and shared by pages 10 and 11; None if not built."""
    from engine.core import null_progress
    from engine.retrieval import index_built, load_index
    from ui.cache import shared

    if not index_built("constitution"):
        return None
    return shared(INDEX_KEY, lambda p: load_index("constitution", p), null_progress)


def build_constitution_index(label: str) -> None:
    """Build the index (minutes, with a progress bar) and keep it for every session."""
    from engine.retrieval import build_index
    from ui.cache import cached

    cached(INDEX_KEY, lambda p: build_index("constitution", p), label)
