"""Bad input typed into the text boxes: never a traceback, always a clear message.

Pages 01 and 02: each text widget gets, in turn, an empty string, 100,000 characters, control characters with emoji
and a zero-width space, and a Korean/English mix; the page runs after each, as when a learner types them.
Every live page: each text box gets an empty string and garbage; the page must not raise (a learner's mistake is a
UserError, shown as a message by friendly_errors; any other exception is a bug and fails here).
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from engine.core import catalog
from tests.pages.conftest import exceptions
from ui.i18n import strings

LANG = "en"
HUGE = "가나다 abc " * 12_500  # 100,000 characters
CASES = {
    "empty": "",
    "huge": HUGE,
    "control_emoji": "\x00\x07abc😀\u200b",
    "ko_en_mix": "대한민국의 수도는 Seoul이고, the capital of France is 파리 (Paris)입니다.",
}
# key -> (page, cases after which a "✂️ Input was cut: ..." caption must show)
WIDGETS = {
    # the prompt keeps its last 512 tokens; removed control characters are reported
    "lm_prompt": ("pages/01_llm_map.py", {"huge", "control_emoji"}),
    # four tokenizers take up to 100,000 characters, so nothing is cut; control characters are reported
    "tok_text": ("pages/02_transformer.py", {"control_emoji"}),
    # the step-by-step walkthrough shows a handful of tokens
    "att_text": ("pages/02_transformer.py", {"huge"}),
    # real-model heatmaps stop at 128 tokens
    "hm_text": ("pages/02_transformer.py", {"huge"}),
}
assert len(HUGE) == 100_000


def _text_widget(at, key: str):
    for w in [*at.text_area, *at.text_input]:
        if w.key == key:
            return w
    raise AssertionError(f"no text widget with key {key!r}")


def _cut_captions(at) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("✂️")]


# The 100,000-character runs take 10-30 s each on 2 cores (a 512-token forward pass, 100k characters through
# four tokenizers), so they run with the slow tests; the other cases run on every `make test`.
GROUPS = [
    pytest.param(("empty", "control_emoji", "ko_en_mix"), id="short"),
    pytest.param(("huge",), id="huge", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("cases", GROUPS)
@pytest.mark.parametrize("key", list(WIDGETS))
def test_bad_text_input(open_page, key: str, cases: tuple[str, ...]):
    page, cut_expected = WIDGETS[key]
    at = open_page(page, LANG)
    assert not at.exception, exceptions(at)
    problems = []
    for case in cases:
        text = CASES[case]
        _text_widget(at, key).set_value(text)
        at.run()
        where = f"{key}={case}"
        if at.exception:
            problems.append(f"{where}: exception {exceptions(at)}")
            continue
        if at.error:
            problems.append(f"{where}: st.error {[e.value for e in at.error]}")
        warnings = [w.value for w in at.warning]
        if case == "empty":
            empty_msg = strings()["error.input.empty"][LANG]
            if not any(empty_msg in w for w in warnings):
                problems.append(f"{where}: expected a warning saying {empty_msg!r}, got {warnings}")
        elif warnings:  # no quiz is answered here, so any warning is about the input
            problems.append(f"{where}: unexpected warnings {warnings}")
        if case in cut_expected and not _cut_captions(at):
            problems.append(f"{where}: expected a '✂️ Input was cut' caption")
    assert not problems, "\n".join(problems)


# friendly_errors: a UserError becomes a message in the learner's language; anything else propagates


def _friendly_script(kind: str) -> None:
    import streamlit as st

    from engine.core import InputError, parse_numbers
    from engine.models import ModelUnavailable
    from ui.layout import friendly_errors

    with friendly_errors():
        if kind == "input":
            parse_numbers("1, x", name="batch sizes")
        elif kind == "sentence":
            raise InputError("type one Korean word")
        elif kind == "model":
            raise ModelUnavailable("role 'chat' has no local GGUF file")
        elif kind == "bug":
            raise ValueError("a bug, not the learner's mistake")
    st.write("after")


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_friendly_errors_translates_user_errors(lang, monkeypatch):
    import ui.i18n

    monkeypatch.setattr(ui.i18n, "DEFAULT_LANG", lang)
    at = AppTest.from_function(_friendly_script, args=("input",))
    at.session_state["lang"] = lang
    at.run()
    assert not at.exception and not at.error
    label = strings()["error.name.batch_sizes"][lang]
    [warning] = [w.value for w in at.warning]
    assert label in warning and "'x'" in warning
    assert [m.value for m in at.markdown] == ["after"]  # the page goes on

    at = AppTest.from_function(_friendly_script, args=("sentence",))
    at.session_state["lang"] = lang
    at.run()
    frame = strings()["error.input.invalid"][lang].split("{")[0]
    assert [w.value for w in at.warning] == [frame + "type one Korean word"]

    at = AppTest.from_function(_friendly_script, args=("model",))
    at.session_state["lang"] = lang
    at.run()
    assert not at.exception and len(at.error) == 1 and "GGUF" in at.error[0].value


def test_friendly_errors_lets_bugs_through():
    at = AppTest.from_function(_friendly_script, args=("bug",)).run()
    assert at.exception and "a bug" in at.exception[0].value
    assert not at.warning


BAD_ANY = {"empty": "", "garbage": "abc, -1, 0, 1e99, {not json ]😀\x00"}
LIVE_PAGES = [pytest.param(c.page, id=c.slug) for c in catalog.live_chapters() if c.page]


@pytest.mark.parametrize("path", LIVE_PAGES)
def test_every_text_box_survives_bad_input(open_page, path: str):
    """Type an empty string and garbage into each text box of a live page (buttons are not pressed)."""
    at = open_page(path, LANG)
    assert not at.exception, exceptions(at)
    keys = [w.key for w in [*at.text_area, *at.text_input] if w.key and not getattr(w, "disabled", False)]
    problems = []
    for key in keys:
        original = _text_widget(at, key).value
        for case, text in BAD_ANY.items():
            _text_widget(at, key).set_value(text)
            at.run()
            if at.exception:
                problems.append(f"{key}={case}: exception {exceptions(at)}")
        _text_widget(at, key).set_value(original)
        at.run()
    assert not problems, "\n".join(problems)
