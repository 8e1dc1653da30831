"""engine.text2sql.synthetic: template pairs from real values, the filter's reasons, held-out exclusion, the shipped
set; the model's pairs through the real llama.cpp server (slow). Real Chinook, nothing mocked."""

from __future__ import annotations

import os
import re
from collections import Counter

import pytest

from engine.core.textinput import InputError
from engine.text2sql.databases import Database, chinook
from engine.text2sql.executor import run_sql
from engine.text2sql.synthetic import (
    SHIPPED,
    TEMPLATES,
    Dropped,
    SyntheticPair,
    drop_counts,
    filter_pairs,
    held_out_sql,
    read_pairs,
    shipped_synthetic,
    template_pairs,
    write_pairs,
)

HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Database:
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("LLMLAB_CACHE")
    os.environ["LLMLAB_CACHE"] = str(cache)
    try:
        return chinook()
    finally:
        if old is None:
            os.environ.pop("LLMLAB_CACHE")
        else:
            os.environ["LLMLAB_CACHE"] = old


def test_template_pairs_are_korean_distinct_and_cover_the_shapes(db):
    pairs = template_pairs(db, 300, seed=0)
    assert len(pairs) == 300 and len({p.question for p in pairs}) == 300
    assert all(p.source == "template" and HANGUL.search(p.question) for p in pairs)
    assert not any("{" in p.question or "{" in p.sql for p in pairs)  # every slot filled
    shapes = Counter(p.shape for p in pairs)
    assert set(shapes) == {t.shape for t in TEMPLATES} and len(shapes) >= 12
    assert template_pairs(db, 50, seed=0) == template_pairs(db, 50, seed=0)  # seeded
    assert template_pairs(db, 50, seed=1) != template_pairs(db, 50, seed=0)


def test_template_values_come_from_the_database(db):
    pairs = template_pairs(db, 400, seed=3)
    results = [run_sql(db, p.sql) for p in pairs]
    assert all(r.ok for r in results), [(p.sql, r.detail) for p, r in zip(pairs, results, strict=True) if not r.ok]
    with_rows = sum(1 for r in results if r.rows and any(v not in (None, 0) for v in r.rows[0]))
    assert with_rows / len(pairs) > 0.9  # values are real, so nearly every filter matches rows
    genre = next(p for p in pairs if "T2.Name = '" in p.sql and "Genre" in p.sql)
    value = genre.sql.split("T2.Name = '")[1].split("'")[0]
    assert run_sql(db, f"SELECT 1 FROM Genre WHERE Name = '{value}'").rows == [(1,)]


def test_bad_counts_are_refused(db):
    for n in (0, -1, 10**6):
        with pytest.raises(InputError) as err:
            template_pairs(db, n)
        assert err.value.code == "text2sql.synthetic.bad_count"


def test_filter_says_why_each_pair_was_dropped(db):
    good = SyntheticPair("록 장르 트랙은 몇 곡인가요?", "SELECT count(*) FROM Track WHERE GenreId = 1;", "model")
    pairs = [
        good,
        SyntheticPair("록 장르 트랙 수", "SELECT  count(*)  FROM Track WHERE GenreId = 1", "model"),  # same SQL
        SyntheticPair("앨범의 장르는?", "SELECT T1.GenreId FROM Album AS T1", "model"),
        SyntheticPair("없는 장르의 트랙 수는?", "SELECT count(*) FROM Track WHERE GenreId = 999", "model"),
        SyntheticPair("'Nobody' 아티스트", "SELECT Name FROM Artist WHERE Name = 'Nobody'", "model"),
        SyntheticPair("How many tracks?", "SELECT count(*) FROM Track", "model"),
        SyntheticPair("트랙을 지워줘", "DELETE FROM Track", "model"),
        SyntheticPair("두 문장", "SELECT 1; SELECT 2", "model"),
        SyntheticPair("", "SELECT 1", "model"),
        SyntheticPair(
            "끝없는 재귀",
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n",
            "model",
        ),
    ]
    kept, dropped = filter_pairs(pairs, db, timeout_s=0.3)
    assert kept == [SyntheticPair(good.question, "SELECT count(*) FROM Track WHERE GenreId = 1", "model")]
    reasons = [d.reason for d in dropped]
    assert reasons == [
        "duplicate", "sql_error", "no_rows", "no_rows", "not_korean", "unsafe", "unsafe", "empty", "timeout",
    ]  # fmt: skip
    assert all(isinstance(d, Dropped) for d in dropped)
    assert dropped[1].detail == "no such column: T1.GenreId"
    assert drop_counts(dropped) == {
        "model": {"unsafe": 2, "no_rows": 2, "duplicate": 1, "sql_error": 1, "not_korean": 1, "empty": 1, "timeout": 1}
    }


