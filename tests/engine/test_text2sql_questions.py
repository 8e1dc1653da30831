"""engine.text2sql.questions: the hand-written Korean Chinook questions are well-formed, answerable, unambiguous in
order, and the splits do not leak into each other. Every gold SQL runs on the real Chinook database."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from engine.text2sql import databases, evaluation
from engine.text2sql.executor import run_sql
from engine.text2sql.questions import DIFFICULTIES, SPLITS, Question, chinook_questions

SIZES = {"train": 150, "dev": 30, "test": 60}
CHINOOK_TABLES = ("Album", "Artist", "Customer", "Employee", "Genre", "Invoice", "InvoiceLine", "MediaType")
CHINOOK_TABLES += ("Playlist", "PlaylistTrack", "Track")  # schema order (Chinook_Sqlite.sql is alphabetical)
HANGUL = re.compile(r"[가-힣]")


@pytest.fixture(scope="module")
def db():
    return databases.chinook()


def _all() -> list[Question]:
    return [q for split in SPLITS for q in chinook_questions(split)]


def _without_strings(sql: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def _normalised(sql: str) -> str:
    return " ".join(re.sub(r"\s*([(),=<>*])\s*", r"\1", sql.strip().rstrip(";")).lower().split())


def _trigrams(text: str) -> set[str]:
    text = " ".join(text.split())
    return {text[i : i + 3] for i in range(len(text) - 2)}


@pytest.mark.parametrize("split", SPLITS)
def test_split_sizes_ids_and_fields(split):
    questions = chinook_questions(split)
    assert len(questions) == SIZES[split]
    assert [q.id for q in questions] == [f"{split}-{i:03d}" for i in range(1, len(questions) + 1)]
    for q in questions:
        assert q.split == split
        assert HANGUL.search(q.question), q.id  # a Korean question, English names allowed inside
        assert q.difficulty in DIFFICULTIES, q.id
        assert q.sql.upper().startswith("SELECT") and ";" not in q.sql, q.id


def test_unknown_split_is_refused():
    with pytest.raises(ValueError):
        chinook_questions("validation")


def test_tables_are_the_tables_the_gold_sql_reads(db):
    assert sorted(db.tables) == sorted(CHINOOK_TABLES)
    for q in _all():
        bare = _without_strings(q.sql)
        used = tuple(t for t in CHINOOK_TABLES if re.search(rf"\b{t}\b", bare, re.I))
        assert q.tables == used, q.id


def test_every_gold_sql_runs_and_returns_rows(db):
    for q in _all():
        result = run_sql(db, q.sql, max_rows=10_000)
        assert result.ok, (q.id, result.detail)
        assert result.rows and not result.truncated, q.id
        # a lone 0/NULL (a count that matched nothing) is a wrong literal, not an answer
        assert not (len(result.rows) == 1 and all(v in (0, None) for v in result.rows[0])), (q.id, result.rows)


_TOP = re.compile(r"^SELECT (?:DISTINCT )?(.*?) FROM (.*) ORDER BY (.*?)(?: LIMIT (\d+))?$", re.I)


def test_ordered_answers_have_no_ties(db):
    """Where order counts (the gold has ORDER BY, so evaluation compares in order), the sort keys of the rows
    returned are distinct and the row after a LIMIT does not tie with the last one: one correct result."""
    checked = 0
    conn = databases.connect_readonly(db.path)
    try:
        for q in _all():
            if not evaluation.gold_is_ordered(q.sql):
                continue
            m = _TOP.match(q.sql)
            assert m and "SELECT" not in m.group(2).upper(), f"{q.id}: add this shape to the tie check"
            keys_expr = re.sub(r"\s+(DESC|ASC)\b", "", m.group(3), flags=re.I)
            keys = conn.execute(f"SELECT {keys_expr} FROM {m.group(2)} ORDER BY {m.group(3)}").fetchall()
            k = int(m.group(4)) if m.group(4) else len(keys)
            assert len(set(keys[:k])) == len(keys[:k]), (q.id, keys[: k + 1])
            assert k >= len(keys) or keys[k] != keys[k - 1], (q.id, keys[: k + 1])
            checked += 1
    finally:
        conn.close()
    assert checked >= 20


def test_difficulty_is_spiders_hardness(db):
    parsed = 0
    for q in _all():
        if evaluation.spider_parses(q.sql, db):  # strftime / IS NULL: labelled by the same rule by hand
            assert evaluation.hardness(q.sql, db) == q.difficulty, q.id
            parsed += 1
    assert parsed >= 0.8 * len(_all())


@pytest.mark.parametrize("split", SPLITS)
def test_difficulty_mix_is_spider_like(split):
    counts = Counter(q.difficulty for q in chinook_questions(split))
    n = sum(counts.values())
    assert 0.15 <= counts["easy"] / n <= 0.35, counts
    assert 0.30 <= counts["medium"] / n <= 0.50, counts
    assert 0.15 <= counts["hard"] / n <= 0.35, counts
    assert 0.05 <= counts["extra"] / n <= 0.20, counts


def test_no_gold_sql_repeats_within_or_across_splits():
    seen: dict[str, str] = {}
    for q in _all():
        key = _normalised(q.sql)
        assert key not in seen, (seen.get(key), q.id)
        seen[key] = q.id


def test_no_question_is_a_near_paraphrase_of_another():
    questions = _all()
    grams = [_trigrams(q.question) for q in questions]
    for i in range(len(questions)):
        for j in range(i + 1, len(questions)):
            jaccard = len(grams[i] & grams[j]) / len(grams[i] | grams[j])
            assert jaccard < 0.6, (questions[i].id, questions[j].id, round(jaccard, 2))


def test_questions_cover_the_shapes_the_chapter_teaches():
    """Each split has filters, joins of 3+ tables, GROUP BY/HAVING, top-k, subqueries, dates and the self-join."""
    for split in SPLITS:
        sqls = [q.sql.upper() for q in chinook_questions(split)]

        def has(pattern: str, sqls=sqls) -> bool:
            return any(re.search(pattern, s) for s in sqls)

        assert has(r" HAVING "), split
        assert has(r"ORDER BY .* LIMIT \d+"), split
        assert has(r"\(SELECT "), split
        assert has(r"STRFTIME|INVOICEDATE [<>]"), split
        assert has(r"JOIN EMPLOYEE AS T2 ON T1\.REPORTSTO"), split
        assert sum(s.count(" JOIN ") >= 2 for s in sqls) >= 0.1 * len(sqls), split
