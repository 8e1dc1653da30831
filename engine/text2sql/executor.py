"""Running a model's SQL: read-only, one statement, time- and size-limited, and never raising for bad SQL.

Generated SQL is untrusted text. Three independent walls keep the database file byte-identical:

1. the connection is opened `mode=ro&immutable=1` (databases.readonly_uri): SQLite itself refuses to write and
   never creates a journal, -wal or -shm file;
2. an authorizer (sqlite3 `set_authorizer`) allows only what a query needs — SELECT, reading columns, calling
   functions, recursive CTEs — and denies everything else at prepare time: INSERT/UPDATE/DELETE, CREATE/DROP/ALTER
   (temp objects too), ATTACH/DETACH (and VACUUM INTO, which SQLite authorizes as an ATTACH), PRAGMA, BEGIN and
   SAVEPOINT, ANALYZE, REINDEX, and the functions `load_extension` and `fts3_tokenizer` (the latter hands out a
   raw pointer; it is a known way to run native code from SQL);
3. Python's sqlite3 prepares one statement only: `SELECT 1; DROP TABLE Track` fails before anything runs
   (`text2sql.exec.not_one_statement`).

Limits: a progress handler checks the clock every 1,000 SQLite VM instructions and interrupts past `timeout_s`
(a recursive CTE that never ends stops at the limit ± a few ms); at most `max_rows` rows are fetched (a 10^7-row
cross join returns its first 1,000 in ~10 ms and says `truncated`); one value is at most 10 MB and one result at
most 16 MB (SQLITE_LIMIT_LENGTH and a byte count), so `randomblob(1e9)` fails fast instead of eating memory.

Every call opens its own connection (~0.3 ms on Chinook), so threads (Streamlit sessions, a parallel evaluation)
never share one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from engine.core.textinput import InputError
from engine.text2sql.databases import Database, connect_readonly

MAX_VALUE_BYTES = 10_000_000  # one string/blob (SQLITE_LIMIT_LENGTH)
MAX_RESULT_BYTES = 16_000_000  # all fetched text/blob values together; past it the result is cut (truncated)
MAX_SQL_CHARS = 100_000  # SQLITE_LIMIT_SQL_LENGTH: a query, not a dump
_CHECK_EVERY = 1_000  # VM instructions between clock checks (~10 µs of work each on this machine)

_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
_DENIED_FUNCTIONS = {"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"}
# Readable names of SQLite's authorizer action codes, for the `detail` of a denial.
_ACTION_NAMES = (
    "SQLITE_CREATE_INDEX SQLITE_CREATE_TABLE SQLITE_CREATE_TEMP_INDEX SQLITE_CREATE_TEMP_TABLE "
    "SQLITE_CREATE_TEMP_TRIGGER SQLITE_CREATE_TEMP_VIEW SQLITE_CREATE_TRIGGER SQLITE_CREATE_VIEW SQLITE_DELETE "
    "SQLITE_DROP_INDEX SQLITE_DROP_TABLE SQLITE_DROP_TEMP_INDEX SQLITE_DROP_TEMP_TABLE SQLITE_DROP_TEMP_TRIGGER "
    "SQLITE_DROP_TEMP_VIEW SQLITE_DROP_TRIGGER SQLITE_DROP_VIEW SQLITE_INSERT SQLITE_PRAGMA SQLITE_READ "
    "SQLITE_SELECT SQLITE_TRANSACTION SQLITE_UPDATE SQLITE_ATTACH SQLITE_DETACH SQLITE_ALTER_TABLE "
    "SQLITE_REINDEX SQLITE_ANALYZE SQLITE_CREATE_VTABLE SQLITE_DROP_VTABLE SQLITE_FUNCTION SQLITE_SAVEPOINT "
    "SQLITE_RECURSIVE"
)
_ACTIONS = {getattr(sqlite3, n): n.removeprefix("SQLITE_") for n in _ACTION_NAMES.split() if hasattr(sqlite3, n)}

ERROR_CODES = (
    "text2sql.exec.sql_error",
    "text2sql.exec.timeout",
    "text2sql.exec.denied",
    "text2sql.exec.not_one_statement",
    "text2sql.exec.empty",
)


@dataclass(frozen=True)
class ExecResult:
    """What one SQL run gave: rows, or an error code and SQLite's own message."""

    columns: list[str]
    rows: list[tuple]  # at most max_rows
    error: str | None  # None, or one of ERROR_CODES
    detail: str  # SQLite's own message ("no such column: T1.GenreId"), shown verbatim; "" when ok
    seconds: float  # wall time of prepare + run + fetch
    truncated: bool  # more rows existed than max_rows (or the result passed MAX_RESULT_BYTES)

    @property
    def ok(self) -> bool:
        return self.error is None


