"""The prompt studio page through AppTest: the template view follows its controls; an empty message is a message,
not a traceback; one live run on the real llama.cpp server draws its result."""

from __future__ import annotations

import pytest

from tests.pages.conftest import clean, message_start, warnings_of

PAGE = "pages/96_prompting.py"


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_template_follows_the_controls(open_page, lang):
    at = open_page(PAGE, lang)
    clean(at)
    assert [h.proto.anchor for h in at.header] == ["template", "techniques"]
    tokens = at.dataframe[0].value.iloc[:, 1].tolist()
    assert tokens[-2:] == ["assistant", "\\n"]  # the generation prompt is on by default
    at.toggle(key="tp_gen").set_value(False).run()
    assert at.dataframe[0].value.iloc[:, 1].tolist()[-2:] == ["<|im_end|>", "\\n"]
    at.text_area(key="tp_system").set_value("").run()
    shown = at.code[0].value
    assert "You are Qwen" in shown  # no system message: the template inserts its default one


def test_empty_user_message_is_a_message(open_page):
    at = open_page(PAGE, "ko")
    at.text_area(key="tp_user").set_value("   ").run()
    clean(at)
    assert any(w.startswith(message_start("input.empty", "ko")) for w in warnings_of(at)), warnings_of(at)


@pytest.mark.server
def test_one_live_run(open_page):
    at = open_page(PAGE, "en")
    at.radio(key="tq_tech").set_value("zero_shot").run()
    at.button(key="tq_run").click().run()
    clean(at)
    shown = [m.value for m in at.success] + warnings_of(at)
    assert any("correct answer 15" in s for s in shown), shown
