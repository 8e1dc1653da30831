"""engine.vectorstore.query_view: the page's metadata filter and hit rows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.core import InputError
from engine.vectorstore.query_view import article_filter, hit_rows


def test_article_filter():
    assert article_filter("all", 1, 130) is None  # everything: no filter, so documents without `number` are found
    assert article_filter("all", 3, 9) == [["number", ">=", 3], ["number", "<=", 9]]
    assert article_filter("addenda", 1, 130)[-1] == ["part", "==", "부칙"]
    with pytest.raises(InputError):
        article_filter("nope", 1, 130)


def test_hit_rows():
    hit = SimpleNamespace(doc_id="제1조", score=0.123456, metadata={"title": "T"}, text="x" * 400)
    (row,) = hit_rows([hit])
    assert (row.id, row.score, row.title, len(row.text)) == ("제1조", 0.1235, "T", 300)