def test_a_pair_that_runs_can_still_be_wrong(db):
    pairs = [
        # runs and returns rows, but filters on a city the question never names
        SyntheticPair("고객의 이름을 알려주세요.", "SELECT FirstName FROM Customer WHERE City = 'Porto'", "model"),
        SyntheticPair(
            "이번 주어진 질문에서 실제 값을 JSON으로 답합니다.", "SELECT Title FROM Employee", "model"
        ),  # the model echoing its instructions
        SyntheticPair("브라질 고객의 이름은?", "SELECT FirstName FROM Customer WHERE Country = 'Brazil'", "model"),
        SyntheticPair(
            "2010년 7월 송장 수는?",
            "SELECT count(*) FROM Invoice WHERE strftime('%Y-%m', InvoiceDate) = '2010-07'",
            "model",
        ),
        SyntheticPair("이름에 'Love'가 들어간 트랙 수", "SELECT count(*) FROM Track WHERE Name LIKE '%love%'", "model"),
    ]
    kept, dropped = filter_pairs(pairs, db)
    assert [(d.reason, d.detail) for d in dropped] == [("value_not_in_question", "Porto"), ("not_a_question", "")]
    assert [p.question for p in kept] == [p.question for p in pairs[2:]]  # Korean country names, dates, LIKE pass


def test_held_out_results_are_excluded(db):
    gold = "SELECT count(*) FROM Customer WHERE Country = 'Brazil'"
    pairs = [
        SyntheticPair("브라질 고객 수는?", "select count(*) from Customer where Country = 'Brazil'", "template"),
        # a different query, same tables, same answer: the held-out answer would leak
        SyntheticPair(
            "브라질 고객은 몇 명?", "SELECT count(CustomerId) FROM Customer WHERE Country = 'Brazil'", "model"
        ),
        SyntheticPair("캐나다 고객 수는?", "SELECT count(*) FROM Customer WHERE Country = 'Canada'", "template"),
    ]
    kept, dropped = filter_pairs(pairs, db, exclude_sql=[gold])
    assert [p.question for p in kept] == ["캐나다 고객 수는?"]
    assert [d.reason for d in dropped] == ["in_test", "in_test"]


def test_held_out_questions_wire_in(db):
    held = held_out_sql(["test"])
    if not held:
        pytest.skip("the held-out Chinook questions (assets/text2sql/chinook_ko.yaml) are not there yet")
    kept, _ = filter_pairs(template_pairs(db, 200, seed=0), db, exclude_sql=held)
    kept_sql = {" ".join(p.sql.lower().split()) for p in kept}
    assert not kept_sql & {" ".join(s.lower().split()) for s in held}


def test_write_and_read_round_trip(tmp_path):
    pairs = [SyntheticPair("장르는 몇 개?", "SELECT count(*) FROM Genre", "template", "count")]
    path = tmp_path / "pairs.jsonl"
    write_pairs(pairs, path)
    assert path.read_text(encoding="utf-8").strip() == (
        '{"question": "장르는 몇 개?", "sql": "SELECT count(*) FROM Genre", "source": "template"}'
    )
    assert read_pairs(path) == [SyntheticPair("장르는 몇 개?", "SELECT count(*) FROM Genre", "template")]


def test_the_shipped_set_runs_and_is_clean(db):
    if not SHIPPED.is_file():
        pytest.skip("assets/text2sql/chinook_synthetic.jsonl not generated yet")
    pairs = shipped_synthetic()
    sources = Counter(p.source for p in pairs)
    assert sources["template"] >= 500 and set(sources) <= {"template", "model"}
    assert len({p.question for p in pairs}) == len(pairs)
    kept, dropped = filter_pairs(pairs, db, exclude_sql=held_out_sql(["test"]))
    assert dropped == [] and len(kept) == len(pairs)


@pytest.mark.slow
@pytest.mark.server
def test_model_pairs_through_the_real_server(db):
    from engine.text2sql.synthetic import model_pairs

    seen: list[float] = []
    pairs = model_pairs(db, 2, seed=0, progress=lambda f, m: seen.append(f))
    assert 1 <= len(pairs) <= 2 and seen[-1] == 1.0
    assert all(p.source == "model" and isinstance(p.question, str) and isinstance(p.sql, str) for p in pairs)
    assert all(not p.sql.endswith(";") and "\n" not in p.sql for p in pairs)
    kept, dropped = filter_pairs(pairs, db)
    assert len(kept) + len(dropped) == len(pairs)  # every pair is accounted for, kept or with a reason
    stopped = model_pairs(db, 5, should_stop=lambda: True)
    assert stopped == []
