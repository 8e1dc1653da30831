"""Scoring predicted SQL: execution match, Spider's exact set match and hardness (its vendored code), the judge on
the real `instruct` server, and evaluate() end to end — on a real SQLite file (Spider's concert_singer schema,
a few rows of our own) run through the real read-only executor."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from engine.core.progress import Cancelled
from engine.text2sql.databases import from_path
from engine.text2sql.evaluation import (
    EvalReport,
    JudgeVerdict,
    evaluate,
    exact_set_match,
    execution_match,
    gold_is_ordered,
    hardness,
    judge,
    spider_parses,
)
from engine.text2sql.executor import run_sql
from tests.engine._server import own_llama_server

# Spider's concert_singer schema (tables.json: names, keys and foreign keys as Spider has them), with our own rows.
DDL = """
CREATE TABLE stadium (Stadium_ID INTEGER PRIMARY KEY, Location TEXT, Name TEXT, Capacity INTEGER, Highest INTEGER,
  Lowest INTEGER, Average INTEGER);
CREATE TABLE singer (Singer_ID INTEGER PRIMARY KEY, Name TEXT, Country TEXT, Song_Name TEXT,
  Song_release_year TEXT, Age INTEGER, Is_male TEXT);
CREATE TABLE concert (concert_ID INTEGER PRIMARY KEY, concert_Name TEXT, Theme TEXT,
  Stadium_ID TEXT REFERENCES stadium (Stadium_ID), Year TEXT);
CREATE TABLE singer_in_concert (concert_ID INTEGER REFERENCES concert (concert_ID),
  Singer_ID TEXT REFERENCES singer (Singer_ID), PRIMARY KEY (concert_ID, Singer_ID));
INSERT INTO stadium VALUES (1, 'Raith Rovers', 'Stark''s Park', 10104, 4812, 1294, 2106),
  (2, 'Ayr United', 'Somerset Park', 11998, 2363, 1057, 1477),
  (3, 'East Fife', 'Bayview Stadium', 2000, 1980, 533, 864);
INSERT INTO singer VALUES (1, 'Joe Sharp', 'Netherlands', 'You', '1992', 52, 'F'),
  (2, 'Timbaland', 'United States', 'Dangerous', '2008', 32, 'T'),
  (3, 'Justin Brown', 'France', 'Hey Oh', '2013', 29, 'T'),
  (4, 'Rose White', 'France', 'Sun', '2003', 41, 'F'),
  (5, 'John Nizinik', 'France', 'Gentleman', '2014', 43, 'T'),
  (6, 'Tribal King', NULL, 'Love', '2016', 25, 'T');
INSERT INTO concert VALUES (1, 'Auditions', 'Free choice', '1', '2014'),
  (2, 'Super bootcamp', 'Free choice 2', '2', '2014'),
  (3, 'Home Visits', 'Bleeding Love', '2', '2015'), (4, 'Week 1', 'Wide Awake', '1', '2014');
INSERT INTO singer_in_concert VALUES (1, '2'), (1, '3'), (1, '5'), (2, '3'), (2, '6'), (3, '5'), (4, '4');
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("t2s-eval") / "concert_singer.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(DDL)
    conn.close()
    return from_path(path)


def match(db, pred: str, gold: str, ordered: bool | None = None, **kw) -> bool:
    order = gold_is_ordered(gold) if ordered is None else ordered
    return execution_match(run_sql(db, pred, **kw), run_sql(db, gold, **kw), order)


# --- execution match ------------------------------------------------------------------------------------------


def test_row_order_counts_only_when_the_gold_orders(db):
    assert match(db, "SELECT Name FROM singer ORDER BY Name DESC", "SELECT Name FROM singer")
    assert match(db, "SELECT Name FROM singer ORDER BY Age", "SELECT Name FROM singer ORDER BY Age")
    assert not match(db, "SELECT Name FROM singer ORDER BY Age DESC", "SELECT Name FROM singer ORDER BY Age")
    assert not match(db, "SELECT Name FROM singer", "SELECT Name FROM singer ORDER BY Age")


