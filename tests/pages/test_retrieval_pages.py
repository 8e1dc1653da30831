"""Chapters 10 and 11 as a learner first meets them on a server without the Korean search index: every section
shows a result (shipped, labelled with the command that made it) next to the button that builds or runs it, and
the shipped results answer the page's own controls where they can (the method radio of the Korean search)."""

from __future__ import annotations

import pytest

P10 = "pages/10_embeddings.py"
P11 = "pages/11_embedding_finetuning.py"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache without the index (models and Kiwi come from the packaged files, not from the cache)."""
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    return tmp_path


def _clean(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _shipped(at) -> list[str]:
    """The names of the shipped results a run labelled (the `--only <name>` of each note)."""
    return [c.value.split("--only ")[1].split("`")[0] for c in at.caption if c.value.startswith("📦")]


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["ko", "en"])
def test_first_open_without_the_index(open_page, cache, lang):
    at = open_page(P10, lang)
    _clean(at)
    assert _shipped(at) == ["ch10_word2vec", "ch10_hybrid"]
    assert {"w_train", "h_build"} <= {b.key for b in at.button}
    at = open_page(P11, lang)
    _clean(at)
    assert _shipped(at) == ["ch11_mnr", "ch11_lm", "ch11_gemma", "ch11_rerank", "ch11_search"]
    assert {"l_build", "r_build", "s_build"} <= {b.key for b in at.button}


@pytest.mark.slow
def test_shipped_search_follows_the_method_radio(open_page, cache):
    at = open_page(P11, "ko")
    hybrid = list(at.dataframe[-2].value.iloc[:, 1])  # the hits table, above the metrics table (last)
    at.radio(key="s_method").set_value("bm25").run()
    _clean(at)
    bm25 = list(at.dataframe[-2].value.iloc[:, 1])
    assert hybrid and bm25 and hybrid != bm25
