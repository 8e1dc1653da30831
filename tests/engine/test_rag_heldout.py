"""The held-out RAG questions (engine/rag/heldout.py): they load, cite real articles, and share no question with
the search chapters' dev/test/train files (exactly or nearly)."""

from __future__ import annotations

from engine.core.corpus import load_constitution
from engine.rag.cache import normalize_question
from engine.rag.heldout import load_heldout, phrase_found
from engine.retrieval.evaluation import DEV_QUESTIONS, TEST_QUESTIONS, TRAIN_QUESTIONS, load_questions


def _trigrams(text: str) -> set[str]:
    s = normalize_question(text).replace(" ", "")
    return {s[i : i + 3] for i in range(len(s) - 2)}


def test_heldout_loads_and_cites_real_articles():
    rows = load_heldout()
    assert 38 <= len(rows) <= 45
    ids = {d.doc_id for d in load_constitution()}
    for row in rows:
        assert row.gold and all(g in ids for g in row.gold), row
        assert row.phrases and all(p.strip() for p in row.phrases), row
        # the gold phrase is the answer, not an echo of the question
        assert not any(p.replace(" ", "") in row.question.replace(" ", "") for p in row.phrases), row
    assert len({normalize_question(r.question) for r in rows}) == len(rows)


def test_heldout_is_not_in_the_search_question_files():
    others = [q.question for path in (DEV_QUESTIONS, TEST_QUESTIONS, TRAIN_QUESTIONS) for q in load_questions(path)]
    normalized = {normalize_question(q) for q in others}
    grams = [_trigrams(q) for q in others]
    for row in load_heldout():
        assert normalize_question(row.question) not in normalized, row.question
        mine = _trigrams(row.question)
        nearest = max(len(mine & g) / len(mine | g) for g in grams)
        assert nearest < 0.4, (row.question, nearest)


def test_phrase_check():
    row = next(r for r in load_heldout() if "3분의 2" in r.phrases)
    assert phrase_found("재적의원 3분의2 이상이 찬성해야 합니다.", row)
    assert not phrase_found("과반수가 찬성하면 됩니다.", row)
