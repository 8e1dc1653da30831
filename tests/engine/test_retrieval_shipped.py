"""Pages 10 and 11's shipped results (engine/retrieval/shipped.py): every file the pages read is there, was made by
the command it names, answers the pages' default inputs, and holds what the pages draw."""

from __future__ import annotations

import pytest

from engine.core import load_precomputed
from engine.retrieval import METHODS, shipped
from ui.i18n import strings


@pytest.mark.parametrize("section", shipped.SECTIONS)
def test_each_section_is_shipped_with_its_command(section):
    pre = load_precomputed(section)
    assert pre is not None, f"run `python -m engine retrieval-precompute --only {section}`"
    assert pre.command == f"python -m engine retrieval-precompute --only {section}"
    assert pre.made and pre.machine


def test_shipped_inputs_are_the_pages_defaults():
    s = strings()
    assert s["ch10.default_query"]["ko"] == shipped.HYBRID_QUERY
    assert s["ch11.rerank_query"]["ko"] == shipped.RERANK_QUERY
    assert s["ch11.default_query"]["ko"] == shipped.SEARCH_QUERY


def test_word2vec_and_mnr_hold_what_the_pages_draw():
    w2v = load_precomputed("ch10_word2vec").data
    assert w2v["word"] == "대통령" and len(w2v["neighbours"]) == 10 and len(w2v["xy"]) == len(w2v["words"])
    mnr = load_precomputed("ch11_mnr").data
    assert (mnr["n_pairs"], mnr["epochs"], mnr["lr"]) == (192, 1, 1e-4) and mnr["pairs"] == 192
    assert set(mnr["before"]) == set(mnr["after"]) == {"hit@1", "hit@5", "hit@10", "mrr"}
    gemma = load_precomputed("ch11_gemma").data
    assert gemma["layer"] == 6 and len(gemma["matrix"]) == len(gemma["labels"]) == 5


def test_index_sections_hold_what_the_pages_draw():
    hybrid = load_precomputed("ch10_hybrid").data
    assert hybrid["query"] == shipped.HYBRID_QUERY and len(hybrid["hits"]) == hybrid["k"] == 5
    assert hybrid["breakdown"] and len(hybrid["study"]) == 7
    lm = load_precomputed("ch11_lm").data
    assert lm["info"]["history"] and set(lm["before"]) == set(lm["after"])
    rerank = load_precomputed("ch11_rerank").data
    assert rerank["cross_encoder"]["mix_table"] and rerank["eval"]
    search = load_precomputed("ch11_search").data
    assert set(search["methods"]) <= set(METHODS) and set(search["results"]) == set(search["methods"])
    assert {r["set"] for r in search["metrics"]} == {"dev", "test (held-out)"}
