"""Helpers for the AppTest page tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui.i18n

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 240  # seconds per script run: generous, a first model load in a fresh cache converts the weights once


# ch.13 (page-tracking): the pages' training buttons log to MLflow by default ("Track in MLflow" is on); a page test
# that trains writes into a store of the test session, never into a developer's cache. A test that points
# LLMLAB_TRACKING_URI or LLMLAB_CACHE (with delenv) somewhere else itself still wins: its fixture runs after this one.
@pytest.fixture(scope="session")
def _session_tracking_store(tmp_path_factory) -> str:
    return f"sqlite:///{(tmp_path_factory.mktemp('tracking') / 'mlflow.db').as_posix()}"


@pytest.fixture(autouse=True)
def _tracking_store(_session_tracking_store, monkeypatch) -> str:
    monkeypatch.setenv("LLMLAB_TRACKING_URI", _session_tracking_store)
    return _session_tracking_store


@pytest.fixture
def open_page(monkeypatch):
    """`open_page("pages/01_llm_map.py", "en")` -> an AppTest that has run once in that language.

    AppTest evaluates a radio's `format_func` again in the test thread, where st.session_state is not
    available and `lang()` falls back to the default; pointing the default at the language under test keeps
    those labels equal to the ones the script drew (otherwise a second run fails to find the selected option).
    """

    def _open(path: str, lang: str) -> AppTest:
        monkeypatch.setattr(ui.i18n, "DEFAULT_LANG", lang)
        at = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT)
        at.session_state["lang"] = lang
        return at.run()

    return _open


def exceptions(at: AppTest) -> list[str]:
    """The exceptions a run showed, each with the end of its traceback (an exception on a page is a bug: a
    learner's mistake is a UserError that friendly_errors turns into a message)."""
    return [f"{e.value}\n" + "\n".join(list(e.stack_trace)[-6:]) for e in at.exception]


def clean(at) -> None:
    """No exception and no st.error on the page."""
    assert not at.exception, exceptions(at)
    assert not at.error, [e.value for e in at.error]


def warnings_of(at) -> list[str]:
    return [w.value for w in at.warning]


def message_start(code: str, lang: str) -> str:
    """The translated sentence of an error code up to its first placeholder (what the learner reads)."""
    from ui.i18n import strings

    return strings()[f"error.{code}"][lang].split("{")[0].strip()


def metric_value(at, key: str) -> str:
    """The value of the st.metric whose label is the string `key` (in either language)."""
    from ui.i18n import strings

    label = strings()[key]
    return next(m.value for m in at.metric if m.label in label.values())
