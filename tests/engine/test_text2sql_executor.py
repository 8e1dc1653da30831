"""engine.text2sql.executor: generated SQL runs read-only, one statement, within time and size limits.

Every attack runs against a real Chinook file and the file's sha256 is compared before and after; the folder is
checked for side files (-journal, -wal, -shm) and for anything an attack tried to create (ATTACH, VACUUM INTO).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

from engine.core.textinput import InputError
from engine.text2sql.databases import Database, chinook, from_path
from engine.text2sql.executor import ERROR_CODES, ExecResult, run_sql


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Database:
    """A private copy of Chinook in its own folder, so the folder listing shows any file an attack creates."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("LLMLAB_CACHE")
    os.environ["LLMLAB_CACHE"] = str(cache)
    try:
        built = chinook()
    finally:
        if old is None:
            os.environ.pop("LLMLAB_CACHE")
        else:
            os.environ["LLMLAB_CACHE"] = old
    folder = tmp_path_factory.mktemp("victim")
    shutil.copy(built.path, folder / "chinook.sqlite")
    return from_path(folder / "chinook.sqlite", name="chinook")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_select_returns_columns_and_rows(db):
    r = run_sql(db, "SELECT GenreId, Name FROM Genre WHERE Name LIKE 'R%' ORDER BY GenreId;")
    assert r.ok and r.error is None and r.detail == ""
    assert r.columns == ["GenreId", "Name"]
    assert r.rows == [(1, "Rock"), (5, "Rock And Roll"), (8, "Reggae"), (14, "R&B/Soul")]
    assert not r.truncated and r.seconds >= 0
    assert run_sql(db.path, "SELECT count(*) FROM Track").rows == [(3503,)]  # a Path works too
    with_cte = "WITH t AS (SELECT GenreId, count(*) AS n FROM Track GROUP BY GenreId) SELECT max(n) FROM t"
    assert run_sql(db, with_cte).rows == [(1297,)]


def test_sql_errors_come_back_with_sqlites_message(db):
    r = run_sql(db, "SELECT T1.GenreId FROM Album AS T1")
    assert (r.error, r.detail, r.rows, r.ok) == ("text2sql.exec.sql_error", "no such column: T1.GenreId", [], False)
    assert run_sql(db, "SELEC * FROM Track").error == "text2sql.exec.sql_error"
    assert run_sql(db, "SELECT * FROM Tracks").detail == "no such table: Tracks"
    assert run_sql(db, "SELECT * FROM Track WHERE Name = ?").error == "text2sql.exec.sql_error"
    assert run_sql(db, "").error == run_sql(db, "  \n ").error == "text2sql.exec.empty"
    assert run_sql(db, "-- only a comment").error == "text2sql.exec.empty"
    assert set(ERROR_CODES) >= {"text2sql.exec.sql_error", "text2sql.exec.denied", "text2sql.exec.timeout"}


ATTACKS = [
    ("SELECT 1; DROP TABLE Track", "text2sql.exec.not_one_statement"),
    ("SELECT Name FROM Genre; DELETE FROM Track;", "text2sql.exec.not_one_statement"),
    ("DELETE FROM Track", "text2sql.exec.denied"),
    ("UPDATE Track SET UnitPrice = 0", "text2sql.exec.denied"),
    ("INSERT INTO Genre (GenreId, Name) VALUES (99, 'K-pop')", "text2sql.exec.denied"),
    ("REPLACE INTO Genre VALUES (1, 'x')", "text2sql.exec.denied"),
    ("DROP TABLE Track", "text2sql.exec.denied"),
    ("CREATE TABLE x (a)", "text2sql.exec.denied"),
    ("CREATE TEMP TABLE x AS SELECT * FROM Track", "text2sql.exec.denied"),
    ("CREATE INDEX i ON Track (Name)", "text2sql.exec.denied"),
    ("ALTER TABLE Track RENAME TO T", "text2sql.exec.denied"),
    ("ATTACH DATABASE '{folder}/evil.db' AS evil", "text2sql.exec.denied"),
    ("VACUUM INTO '{folder}/copy.db'", "text2sql.exec.denied"),
    ("VACUUM", "text2sql.exec.denied"),
    ("PRAGMA writable_schema = 1", "text2sql.exec.denied"),
    ("PRAGMA journal_mode = WAL", "text2sql.exec.denied"),
    ("PRAGMA user_version = 7", "text2sql.exec.denied"),
    ("SELECT load_extension('{folder}/evil.so')", "text2sql.exec.denied"),
    ("SELECT fts3_tokenizer('simple')", "text2sql.exec.denied"),
    ("BEGIN IMMEDIATE", "text2sql.exec.denied"),
    ("ANALYZE", "text2sql.exec.denied"),
    ("REINDEX", "text2sql.exec.denied"),
    ("WITH x AS (SELECT 1) DELETE FROM Track", "text2sql.exec.denied"),
]


