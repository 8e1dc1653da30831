"""Hands-On ch.5 page through AppTest: a fresh page opens its three sections in both languages with the shipped
topic run (the map, the topics table, c-TF-IDF from scratch next to BERTopic's)."""

from __future__ import annotations

import pytest

from engine.core import load_precomputed
from tests.pages.conftest import clean

PAGE = "pages/95_topics.py"


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_fresh_page_shows_the_shipped_run(open_page, lang):
    at = open_page(PAGE, lang)
    clean(at)
    assert [h.proto.anchor for h in at.header] == ["clusters", "topics", "ctfidf"]
    shipped = load_precomputed("h5_topics")
    if shipped is None:
        pytest.skip("no shipped assets/precomputed/h5_topics.json")
    assert len(at.get("plotly_chart")) >= 1  # the topic map
    topics, ctfidf = at.dataframe[0].value, at.dataframe[1].value
    assert len(topics) == len(shipped.data["topics"])
    assert len(ctfidf) > 0 and (ctfidf.iloc[:, -2] - ctfidf.iloc[:, -1]).abs().max() < 1e-9  # mine == BERTopic's


@pytest.mark.slow  # ~1 min: a real BERTopic run (the first UMAP call in a process compiles numba code)
def test_a_run_replaces_the_shipped_result(open_page):
    at = open_page(PAGE, "en")
    at.selectbox(key="cl_corpus").set_value("kobill")
    at.slider(key="cl_min_size").set_value(5)
    at.button(key="cl_run").click().run()
    clean(at)
    assert at.session_state["h5_run"]["corpus"] == "kobill"
    assert len(at.dataframe[0].value) == len(at.session_state["h5_run"]["topics"])
