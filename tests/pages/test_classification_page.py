"""Hands-On ch.4 page through AppTest: a fresh page opens its three sections in both languages with the shipped
comparison (table, scores chart, a confusion matrix), and the try box refuses an empty or a huge text with the
translated message before anything is trained."""

from __future__ import annotations

import pytest

from engine.core import load_precomputed
from tests.pages.conftest import clean, message_start, warnings_of

PAGE = "pages/94_classification.py"


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_fresh_page_shows_the_shipped_comparison(open_page, lang):
    at = open_page(PAGE, lang)
    clean(at)
    assert [h.proto.anchor for h in at.header] == ["methods", "confusion", "try"]
    shipped = load_precomputed("h4_classify")
    if shipped is None:
        pytest.skip("no shipped assets/precomputed/h4_classify.json")
    table = at.dataframe[0].value
    assert len(table) == len(shipped.data["methods"])
    assert len(at.get("plotly_chart")) >= 2  # the scores chart and one confusion matrix


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize(("text", "code"), [("   ", "handson.empty_text"), ("가" * 1500, "handson.text_too_long")])
def test_try_refuses_empty_and_huge_text(open_page, lang, text, code):
    at = open_page(PAGE, lang)
    at.text_area(key="tr_text").set_value(text)
    at.toggle(key="tr_generative").set_value(False)
    at.button(key="tr_run").click().run()
    clean(at)
    assert any(w.startswith(message_start(code, lang)) for w in warnings_of(at)), warnings_of(at)


@pytest.mark.slow  # ~35 s: the encoder is trained for "try"
def test_a_run_of_two_methods_replaces_the_table_and_feeds_try(open_page):
    """The page's own run path (a job) with the two fast methods; then "try" labels a sentence with the three
    local methods (the encoder, not in that run, is trained for it once per process)."""
    at = open_page(PAGE, "en")
    at.multiselect(key="me_methods").set_value(["zero_shot", "embed_lr"])
    at.button(key="me_run").click().run()
    clean(at)
    table = at.dataframe[0].value
    assert len(table) == 2 and table.iloc[:, 0].tolist() == [
        "Embeddings + logistic regression",
        "Zero-shot (label-description embeddings)",
    ]
    assert at.radio(key="cf_method").options == table.iloc[:, 0].tolist()
    at.text_area(key="tr_text").set_value("대통령은 법률이 정하는 바에 의하여 사면·감형 또는 복권을 명할 수 있다.")
    at.toggle(key="tr_generative").set_value(False)
    at.button(key="tr_run").click().run()
    clean(at)
    labels = at.dataframe[-1].value
    assert len(labels) == 3 and all(str(x).startswith("제") for x in labels.iloc[:, 1])  # a chapter per method