def test_rows_are_a_bag_duplicates_count(db):
    assert not match(db, "SELECT DISTINCT Country FROM singer", "SELECT Country FROM singer")
    assert match(db, "SELECT Country FROM singer ORDER BY Singer_ID DESC", "SELECT Country FROM singer")
    assert not match(db, "SELECT Name FROM singer UNION ALL SELECT 'Joe Sharp'", "SELECT Name FROM singer")


def test_columns_may_come_in_any_order_but_rows_stay_together(db):
    assert match(db, "SELECT Age, Name FROM singer", "SELECT Name, Age FROM singer")
    assert match(db, "SELECT Age, Name FROM singer ORDER BY Age", "SELECT Name, Age FROM singer ORDER BY Age")
    # each column holds the same bag of values, but the pairs differ: no permutation makes them equal
    assert not match(db, "SELECT 1, 'b' UNION ALL SELECT 2, 'a'", "SELECT 1, 'a' UNION ALL SELECT 2, 'b'")
    # two identical columns (a tie) still find their permutation
    assert match(db, "SELECT Age, Age, Name FROM singer", "SELECT Age, Name, Age FROM singer")


def test_different_column_counts_never_match(db):
    assert not match(db, "SELECT Name, Age FROM singer", "SELECT Name FROM singer")
    assert not match(db, "SELECT Name FROM singer WHERE 0", "SELECT Name, Age FROM singer WHERE 0")
    assert match(db, "SELECT Song_Name FROM singer WHERE 0", "SELECT Name FROM singer WHERE Age > 100")


def test_floats_compare_to_1e_6_and_ints_equal_floats(db):
    assert match(db, "SELECT SUM(Age) * 1.0 / COUNT(*) FROM singer", "SELECT AVG(Age) FROM singer")
    assert match(db, "SELECT 0.1 + 0.2", "SELECT 0.3")
    assert match(db, "SELECT 2.0", "SELECT 2")
    assert not match(db, "SELECT 0.300001", "SELECT 0.3")
    assert not match(db, "SELECT '2'", "SELECT 2")  # text is not a number


def test_nulls_are_values(db):
    assert match(db, "SELECT Country FROM singer ORDER BY Age", "SELECT Country FROM singer")
    assert not match(db, "SELECT Country FROM singer WHERE Country IS NOT NULL", "SELECT Country FROM singer")
    assert not match(db, "SELECT NULL", "SELECT ''")


def test_errors_and_truncation_never_match(db):
    assert not match(db, "SELECT Nme FROM singer", "SELECT Name FROM singer")
    assert not match(db, "", "SELECT Name FROM singer")
    assert not match(db, "SELECT Name FROM singer", "SELECT Nme FROM singer")  # a broken gold matches nothing
    # only one side cut at the row limit: the other has fewer rows, whatever the first ones are
    assert not match(db, "SELECT Name FROM singer LIMIT 2", "SELECT Name FROM singer", max_rows=2)


def test_gold_is_ordered_looks_at_the_outer_query_only():
    assert gold_is_ordered("SELECT name FROM singer ORDER BY age")
    assert gold_is_ordered("select name from singer order   by age desc limit 3")
    assert not gold_is_ordered("SELECT name FROM singer WHERE age = (SELECT age FROM singer ORDER BY age LIMIT 1)")
    assert not gold_is_ordered("SELECT name FROM singer WHERE theme = 'order by me'")
    assert not gold_is_ordered('SELECT "order by" FROM t -- order by x')
    assert gold_is_ordered("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1")


# --- Spider: exact set match and hardness ---------------------------------------------------------------------


def test_exact_set_match_ignores_aliases_case_values_and_foreign_key_sides(db):
    gold = (
        "SELECT T2.name, count(*) FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id "
        "GROUP BY T1.stadium_id"
    )
    same = (
        "select S.Name, COUNT(*) from concert as C join stadium as S on C.Stadium_ID = S.Stadium_ID "
        "group by C.Stadium_ID"
    )
    assert exact_set_match(gold, same, db) is True
    # GROUP BY the other side of the foreign key is the same column to Spider (its foreign-key map)
    other_side = gold.replace("GROUP BY T1.stadium_id", "GROUP BY T2.stadium_id")
    assert exact_set_match(gold, other_side, db) is True
    # values are not compared (DISABLE_VALUE): a wrong literal still matches — EM's blind spot, EX catches it
    assert exact_set_match("SELECT name FROM singer WHERE age > 20", "SELECT name FROM singer WHERE age > 40", db)
    assert exact_set_match("SELECT name FROM singer WHERE age > 20", "SELECT name, age FROM singer", db) is False


