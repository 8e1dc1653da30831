"""Share links: every control goes into the URL, except a long text, which is left out with a note."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from ui.state import LINK_TEXT_MAX, fits_in_link


def _script():
    import streamlit as st

    from ui.state import param, sync

    param("text", "기본 예시", str)
    param("n", 3, int)
    st.text_area("text", key="text")
    st.slider("n", 1, 10, key="n")
    sync()


def test_long_text_stays_out_of_the_link_and_the_rest_is_kept():
    at = AppTest.from_function(_script).run()
    at.slider[0].set_value(7)
    at.text_area[0].input("가" * 500).run()  # 500 syllables = 4,500 bytes once percent-encoded
    assert at.query_params.get("n") == "7"
    assert "text" not in at.query_params
    assert any("500" in c.value for c in at.sidebar.caption)


def test_short_text_is_in_the_link_and_restores():
    at = AppTest.from_function(_script).run()
    at.text_area[0].input("짧은 글 short").run()
    assert at.query_params.get("text") == "짧은 글 short"
    again = AppTest.from_function(_script)
    again.query_params["text"] = "짧은 글 short"
    again.query_params["n"] = "9"
    again.run()
    assert again.text_area[0].value == "짧은 글 short" and again.slider[0].value == 9
    assert not again.sidebar.caption


def test_bound_counts_encoded_bytes():
    assert fits_in_link("a" * LINK_TEXT_MAX) and not fits_in_link("a" * (LINK_TEXT_MAX + 1))
    assert not fits_in_link("가" * (LINK_TEXT_MAX // 9 + 1))


def test_a_stale_label_maps_back_to_its_option(monkeypatch):
    """Streamlit 1.67 hands a radio's old *label* back as its value after a language switch; param() repairs it."""
    import streamlit as st

    from ui.i18n import t
    from ui.state import param

    state: dict = {"lang": "ko"}
    monkeypatch.setattr(st, "session_state", state)
    monkeypatch.setattr(st, "query_params", {})
    labels = lambda k: t(f"h6.tech_{k}")  # noqa: E731
    choices = ["zero_shot", "cot"]
    state["tq_tech"] = "Chain-of-thought (CoT)"  # the English label, the page now in Korean
    assert param("tq_tech", "zero_shot", str, choices=choices, labels=labels) == "cot"
    state["tq_tech"] = "no such label"
    assert param("tq_tech", "zero_shot", str, choices=choices, labels=labels) == "zero_shot"
    assert state["lang"] == "ko"  # the session's language was never touched
