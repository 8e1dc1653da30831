"""Chapter 2's page as a learner meets it (AppTest, real tokenizers and models): tokens shown as characters with
their bytes, Kiwi's missing vocabulary explained, and real-model attention computed once per text (the layer and
head sliders only pick from it; an interrupted run waits for a click instead of starting again by itself).
"""

from __future__ import annotations

import json

import pytest

from ui.i18n import strings
from ui.jobs import RUNNING, JobState

PAGE = "pages/02_transformer.py"
S = strings()


def ko(key: str) -> str:
    return S[key]["ko"]


@pytest.fixture
def page(open_page):
    at = open_page(PAGE, "ko")
    assert not at.exception, [e.value for e in at.exception]
    return at


def _table(at, column: str):
    return next(f.value for f in at.dataframe if column in f.value.columns)


def test_tokens_are_characters_with_their_bytes_never_replacement_marks(page):
    chips = page.get("html")
    assert len(chips) == 4 and all("\ufffd" not in c.proto.body for c in chips)
    # 대 is three byte pieces in SmolLM2's byte-level BPE: one dashed chip, its bytes on hover
    assert 'title="ë Į Ģ · ID 182 230 218 · 바이트 EB 8C 80"' in chips[0].proto.body
    assert "dashed" in chips[0].proto.body.split("</span>")[0]
    rows = _table(page, ko("ch2.col_bytes"))
    assert rows.iloc[0][ko("ch2.col_text")] == "대" and rows.iloc[0][ko("ch2.col_bytes")] == "EB 8C 80"


def test_kiwi_vocabulary_is_a_dash_with_its_reason(page):
    summary = _table(page, ko("ch2.col_vocab"))
    by_name = dict(zip(summary[ko("ch2.col_tokenizer")], summary[ko("ch2.col_vocab")], strict=True))
    assert by_name[ko("ch2.tok_kiwi")] == "—"
    assert by_name[ko("ch2.tok_smollm2")] == "49,152"
    assert ko("ch2.vocab_none") in [c.value for c in page.caption]


def test_heatmap_sliders_pick_from_one_forward_pass(page):
    assert all(b.key != "_job_ch2_hm_stop_btn" for b in page.button)  # progress and Stop are gone once it is done
    stack = page.session_state["_job_ch2_hm"].result[1]
    page.slider(key="hm_layer").set_value(5).run()
    assert page.session_state["_job_ch2_hm"].result[1] is stack  # no second forward pass
    titles = [json.loads(c.proto.spec)["layout"].get("title", {}).get("text") for c in page.get("plotly_chart")]
    assert ko("ch2.hm_title_mean").format(model="Gemma-3-270M", layer=5) in titles


def test_an_interrupted_run_waits_for_a_click(page):
    page.session_state["_job_ch2_hm"] = JobState(status=RUNNING)  # as a Stop click leaves it
    page.text_input(key="hm_text").set_value("고양이가 매트 위에 앉았다").run()
    assert not page.exception
    run = [b for b in page.button if b.label == ko("ch2.hm_run")]
    assert run, "no button to compute again after a stop"
    n_charts = len(page.get("plotly_chart"))
    run[0].click().run()
    assert len(page.get("plotly_chart")) == n_charts + 1  # the heatmap is back, for the new text
    assert page.session_state["_job_ch2_hm"].result[0] == ("base-ko", "고양이가 매트 위에 앉았다")
