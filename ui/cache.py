"""Process-wide caches around engine loaders: one model per process, shared by every session.

Not st.cache_resource: that one records the st.* calls made inside the cached function for replay, and the
progress bar a first load draws lives outside it (Streamlit raises CacheReplayClosureError). A dict with a lock
per key gives the same sharing, lets the first caller show progress, and makes the others wait for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import streamlit as st

from engine.core import ProgressFn
from engine.lm import load_tokenizers
from engine.models import LoadedLM, load_causal_lm

_values: dict[tuple, Any] = {}
_locks: dict[tuple, threading.Lock] = {}
_guard = threading.Lock()


def shared(key: tuple, factory: Callable[[ProgressFn], Any], progress: ProgressFn) -> Any:
    if key in _values:
        return _values[key]
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        if key not in _values:  # another session may have finished it while we waited
            _values[key] = factory(progress)
    return _values[key]


def cached(key: tuple, factory: Callable[[ProgressFn], Any], label: str) -> Any:
    """`shared` for a page: the first caller in the process sees a progress bar while `factory` runs; every later
    caller (any session) gets the same object at once. For loaded models, built indexes, pure results."""
    if key in _values:
        return _values[key]
    bar = st.empty()

    def report(fraction: float, message: str) -> None:
        bar.progress(max(0.0, min(1.0, fraction)), text=f"{label}: {message}")

    try:
        return shared(key, factory, report)
    finally:
        bar.empty()


def causal_lm(role: str, label: str) -> LoadedLM:
    return cached(("causal_lm", role), lambda p: load_causal_lm(role, p), label)


def tokenizers(label: str) -> dict[str, object]:
    return cached(("tokenizers",), load_tokenizers, label)