def test_exact_set_match_rejects_a_different_where(db):
    gold = "SELECT name FROM singer WHERE age > 20"
    assert exact_set_match(gold, "SELECT name FROM singer WHERE age < 20", db) is False
    assert exact_set_match(gold, "SELECT name FROM singer", db) is False
    assert exact_set_match(gold, "SELECT name FROM singer WHERE age > 20 AND country = 'France'", db) is False
    # a correct rewrite in another shape is still a miss for EM (EX passes it)
    assert (
        exact_set_match(
            "SELECT name FROM stadium WHERE stadium_id NOT IN (SELECT stadium_id FROM concert)",
            "SELECT name FROM stadium EXCEPT SELECT T2.name FROM concert AS T1 JOIN stadium AS T2 "
            "ON T1.stadium_id = T2.stadium_id",
            db,
        )
        is False
    )


def test_exact_set_match_when_spider_cannot_parse(db):
    cte = "WITH old AS (SELECT name FROM singer WHERE age > 40) SELECT name FROM old"
    assert not spider_parses(cte, db)
    assert exact_set_match(cte, "SELECT name FROM singer", db) is None  # the gold: undefined
    assert exact_set_match("SELECT name FROM singer", cte, db) is False  # a prediction: Spider scores it 0
    assert exact_set_match("SELECT name FROM singer", "SELECT nme FROM singer", db) is False


# Spider dev queries over concert_singer and the hardness Spider gives them (this implementation reproduces
# Spider dev's published counts exactly: easy 248, medium 446, hard 174, extra 166 over all 1,034 queries).
SPIDER_HARDNESS = [
    ("SELECT count(*) FROM singer", "easy"),
    ("SELECT DISTINCT country FROM singer WHERE age  >  20", "easy"),
    ("SELECT name ,  country ,  age FROM singer ORDER BY age DESC", "medium"),
    ("SELECT avg(age) ,  min(age) ,  max(age) FROM singer WHERE country  =  'France'", "medium"),
    ("SELECT country ,  count(*) FROM singer GROUP BY country", "medium"),
    (
        "SELECT T2.name ,  count(*) FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id  =  T2.stadium_id "
        "GROUP BY T1.stadium_id",
        "medium",
    ),
    ("SELECT song_name FROM singer WHERE age  >  (SELECT avg(age) FROM singer)", "hard"),
    ("SELECT YEAR FROM concert GROUP BY YEAR ORDER BY count(*) DESC LIMIT 1", "hard"),
    ("SELECT name FROM stadium WHERE stadium_id NOT IN (SELECT stadium_id FROM concert)", "hard"),
    ("SELECT country FROM singer WHERE age  >  40 INTERSECT SELECT country FROM singer WHERE age  <  30", "hard"),
    (
        "SELECT T2.name ,  T2.capacity FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id  =  T2.stadium_id "
        "WHERE T1.year  >=  2014 GROUP BY T2.stadium_id ORDER BY count(*) DESC LIMIT 1",
        "extra",
    ),
    (
        "SELECT T2.name ,  T2.location FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id  =  T2.stadium_id "
        "WHERE T1.Year  =  2014 INTERSECT SELECT T2.name ,  T2.location FROM concert AS T1 JOIN stadium AS T2 ON "
        "T1.stadium_id  =  T2.stadium_id WHERE T1.Year  =  2015",
        "extra",
    ),
]


@pytest.mark.parametrize(("sql", "level"), SPIDER_HARDNESS)
def test_hardness_is_spiders(db, sql, level):
    assert hardness(sql, db) == level
    assert exact_set_match(sql, sql, db) is True
    assert run_sql(db, sql).ok  # the gold queries run on our copy too


def test_hardness_of_unparsable_sql_is_a_clear_error(db):
    from engine.core.textinput import InputError

    with pytest.raises(InputError) as err:
        hardness("WITH x AS (SELECT 1) SELECT * FROM x", db)
    assert err.value.code == "text2sql.eval.spider_unparsable"


