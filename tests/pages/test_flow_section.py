"""The chapter 2 "flow" section (ui/flow.py) under AppTest, in both languages: no exception, Korean labels on the
Korean page, and one selected token highlighted in every view, whether chosen by a chip or by a chart click."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

import ui.i18n
from tests.pages.audit import audit, english_defaults
from ui.flow import clicked_position


def _script():
    from engine.core import catalog
    from ui.flow import flow_section

    flow_section(catalog.chapter("02"))


@pytest.fixture
def section(monkeypatch):
    def _open(lang: str) -> AppTest:
        monkeypatch.setattr(ui.i18n, "DEFAULT_LANG", lang)  # format_func runs again in the test thread
        at = AppTest.from_function(_script, default_timeout=240)
        at.session_state["lang"] = lang
        return at.run()

    return _open


def _highlights(at: AppTest) -> dict[str, float]:
    """Where each token-indexed chart draws its selection mark (the first shape: an outline or a band)."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    marks = {}
    for spec in specs:
        title = spec["layout"]["title"]["text"]
        shapes = spec["layout"].get("shapes") or []
        if shapes:
            s = shapes[0]
            vertical_band = s["x1"] - s["x0"] <= 1.0  # a one-token column
            marks[title] = (s["x0"] if vertical_band else s["y0"]) + 0.5
    return marks


def test_korean_section_reads_korean(section):
    at = section("ko")
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="flow_text").value == "한국의 수도는 서울이고, 일본의 수도는"
    english, bad = audit(at)
    assert not english and not bad, (english, bad)
    assert not english_defaults(at)
    assert len(at.get("plotly_chart")) == 9  # the last token is selected: one next-token chart, not two
    last = at.session_state["flow_pos"]
    assert last == 43 and set(_highlights(at).values()) == {43.0}  # every view marks the last token
    assert any("␣서" in s.value for s in at.success)  # the model copies 서 from earlier in the sentence
    assert not any("\ufffd" in c.value for c in at.caption)


def test_chip_moves_the_highlight_everywhere(section):
    at = section("ko")
    at.pills(key="flow_pos").set_value(17).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 10
    marks = _highlights(at)
    assert len(marks) == 5 and set(marks.values()) == {17.0}, marks  # emb, rope, attention, block, stream
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert sum("'␣서 (2/3)'" in s for s in titles) >= 4  # rope, attention row, neurons, lens, next token


def test_repeated_tokens_are_distinct_chips(section):
    at = section("ko")
    # "는₃" is both position 15 and 43 ("수도는" twice): st.pills keys options by label, so they must differ
    at.pills(key="flow_pos").set_value(15).run()
    assert at.session_state["flow_pos"] == 15 and set(_highlights(at).values()) == {15.0}


def test_chart_click_selects_that_token(section):
    at = section("ko")
    pos = at.session_state["flow_pos"]
    # what Streamlit stores for a plotly chart drawn with on_select="rerun" when a point is clicked
    at.session_state[f"flow_att_{pos}"] = {
        "selection": {"points": [{"x": 3, "y": 7, "customdata": 7}], "point_indices": [0], "box": [], "lasso": []}
    }
    at.run()
    assert not at.exception
    assert at.session_state["flow_pos"] == 7 and set(_highlights(at).values()) == {7.0}
    assert at.pills(key="flow_pos").value == 7


def test_layer_and_head_controls(section):
    at = section("ko")
    at.slider(key="flow_layer").set_value(3).run()
    at.selectbox(key="flow_head").set_value(-1).run()
    assert not at.exception
    headers = [m.value for m in at.markdown if m.value.startswith("#### ③")]
    assert headers == ["#### ③ 어텐션 — 3층, 헤드 평균"]


def test_english_section_and_bad_input(section):
    at = section("en")
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="flow_text").value.startswith("The capital of Korea")
    assert any("␣Tokyo" in s.value for s in at.success)
    at.text_input(key="flow_text").set_value("   ").run()
    assert not at.exception and at.warning  # empty text: the engine's InputError as a message
    at.text_input(key="flow_text").set_value("word " * 80).run()
    assert not at.exception and any("48" in c.value for c in at.caption if c.value.startswith("✂️"))


def test_clicked_position_ignores_stale_and_empty_selections():
    point = {"selection": {"points": [{"customdata": [4]}]}}
    assert clicked_position({"flow_row_9": point}, 9) == 4
    assert clicked_position({"flow_row_8": point}, 9) is None  # drawn for another selection: gone
    assert clicked_position({"flow_row_9": {"selection": {"points": [{"customdata": 9}]}}}, 9) is None
    assert clicked_position({"flow_row_9": {"selection": {"points": []}}}, 9) is None