def run_sql(db: Database | Path, sql: str, *, timeout_s: float = 5.0, max_rows: int = 1000) -> ExecResult:
    """Run one SELECT read-only; bad SQL comes back as `error` (evaluation counts errors), it never raises.

    Only a database file that is not there raises (`text2sql.db.not_found`): that is not the SQL's fault."""
    path = db.path if isinstance(db, Database) else Path(db)
    if not path.is_file():
        raise InputError("text2sql.db.not_found", path=str(path))
    started = time.perf_counter()
    text = (sql or "").strip()
    if not text:
        return _fail("text2sql.exec.empty", "no SQL", started)
    max_rows = max(1, int(max_rows))
    deadline = started + max(0.001, float(timeout_s))
    state = {"denied": "", "timed_out": False}

    def authorize(action: int, arg1, arg2, db_name, trigger) -> int:
        if action == sqlite3.SQLITE_FUNCTION and str(arg2).lower() in _DENIED_FUNCTIONS:
            state["denied"] = f"function {arg2}"
            return sqlite3.SQLITE_DENY
        if action in _ALLOWED:
            return sqlite3.SQLITE_OK
        state["denied"] = " ".join(str(a) for a in (_ACTIONS.get(action, action), arg1) if a not in (None, ""))
        return sqlite3.SQLITE_DENY

    def check_clock() -> int:
        if time.perf_counter() > deadline:
            state["timed_out"] = True
            return 1  # non-zero interrupts the statement: OperationalError "interrupted"
        return 0

    try:
        conn = connect_readonly(path)
    except sqlite3.Error as exc:
        return _fail("text2sql.exec.sql_error", str(exc), started)
    with contextlib.closing(conn):
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_CHARS)
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.set_authorizer(authorize)
        conn.set_progress_handler(check_clock, _CHECK_EVERY)
        try:
            cursor = conn.execute(text)
            if cursor.description is None:  # only comments, or nothing SQLite would run
                return _fail("text2sql.exec.empty", "no statement", started)
            columns = [d[0] for d in cursor.description]
            rows, truncated = _fetch(cursor, max_rows, deadline)
        except (sqlite3.Error, OverflowError, TimeoutError) as exc:  # OverflowError: Python cannot hold a value
            message = str(exc) or "interrupted"
            if state["timed_out"] or isinstance(exc, TimeoutError):
                return _fail("text2sql.exec.timeout", f"stopped after {timeout_s:g} s ({message})", started)
            if state["denied"]:
                return _fail("text2sql.exec.denied", f"{message} ({state['denied']})", started)
            if "one statement at a time" in message:
                return _fail("text2sql.exec.not_one_statement", message, started)
            return _fail("text2sql.exec.sql_error", message, started)
    return ExecResult(columns, rows, None, "", time.perf_counter() - started, truncated)


def _fetch(cursor: sqlite3.Cursor, max_rows: int, deadline: float) -> tuple[list[tuple], bool]:
    """Up to max_rows rows, and whether more existed; stops early past MAX_RESULT_BYTES of text and blobs.

    One row at a time: a batch (fetchmany) would convert all its rows to Python objects before the byte count
    could stop it — `SELECT zeroblob(9000000) FROM Track` in batches of 256 took 40 s and 2.3 GB on this machine.
    The clock is checked here too, because converting values happens outside SQLite's progress handler."""
    rows: list[tuple] = []
    size = 0
    while len(rows) < max_rows:
        row = cursor.fetchone()
        if row is None:
            return rows, False
        size += sum(len(v) for v in row if isinstance(v, str | bytes))
        if size > MAX_RESULT_BYTES:
            return rows, True
        if time.perf_counter() > deadline:
            raise TimeoutError
        rows.append(row)
    return rows, cursor.fetchone() is not None


def _fail(code: str, detail: str, started: float) -> ExecResult:
    return ExecResult([], [], code, detail, time.perf_counter() - started, False)
