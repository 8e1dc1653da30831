"""engine.text2sql.databases: Chinook built from the real fixture with the canonical schema; any SQLite file;
uploads, and every way an upload can be broken. Real SQLite files throughout, in a private cache directory."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import sqlite3
from pathlib import Path

import pytest

from engine.core.textinput import InputError
from engine.text2sql import databases
from engine.text2sql.databases import (
    CHINOOK_ROWS,
    MAX_UPLOAD_BYTES,
    Database,
    chinook,
    chinook_path,
    from_path,
    open_upload,
    row_counts,
    safe_name,
)

# The canonical Chinook_Sqlite.sql (Chinook 1.4) columns, in order.
_COLUMNS = {
    "Album": "AlbumId Title ArtistId",
    "Artist": "ArtistId Name",
    "Customer": "CustomerId FirstName LastName Company Address City State Country PostalCode Phone Fax Email "
    "SupportRepId",
    "Employee": "EmployeeId LastName FirstName Title ReportsTo BirthDate HireDate Address City State Country "
    "PostalCode Phone Fax Email",
    "Genre": "GenreId Name",
    "Invoice": "InvoiceId CustomerId InvoiceDate BillingAddress BillingCity BillingState BillingCountry "
    "BillingPostalCode Total",
    "InvoiceLine": "InvoiceLineId InvoiceId TrackId UnitPrice Quantity",
    "MediaType": "MediaTypeId Name",
    "Playlist": "PlaylistId Name",
    "PlaylistTrack": "PlaylistId TrackId",
    "Track": "TrackId Name AlbumId MediaTypeId GenreId Composer Milliseconds Bytes UnitPrice",
}
CANONICAL = {table: columns.split() for table, columns in _COLUMNS.items()}


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Database:
    """One Chinook build shared by the read-only checks (a build is ~1.5 s)."""
    cache = tmp_path_factory.mktemp("chinook-cache")
    old = os.environ.get("LLMLAB_CACHE")
    os.environ["LLMLAB_CACHE"] = str(cache)
    try:
        return chinook()
    finally:
        if old is None:
            os.environ.pop("LLMLAB_CACHE")
        else:
            os.environ["LLMLAB_CACHE"] = old


def query(db: Database, sql: str) -> list[tuple]:
    with contextlib.closing(databases.connect_readonly(db.path)) as conn:
        return conn.execute(sql).fetchall()


def test_chinook_has_the_canonical_tables_columns_and_row_counts(built):
    assert built.name == "chinook" and built.path.name == "chinook.sqlite"
    assert built.tables == CANONICAL
    assert row_counts(built) == CHINOOK_ROWS
    assert CHINOOK_ROWS["Track"] == 3503 and CHINOOK_ROWS["Invoice"] == 412 and CHINOOK_ROWS["Album"] == 347


def test_chinook_types_and_keys_are_the_canonical_ones(built):
    info = {r[1]: (r[2], r[3], r[5]) for r in query(built, "SELECT * FROM pragma_table_info('Track')")}
    assert info["TrackId"] == ("INTEGER", 1, 1)
    assert info["Name"] == ("NVARCHAR(200)", 1, 0)
    assert info["UnitPrice"] == ("NUMERIC(10,2)", 1, 0)
    assert info["AlbumId"] == ("INTEGER", 0, 0)
    dates = {r[1]: r[2] for r in query(built, "SELECT * FROM pragma_table_info('Invoice')")}
    assert dates["InvoiceDate"] == "DATETIME" and dates["Total"] == "NUMERIC(10,2)"
    pk = [r[1] for r in query(built, "SELECT * FROM pragma_table_info('PlaylistTrack')") if r[5]]
    assert pk == ["PlaylistId", "TrackId"]
    fks = {(r[2], r[3], r[4]) for r in query(built, "SELECT * FROM pragma_foreign_key_list('Track')")}
    assert fks == {("Album", "AlbumId", "AlbumId"), ("Genre", "GenreId", "GenreId"),
                   ("MediaType", "MediaTypeId", "MediaTypeId")}  # fmt: skip
    reports = query(built, "SELECT * FROM pragma_foreign_key_list('Employee')")
    assert [(r[2], r[3], r[4]) for r in reports] == [("Employee", "ReportsTo", "EmployeeId")]
    with contextlib.closing(sqlite3.connect(built.path)) as conn:  # a writable open, on the cache's own file
        conn.execute("PRAGMA foreign_keys = ON")
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_chinook_values_and_dates(built):
    assert query(built, "SELECT Name FROM Artist WHERE ArtistId = 1") == [("AC/DC",)]
    assert query(built, "SELECT round(sum(Total), 2) FROM Invoice") == [(2328.6,)]
    first, last = query(built, "SELECT min(InvoiceDate), max(InvoiceDate) FROM Invoice")[0]
    assert first == "2007-01-01 00:00:00" and last == "2011-12-22 00:00:00"  # the fixture's (older) Chinook dates
    for (value,) in query(built, "SELECT BirthDate FROM Employee UNION SELECT HireDate FROM Employee"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", value)
    years = query(built, "SELECT strftime('%Y', InvoiceDate), count(*) FROM Invoice GROUP BY 1")
    assert [y for y, _ in years] == ["2007", "2008", "2009", "2010", "2011"] and sum(n for _, n in years) == 412
    assert query(built, "SELECT typeof(UnitPrice), count(*) FROM Track GROUP BY 1") == [("real", 3503)]


def test_ddl_is_every_table_once_and_table_ddl_picks(built):
    statements = built.ddl.split("\n\n")
    assert [s.split()[2] for s in statements] == list(CANONICAL)
    assert "INSERT" not in built.ddl and "[" not in built.ddl
    assert "  TrackId INTEGER PRIMARY KEY," in built.ddl
    assert "FOREIGN KEY (SupportRepId) REFERENCES Employee (EmployeeId)" in built.ddl
    assert "PRIMARY KEY (PlaylistId, TrackId)" in built.ddl
    for table, columns in CANONICAL.items():
        for column in columns:
            assert re.search(rf"^  {column} ", built.ddl, re.M), (table, column)
    some = built.table_ddl(["track", "ALBUM", "NoSuchTable"])
    assert some == statements[0] + "\n\n" + statements[-1]  # schema order, case-insensitive, unknown names ignored
    assert built.table_ddl([]) == ""
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:  # the DDL is valid SQLite
        conn.executescript(built.ddl)


def test_chinook_is_built_once_and_rebuilt_when_damaged_or_missing(cache):
    db = chinook()
    path = chinook_path()
    assert db.path == path and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["chinook.sqlite"]  # the temp file was renamed, none left
    stamp = path.stat().st_mtime_ns
    assert chinook().path == path and path.stat().st_mtime_ns == stamp  # not rebuilt
    data = bytearray(path.read_bytes())
    data[30 * 4096 : 31 * 4096] = b"\x5a" * 4096  # a b-tree page overwritten
    path.write_bytes(bytes(data))
    assert row_counts(chinook()) == CHINOOK_ROWS
    path.unlink()
    assert row_counts(chinook()) == CHINOOK_ROWS
    assert sorted(p.name for p in path.parent.iterdir()) == ["chinook.sqlite"]


def test_from_path_describes_any_file(tmp_path):
    path = tmp_path / "shop.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            'CREATE TABLE "order" (id INTEGER PRIMARY KEY, "customer name" TEXT NOT NULL, total REAL DEFAULT 0);'
            'CREATE TABLE item (order_id INTEGER REFERENCES "order"(id), sku TEXT, qty INT);'
            "INSERT INTO \"order\" VALUES (1, 'Kim', 3.5);"
        )
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    db = from_path(path)
    assert db.name == "shop.db" and db.tables == {"order": ["id", "customer name", "total"],
                                                  "item": ["order_id", "sku", "qty"]}  # fmt: skip
    assert 'CREATE TABLE "order" (' in db.ddl and '"customer name" TEXT NOT NULL' in db.ddl
    assert "total REAL DEFAULT 0" in db.ddl
    assert 'FOREIGN KEY (order_id) REFERENCES "order" (id)' in db.ddl
    assert from_path(path, name="가게").name == "가게"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.db"]  # no -journal / -wal / -shm appeared


def test_a_wal_database_opens_without_side_files(tmp_path):
    path = tmp_path / "wal.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (a INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wal.sqlite"]
    data = path.read_bytes()
    assert from_path(path).tables == {"t": ["a"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wal.sqlite"] and path.read_bytes() == data


def test_from_path_missing_file(tmp_path):
    with pytest.raises(InputError) as err:
        from_path(tmp_path / "nope.sqlite")
    assert err.value.code == "text2sql.db.not_found"


def test_open_upload_keeps_a_private_copy(cache, built):
    data = built.path.read_bytes()
    original = bytes(data)
    db = open_upload("C:\\Users\\me\\내 음악.sqlite", data)
    assert db.name == "내 음악.sqlite"
    assert db.path == cache / "text2sql" / "uploads" / f"{hashlib.sha256(data).hexdigest()[:12]}.sqlite"
    assert db.tables == CANONICAL and db.ddl == built.ddl
    assert data == original and db.path.read_bytes() == original
    stamp = db.path.stat().st_mtime_ns
    again = open_upload("again.db", data)
    assert again.path == db.path and db.path.stat().st_mtime_ns == stamp  # the same bytes reuse one copy
    assert sorted(p.name for p in db.path.parent.iterdir()) == [db.path.name]


def _code(name: str, data: bytes) -> str:
    with pytest.raises(InputError) as err:
        open_upload(name, data)
    assert str(err.value) and "{" not in str(err.value)
    return err.value.code


def test_broken_uploads_get_clear_codes(cache, built):
    good = built.path.read_bytes()
    junk = random.Random(0).randbytes(8192)
    assert _code("empty.db", b"") == "text2sql.db.empty"
    assert _code("junk.db", junk) == "text2sql.db.not_sqlite"
    assert _code("dump.sql", b"CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);\n") == "text2sql.db.text_file"
    assert _code("data.csv", "이름,나이\n김철수,30\n".encode()) == "text2sql.db.text_file"
    assert _code("cut.db", good[: len(good) // 2 + 100]) == "text2sql.db.damaged"  # not whole pages
    header_only = good[:100] + bytes(4096 - 100)
    assert _code("header.db", header_only) in {"text2sql.db.damaged", "text2sql.db.no_tables"}
    broken = bytearray(good)
    broken[40 * 4096 : 41 * 4096] = junk[:4096]
    assert _code("broken.db", bytes(broken)) == "text2sql.db.damaged"
    too_big = databases.SQLITE_MAGIC + bytes(MAX_UPLOAD_BYTES + 1 - len(databases.SQLITE_MAGIC))
    assert _code("huge.db", too_big) == "text2sql.db.too_big"
    uploads = cache / "text2sql" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []  # nothing broken was kept


def test_a_database_without_tables(tmp_path, cache):
    path = tmp_path / "empty.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (a)")
        conn.execute("DROP TABLE t")
        conn.commit()
    with pytest.raises(InputError) as err:
        from_path(path)
    assert err.value.code == "text2sql.db.no_tables"
    assert _code("empty.sqlite", path.read_bytes()) == "text2sql.db.no_tables"


def test_safe_name():
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("a\nb\x00.db") == "ab.db"
    assert safe_name("") == "upload.sqlite"
    assert len(safe_name("가" * 300)) == 100