def test_spider_never_writes_the_database(db):
    before = hashlib.sha256(db.path.read_bytes()).hexdigest()
    for sql, _ in SPIDER_HARDNESS:
        hardness(sql, db)
    assert hashlib.sha256(db.path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in db.path.parent.iterdir()) == [db.path.name]  # no journal, no -wal/-shm


# --- evaluate() end to end (no judge) -------------------------------------------------------------------------


class _Pred:
    def __init__(self, sql: str, seconds: float):
        self.sql, self.seconds = sql, seconds


ITEMS = [
    ("q1", "가수는 몇 명인가요?", "SELECT count(*) FROM singer", "easy"),
    ("q2", "프랑스 가수의 이름은?", "SELECT name FROM singer WHERE country = 'France'", "easy"),
    ("q3", "나이순 가수 이름", "SELECT name FROM singer ORDER BY age", "medium"),
    (
        "q4",
        "콘서트가 없는 경기장",
        "SELECT name FROM stadium WHERE stadium_id NOT IN (SELECT stadium_id FROM concert)",
        "hard",
    ),
]
ANSWERS = {  # a fixed "model": right, wrong filter, broken, right in another shape
    "가수는 몇 명인가요?": "SELECT COUNT(Singer_ID) FROM singer",
    "프랑스 가수의 이름은?": "SELECT name FROM singer",
    "나이순 가수 이름": "SELECT nme FROM singer ORDER BY age",
    "콘서트가 없는 경기장": "SELECT name FROM stadium EXCEPT SELECT T2.name FROM concert AS T1 JOIN stadium AS T2 "
    "ON T1.stadium_id = T2.stadium_id",
}


def test_evaluate_scores_each_item(db):
    seen = []
    report = evaluate(lambda q: _Pred(ANSWERS[q], 0.5), ITEMS, db, on_row=seen.append)
    assert [r.ex for r in report.rows] == [True, False, False, True]
    assert [r.em for r in report.rows] == [False, False, False, False]  # count(col) vs count(*); EXCEPT vs NOT IN
    assert report.ex == 0.5 and report.em == 0.0 and report.judge_agreement is None
    assert report.errors() == {"text2sql.exec.sql_error": 1}
    assert "no such column" in report.rows[2].detail
    assert report.by_difficulty() == {"easy": (2, 0.5), "medium": (1, 0.0), "hard": (1, 1.0)}
    assert report.median_seconds == 0.5 and len(seen) == 4 and not report.stopped
    data = report.to_json()
    assert data["n"] == 4 and data["ex"] == 0.5 and data["rows"][1]["pred_sql"] == "SELECT name FROM singer"
    assert EvalReport.from_json(data).rows == report.rows


def test_evaluate_stops_and_keeps_the_rows(db):
    calls = []

    def progress(fraction, message):
        calls.append(fraction)
        if len(calls) == 3:
            raise Cancelled

    report = evaluate(lambda q: _Pred(ANSWERS[q], 0.1), ITEMS, db, progress=progress)
    assert report.stopped and len(report.rows) == 2 and report.planned == 4
    report = evaluate(lambda q: _Pred(ANSWERS[q], 0.1), ITEMS, db, should_stop=lambda: True)
    assert report.stopped and report.rows == []


# --- the judge on the real instruct server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def instruct_server(tmp_path_factory):
    with own_llama_server(tmp_path_factory.mktemp("t2s-judge"), threads=2) as cache:
        yield cache


@pytest.mark.server
def test_judge_returns_a_verdict(db, instruct_server):
    verdict = judge("프랑스 가수의 이름은?", db.ddl, ITEMS[1][2], "SELECT name FROM singer", role="instruct")
    assert isinstance(verdict, JudgeVerdict) and verdict.yes in (True, False, None)
    assert verdict.yes is None or verdict.raw.startswith("{")
    assert verdict.seconds > 0  # its speed is a benchmark (tests/bench/bench_text2sql_judge.py), not a test
    report = evaluate(lambda q: _Pred(ANSWERS[q], 0.1), ITEMS[:2], db, with_judge=True)
    assert report.judge_role == "instruct" and all(r.judge in (True, False, None) for r in report.rows)
    assert len(report.false_accepts) + len(report.false_rejects) <= 2
