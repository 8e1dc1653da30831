"""engine.text2sql.sqlfix: joins a query forgot, added from the foreign keys by sqlglot; YEAR() made SQLite's."""

from __future__ import annotations

import pytest

from engine.text2sql.databases import chinook
from engine.text2sql.executor import run_sql
from engine.text2sql.sqlfix import fix_sql, foreign_keys


@pytest.fixture(scope="module")
def db():
    return chinook()


def test_foreign_keys_come_from_sqlite(db):
    keys = foreign_keys(db)
    assert len(keys) == 11
    assert ("Album", "ArtistId", "Artist", "ArtistId") in keys
    assert ("Employee", "ReportsTo", "Employee", "EmployeeId") in keys


@pytest.mark.parametrize(
    ("broken", "fixed", "rows"),
    [
        (  # a qualified column of a table never joined
            "SELECT count(*) FROM Album WHERE Artist.Name = 'AC/DC'",
            "SELECT COUNT(*) FROM Album JOIN Artist ON Album.ArtistId = Artist.ArtistId WHERE Artist.Name = 'AC/DC'",
            [(2,)],
        ),
        (  # two hops (PlaylistTrack -> Track for the unqualified column, -> Playlist for the filter)
            "SELECT sum(Milliseconds) FROM PlaylistTrack WHERE Playlist.Name = 'Grunge'",
            "SELECT SUM(Milliseconds) FROM PlaylistTrack JOIN Track ON PlaylistTrack.TrackId = Track.TrackId "
            "JOIN Playlist ON PlaylistTrack.PlaylistId = Playlist.PlaylistId WHERE Playlist.Name = 'Grunge'",
            None,
        ),
        (  # an alias keeps being used in the new join's condition
            "SELECT count(*) FROM Track AS T1 WHERE Genre.Name = 'Jazz'",
            "SELECT COUNT(*) FROM Track AS T1 JOIN Genre ON T1.GenreId = Genre.GenreId WHERE Genre.Name = 'Jazz'",
            [(130,)],
        ),
        (  # MySQL's YEAR() and the missing Invoice join at once
            "SELECT count(*) FROM InvoiceLine WHERE YEAR(Invoice.InvoiceDate) = 2010",
            "SELECT COUNT(*) FROM InvoiceLine JOIN Invoice ON InvoiceLine.InvoiceId = Invoice.InvoiceId "
            "WHERE CAST(STRFTIME('%Y', Invoice.InvoiceDate) AS INTEGER) = 2010",
            None,
        ),
    ],
)
def test_fixes_run_and_return_what_the_question_meant(db, broken, fixed, rows):
    assert not run_sql(db, broken).ok
    assert fix_sql(db, broken) == fixed
    result = run_sql(db, fixed)
    assert result.ok and result.rows
    if rows is not None:
        assert result.rows == rows


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM Track",  # nothing wrong
        "SELECT count(*) FROM Album WHERE Name = 'Queen'",  # Name is in five tables: no guess
        "SELECT Name FROM Track WHERE GenreId IN (SELECT GenreId FROM Genre WHERE Artist.Name = 'x')",  # subquery
        "SELECT count(*) FROM Album WHERE Nonsense.Name = 'x'",  # not a table of this database
        "this is not SQL (",
        "",
    ],
)
def test_what_it_cannot_fix_is_left_to_the_model(db, sql):
    assert fix_sql(db, sql) is None
