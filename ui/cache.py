"""st.cache_resource / st.cache_data wrapped around engine loaders: one model per process, shared by sessions."""

from __future__ import annotations

import streamlit as st

from engine.models.loading import LoadedLM, load_causal_lm
from engine.progress import ProgressFn, null_progress
from engine.tokenization import load_tokenizers


@st.cache_resource(show_spinner=False, max_entries=4)
def causal_lm(role: str, _progress: ProgressFn = null_progress) -> LoadedLM:
    return load_causal_lm(role, _progress)


@st.cache_resource(show_spinner=False)
def tokenizers(_progress: ProgressFn = null_progress) -> dict[str, object]:
    return load_tokenizers(_progress)


def with_progress(loader, *args, label: str):
    """Run a cached loader, showing a progress bar only while it actually works (first load)."""
    bar = st.empty()

    def report(fraction: float, message: str) -> None:
        bar.progress(max(0.0, min(1.0, fraction)), text=f"{label}: {message}")

    try:
        return loader(*args, _progress=report)
    finally:
        bar.empty()
