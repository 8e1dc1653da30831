"""UI strings in Korean (default) and English.

Strings live in ui/strings/*.yaml (one file per chapter or area, so chapters never edit the same file); each key
maps to {ko, en}. A key defined twice is an error, caught by the tests.
"""

from __future__ import annotations

import contextlib
import contextvars
from functools import lru_cache
from pathlib import Path

import streamlit as st
import yaml

LANGS = ("ko", "en")
DEFAULT_LANG = "ko"


STRINGS_DIR = Path(__file__).with_name("strings")


@lru_cache(maxsize=1)
def strings() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for path in sorted(STRINGS_DIR.glob("*.yaml")):
        merged.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return merged


_LANGUAGE: contextvars.ContextVar[str | None] = contextvars.ContextVar("llmlab_language", default=None)


@contextlib.contextmanager
def language(code: str):
    """t() and pick() in `code` inside the block, whatever the session's language (no session state touched)."""
    token = _LANGUAGE.set(code)
    try:
        yield
    finally:
        _LANGUAGE.reset(token)


def lang() -> str:
    if _LANGUAGE.get() is not None:
        return _LANGUAGE.get()
    value = st.session_state.get("lang", DEFAULT_LANG)
    return value if value in LANGS else DEFAULT_LANG


def t(key: str, **fmt) -> str:
    """The string for `key` in the current language; a missing key shows itself rather than crashing."""
    entry = strings().get(key)
    if entry is None:
        return key
    text = entry.get(lang()) or entry.get(DEFAULT_LANG) or key
    return text.format(**fmt) if fmt else text


def maybe(key: str, fallback: str) -> str:
    """t(key) when the strings have it, else `fallback` (a raw identifier the engine may add later)."""
    return t(key) if key in strings() else fallback


def pick(mapping: dict[str, str] | None) -> str:
    """Choose the current language from a {ko, en} mapping (catalog titles, quiz text)."""
    if not mapping:
        return ""
    return mapping.get(lang()) or mapping.get(DEFAULT_LANG) or next(iter(mapping.values()))
