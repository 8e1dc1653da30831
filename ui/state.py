"""Widget state <-> st.query_params, so a copied link reopens the same demo.

Usage in a page: `param("temp", 1.0, float)` before the widget (which uses key="temp"), and `sync()` after
all widgets. Only plain strings go into the URL (no pickle); a value that does not parse falls back to default.
A long text a learner pasted stays out of the URL (LINK_TEXT_MAX): the link still restores every other control,
and the sidebar says which text was left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import streamlit as st

_REGISTERED = "_url_params"
# Bytes of one value once percent-encoded (a Hangul syllable takes 9): about 110 Korean or 1,000 ASCII characters.
# Browsers and proxies start refusing URLs at 8-16 KB, and a page has several text boxes.
LINK_TEXT_MAX = 1_000


def fits_in_link(text: str) -> bool:
    return len(quote(text, safe="")) <= LINK_TEXT_MAX


def _parse_bool(value: str) -> bool:
    return value.lower() in {"1", "true", "yes", "on"}


def param(
    key: str, default: Any, cast: Callable[[str], Any] | None = None, choices=None, labels: Callable | None = None
) -> Any:
    """Seed st.session_state[key] from the URL once per session; returns the current value.

    With `choices`, a value that is no choice is repaired on every run. Streamlit 1.67 stores a radio's or a select
    box's value as its *shown label* and, when the labels change (a language switch re-labels every option), hands
    the old label back as the value. `labels` (the widget's format_func) maps such a label, in either language,
    back to its option; without it the value falls back to `default`."""
    registered = st.session_state.setdefault(_REGISTERED, {})
    registered[key] = default
    if key not in st.session_state:
        raw = st.query_params.get(key)
        value = default
        if raw is not None:
            caster = cast or (_parse_bool if isinstance(default, bool) else type(default))
            try:
                value = caster(raw)
            except (TypeError, ValueError):
                value = default
            if choices is not None and value not in choices:
                value = default
        st.session_state[key] = value
    elif (
        choices is not None
        and isinstance(st.session_state[key], str)
        and not _is_choice(st.session_state[key], choices)
    ):
        st.session_state[key] = _from_label(st.session_state[key], choices, labels, default)
    return st.session_state[key]


def _is_choice(value: Any, choices) -> bool:
    try:
        return value in choices
    except TypeError:  # an unhashable value against a set of choices
        return False


def _from_label(value: str, choices, labels: Callable | None, default: Any) -> Any:
    """The option whose label, in any language, is `value`; else the default."""
    if labels is not None:
        from ui.i18n import LANGS, language

        for code in LANGS:
            with language(code):
                for option in choices:
                    if labels(option) == value:
                        return option
    return default


def clamped(key: str, default: Any, lo: Any, hi: Any, cast: Callable[[str], Any] | None = None) -> None:
    """param() for a slider: a value from the URL outside the slider's range falls back to the default."""
    param(key, default, cast)
    if not lo <= st.session_state[key] <= hi:
        st.session_state[key] = default


def sync(keys: list[str] | None = None) -> None:
    """Write the registered widget values back into the URL (only those that differ from defaults)."""
    registered = st.session_state.get(_REGISTERED, {})
    left_out = []
    for key in keys or list(registered):
        if key not in st.session_state:
            continue
        value = st.session_state[key]
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if value == registered.get(key) or not fits_in_link(text):
            if value != registered.get(key):
                left_out.append(len(text))
            if key in st.query_params:
                del st.query_params[key]
            continue
        if st.query_params.get(key) != text:
            st.query_params[key] = text
    if left_out:
        from ui.i18n import t

        st.sidebar.caption("🔗 " + t("share.text_left_out", chars=", ".join(f"{n:,}" for n in left_out)))