@pytest.mark.parametrize(("sql", "code"), ATTACKS, ids=[a[0][:40] for a in ATTACKS])
def test_attacks_change_nothing(db, sql, code):
    folder = db.path.parent
    before = sha(db.path)
    r = run_sql(db, sql.format(folder=folder), timeout_s=2)
    assert r.error == code, r
    assert r.detail and r.rows == [] and r.seconds < 20  # refused at prepare time, or stopped by the 2 s clock
    assert sha(db.path) == before
    assert sorted(p.name for p in folder.iterdir()) == ["chinook.sqlite"]


def test_a_never_ending_recursive_cte_stops_at_the_limit(db):
    before = sha(db.path)
    sql = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n"
    started = time.perf_counter()
    r = run_sql(db, sql, timeout_s=0.5)
    elapsed = time.perf_counter() - started
    assert r.error == "text2sql.exec.timeout" and "0.5" in r.detail
    # stopped at the limit, not run to the end (which never comes); generous headroom for a loaded machine
    assert 0.5 <= elapsed < 10 and 0.5 <= r.seconds < 10
    assert sha(db.path) == before


def test_a_huge_cross_join_is_cut_to_max_rows(db):
    before = sha(db.path)
    # 3,503 x 3,503 x 2,240: ~2.7e10 rows; only the first max_rows are fetched
    r = run_sql(db, "SELECT a.TrackId, b.TrackId, c.InvoiceLineId FROM Track a, Track b, InvoiceLine c", max_rows=50)
    assert r.ok and len(r.rows) == 50 and r.truncated
    r = run_sql(db, "SELECT a.Name FROM Track a, Track b", max_rows=1000)  # 1.2e7 rows
    assert r.ok and len(r.rows) == 1000 and r.truncated
    counted = run_sql(db, "SELECT count(*) FROM Track a, Track b, InvoiceLine c", timeout_s=0.3)
    assert counted.error == "text2sql.exec.timeout" and counted.seconds < 10
    assert sha(db.path) == before


def test_row_limit_is_exact(db):
    r = run_sql(db, "SELECT GenreId FROM Genre", max_rows=25)
    assert len(r.rows) == 25 and not r.truncated  # exactly max_rows rows, no more existed
    r = run_sql(db, "SELECT GenreId FROM Genre", max_rows=24)
    assert len(r.rows) == 24 and r.truncated


def test_huge_values_fail_fast_instead_of_eating_memory(db):
    r = run_sql(db, "SELECT randomblob(1000000000)")
    assert r.error == "text2sql.exec.sql_error" and "too big" in r.detail
    r = run_sql(db, "SELECT zeroblob(9000000) FROM Track", max_rows=1000)  # 9 MB each: cut at 16 MB in all
    assert r.ok and r.truncated and len(r.rows) == 1


def test_results_are_frozen_and_typed(db):
    r = run_sql(db, "SELECT 1.5, NULL, 'ㄱ', x'00'")
    assert isinstance(r, ExecResult) and r.rows == [(1.5, None, "ㄱ", b"\x00")]
    with pytest.raises(AttributeError):
        r.error = "x"  # type: ignore[misc]


def test_a_missing_database_file_raises(tmp_path):
    with pytest.raises(InputError) as err:
        run_sql(tmp_path / "gone.sqlite", "SELECT 1")
    assert err.value.code == "text2sql.db.not_found"
