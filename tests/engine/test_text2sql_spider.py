"""engine.text2sql.spider: the shipped Spider dev data, and the generated SQLite databases its gold queries run on.

Real SQLite files in a private cache directory; the gold queries run through the real read-only executor."""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from engine.core.textinput import InputError
from engine.text2sql import spider
from engine.text2sql.databases import Database
from engine.text2sql.spider import (
    SpiderExample,
    build_sqlite,
    file_sha256,
    gold_coverage,
    gold_literals,
    query_literals,
    spider_database,
    spider_db_ids,
    spider_dev,
    spider_path,
    spider_schema,
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One private cache for the module: the 20 databases are built once (a few seconds) and shared."""
    path = tmp_path_factory.mktemp("spider-cache")
    old = os.environ.get("LLMLAB_CACHE")
    os.environ["LLMLAB_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("LLMLAB_CACHE")
    else:
        os.environ["LLMLAB_CACHE"] = old


@pytest.fixture(scope="module")
def coverage(cache):
    return gold_coverage()


def test_spider_dev_counts_and_official_hardness():
    dev = spider_dev()
    assert len(dev) == 1034
    assert len(spider_db_ids()) == 20 and len({ex.db_id for ex in dev}) == 20
    assert all(isinstance(ex, SpiderExample) and ex.question and ex.query for ex in dev)
    # Spider's own hardness split of dev (its evaluation code, run on these schemas) — the published figures
    assert Counter(ex.difficulty for ex in dev) == {"easy": 248, "medium": 446, "hard": 174, "extra": 166}
    assert dev[0] == SpiderExample(
        "concert_singer", "How many singers do we have?", "SELECT count(*) FROM singer", "easy"
    )


def test_spider_dev_filters():
    assert len(spider_dev(limit=5)) == 5
    only = spider_dev(db_ids=["pets_1", "singer"])
    assert {ex.db_id for ex in only} == {"pets_1", "singer"} and len(only) == 42 + 30
    assert spider_dev(limit=0) == []


def test_unknown_db_is_a_clear_error():
    with pytest.raises(InputError) as err:
        spider_database("chinook")
    assert err.value.code == "text2sql.spider.unknown_db"
    with pytest.raises(InputError):
        spider_dev(db_ids=["no_such_db"])


def test_schema_keeps_spider_names_and_keys(cache):
    db = spider_database("concert_singer")
    assert isinstance(db, Database) and db.name == "spider/concert_singer"
    assert list(db.tables) == ["stadium", "singer", "concert", "singer_in_concert"]
    assert db.tables["singer"] == ["Singer_ID", "Name", "Country", "Song_Name", "Song_release_year", "Age", "Is_male"]
    assert "CREATE TABLE singer_in_concert" in db.ddl
    assert "PRIMARY KEY (concert_ID, Singer_ID)" in db.ddl  # the composite key tables.json cannot express
    assert "REFERENCES stadium" in db.ddl and "INSERT" not in db.ddl
    # world_1 lists SQLite's own sqlite_sequence; it is left out, everything else is there
    world = spider_schema("world_1")
    assert world.tables == ("city", "country", "countrylanguage")


def test_literals_resolve_aliases_and_operators():
    schema = spider_schema("concert_singer")
    sql = (
        "SELECT T2.name FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id "
        "WHERE T1.year = 2014 AND T2.capacity BETWEEN 5000 AND 10000 AND name LIKE '%Park%' "
        "AND T1.Theme IN (\"Free choice\", 'Week 1') AND T1.year != T2.capacity"
    )
    found = set(query_literals(sql, schema))
    assert ("concert", "Year", "=", 2014) in found
    assert {("stadium", "Capacity", ">=", 5000), ("stadium", "Capacity", "<=", 10000)} <= found
    assert ("concert", "Theme", "=", "Free choice") in found and ("concert", "Theme", "=", "Week 1") in found
    # an unqualified column goes to every table of the query that has it
    assert ("stadium", "Name", "like", "%Park%") in found
    assert not any(v == "T2.capacity" for *_, v in found)  # column = column is a join, not a literal


def test_building_is_deterministic(tmp_path):
    a = build_sqlite("concert_singer", tmp_path / "a.sqlite")
    b = build_sqlite("concert_singer", tmp_path / "b.sqlite")
    assert file_sha256(a) == file_sha256(b)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed into place


def test_gold_queries_run_and_return_rows(coverage):
    assert coverage.total == 1034
    assert coverage.errors == 0
    assert coverage.rate > 0.9, coverage.failures[:10]
    for db_id, (n, hits) in coverage.by_db.items():
        assert hits / n >= 0.8, (db_id, [f for f in coverage.failures if f[0] == db_id])


def test_rows_bounded_keys_unique_foreign_keys_consistent(cache):
    for db_id in spider_db_ids():
        schema = spider_schema(db_id)
        with sqlite3.connect(f"file:{spider_path(db_id)}?mode=ro", uri=True) as con:
            for table in schema.tables:
                n = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                assert 1 <= n <= 60, (db_id, table, n)
                key = schema.primary_keys[table]
                if key:
                    cols = ", ".join(f'"{k}"' for k in key)
                    distinct = con.execute(f'SELECT count(*) FROM (SELECT DISTINCT {cols} FROM "{table}")').fetchone()
                    assert distinct[0] == n, (db_id, table)
            for ta, ca, tb, cb in schema.foreign_keys:
                sql = f'SELECT count(*) FROM "{ta}" WHERE "{ca}" NOT IN (SELECT "{cb}" FROM "{tb}")'
                orphans = con.execute(sql).fetchone()[0]
                assert orphans == 0, (db_id, ta, ca, tb, cb)


def test_equality_literals_exist_in_the_data(cache):
    """Every `column = 'literal'` of the gold queries finds rows: that is what the value pools are for."""
    missing = []
    total = 0
    for db_id in spider_db_ids():
        with sqlite3.connect(f"file:{spider_path(db_id)}?mode=ro", uri=True) as con:
            for (table, col), pairs in gold_literals(db_id).items():
                for op, value in pairs:
                    if op != "=":
                        continue
                    total += 1
                    hit = con.execute(f'SELECT 1 FROM "{table}" WHERE "{col}" = ? LIMIT 1', (value,)).fetchone()
                    if not hit:
                        missing.append((db_id, table, col, value))
    assert total > 100
    assert len(missing) <= total * 0.02, missing[:10]


def test_a_damaged_or_outdated_file_is_rebuilt(cache):
    path = spider_path("singer")
    good = file_sha256(path)
    path.write_bytes(b"not a database")
    assert file_sha256(spider_path("singer")) == good
    with sqlite3.connect(path) as con:  # an older generator's file: a different user_version
        con.execute(f"PRAGMA user_version = {spider.GENERATOR_VERSION + 1}")
    assert file_sha256(spider_path("singer")) == good
