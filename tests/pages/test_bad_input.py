"""Bad input typed into the text boxes of pages 01 and 02: never a traceback, always a clear message.

Each text widget gets, in turn, an empty string, 100,000 characters, control characters with emoji and a
zero-width space, and a Korean/English mix; the page runs after each, as when a learner types them.
"""

from __future__ import annotations

import pytest

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
    assert not at.exception, [e.value for e in at.exception]
    problems = []
    for case in cases:
        text = CASES[case]
        _text_widget(at, key).set_value(text)
        at.run()
        where = f"{key}={case}"
        if at.exception:
            problems.append(f"{where}: exception {[e.value for e in at.exception]}")
            continue
        if at.error:
            problems.append(f"{where}: st.error {[e.value for e in at.error]}")
        warnings = [w.value for w in at.warning]
        if case == "empty":
            empty_msg = strings()["error.empty"][LANG]
            if not any(empty_msg in w for w in warnings):
                problems.append(f"{where}: expected a warning saying {empty_msg!r}, got {warnings}")
        elif warnings:  # no quiz is answered here, so any warning is about the input
            problems.append(f"{where}: unexpected warnings {warnings}")
        if case in cut_expected and not _cut_captions(at):
            problems.append(f"{where}: expected a '✂️ Input was cut' caption")
    assert not problems, "\n".join(problems)
