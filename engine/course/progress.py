"""Learner progress in a real database: who the learner is, which sections they opened, their predict-then-reveal
and quiz answers, their runs, and where to resume.

    store = ProgressStore()                      # LLMLAB_DB_URL, or a SQLite file under LLMLAB_CACHE/course
    me = store.sign_in("민지", passphrase=None)  # created on first sign-in; a passphrase protects the name
    store.record_visit(me.id, "16", "s4")
    store.record_answer(me.id, "16", "q1", choice="B", correct=True)
    store.record_run(me.id, "train", {"loss": 0.41, "steps": 200}, chapter="16")
    store.resume_point(me.id)                    # ResumePoint(chapter="16", section="s4", at=...)
    store.progress(me.id)                        # everything at once (Progress)

Why it is built this way:
- Names are data: every value goes to the database as a bound parameter (SQLAlchemy Core/ORM), so a learner
  called `'); DROP TABLE learners;--` or `<script>` is stored and returned exactly as typed.
- No lost writes from two tabs: visits, answers and runs are rows that are only ever inserted; the one updated
  value, the resume point, moves only forward in time (a conditional UPDATE), so a stale tab cannot rewind it.
  On SQLite every transaction starts with BEGIN IMMEDIATE (one writer at a time, the others wait up to 30 s),
  on PostgreSQL rows are independent and the name's UNIQUE constraint settles two first sign-ins at once.
- Passphrases are optional and never stored: only a salted scrypt hash (hashlib.scrypt, n=2**14, r=8, p=1).
- A database that is down raises `ProgressUnavailable` (code `course.db_unavailable`), never a driver traceback;
  pages show the message and work on (ui.course).
- The schema comes from Alembic migrations (engine/course/migrations), applied on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, or_, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from engine.core.config import get_settings
from engine.course.errors import LearnerError, ProgressUnavailable
from engine.course.tables import FIELD_LEN, AnswerRow, LearnerRow, RunRow, VisitRow

__all__ = [
    "Answer",
    "Learner",
    "Progress",
    "ProgressStore",
    "ResumePoint",
    "Run",
    "Visit",
    "default_db_url",
    "hash_passphrase",
    "migrate",
    "verify_passphrase",
]

NAME_LIMIT = 64
PASSPHRASE_LIMITS = (4, 256)
CHOICE_LIMIT = 500
SUMMARY_LIMIT = 4000  # characters of JSON: a summary, not a log
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# scrypt's cost: about 16 MiB and a few tens of ms per hash, so a stolen database is slow to guess through
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


# ---------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Learner:
    id: int
    name: str  # as typed (or "anon-1a2b3c4d" for an anonymous learner)
    anonymous: bool
    protected: bool  # a passphrase is set
    created_at: datetime


@dataclass(frozen=True)
class Visit:
    chapter: str
    section: str
    at: datetime


@dataclass(frozen=True)
class Answer:
    chapter: str
    quiz_id: str
    choice: str
    correct: bool
    at: datetime


@dataclass(frozen=True)
class Run:
    kind: str
    summary: dict[str, Any]
    chapter: str | None
    at: datetime


@dataclass(frozen=True)
class ResumePoint:
    chapter: str
    section: str
    at: datetime


@dataclass(frozen=True)
class Progress:
    """One learner's whole record, oldest first."""

    learner: Learner
    visits: list[Visit] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    resume: ResumePoint | None = None

    @property
    def visited(self) -> dict[str, list[str]]:
        """chapter -> sections visited, in the order first visited."""
        out: dict[str, list[str]] = {}
        for v in self.visits:
            sections = out.setdefault(v.chapter, [])
            if v.section not in sections:
                sections.append(v.section)
        return out

    @property
    def latest_answers(self) -> dict[tuple[str, str], Answer]:
        """(chapter, quiz id) -> the learner's last answer to it."""
        return {(a.chapter, a.quiz_id): a for a in self.answers}


# ---------------------------------------------------------------------------------------------------- the URL


def default_db_url() -> str:
    """LLMLAB_DB_URL when set, else a SQLite file under LLMLAB_CACHE/course."""
    settings = get_settings()
    if settings.db_url:
        return settings.db_url
    return f"sqlite:///{settings.cache_dir / 'course' / 'progress.sqlite'}"


def _shown(url: URL) -> str:
    """The URL for messages: never the password."""
    return url.render_as_string(hide_password=True)


def _reason(exc: BaseException) -> str:
    """The driver's first line (e.g. 'connection refused'), short enough for a message."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return (text[0] if text else type(orig).__name__)[:200]


# ---------------------------------------------------------------------------------------------------- engine


def _engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ProgressUnavailable("course.db_unavailable", url=_shown(url), reason=_reason(exc)) from exc
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record) -> None:
            # the driver must not open transactions itself: the "begin" hook below does, as BEGIN IMMEDIATE
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across an app crash, one fsync per checkpoint
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:
            # take the write lock at the start: a read-then-write transaction can then never fail with
            # "database is locked" halfway; other processes queue for up to 30 s instead
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = 5  # a server that is down answers in seconds, not minutes
    # pre_ping: a connection the server dropped (a restart) is replaced instead of failing the next request
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (alembic upgrade head), in one transaction where the database
    allows it; concurrent callers are serialized (engine/course/migrations/env.py)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


# ---------------------------------------------------------------------------------------------------- checks


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes (stored as UTC), PostgreSQL aware ones in the session's zone: UTC both."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _one_line(name: str, value: Any, limit: int, *, code: str = "course.bad_field") -> str:
    if not isinstance(value, str):
        raise LearnerError(code, name=name, limit=limit, value=value)
    text = value.strip()
    if not text or len(text) > limit or any(unicodedata.category(ch) == "Cc" for ch in text):
        raise LearnerError(code, name=name, limit=limit, value=value if len(value) <= 80 else value[:80] + "…")
    return text


def _clean_name(name: Any) -> tuple[str, str]:
    """(display name, key): the display name as typed (trimmed), the key folded so case does not split a learner."""
    shown = _one_line("name", name, NAME_LIMIT, code="course.bad_name")
    return shown, unicodedata.normalize("NFC", shown).casefold()


def _check_passphrase(passphrase: Any) -> str:
    low, high = PASSPHRASE_LIMITS
    if not isinstance(passphrase, str) or not low <= len(passphrase) <= high:
        raise LearnerError("course.bad_passphrase", low=low, high=high)
    return passphrase


def hash_passphrase(passphrase: str, *, salt: bytes | None = None) -> str:
    """'scrypt$n$r$p$salt$hash' (hex) for a passphrase: a fresh random salt each time, so equal passphrases differ."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_passphrase(passphrase: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            passphrase.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)  # constant time: no timing hint about the hash


def _summary_json(summary: Any) -> str:
    if not isinstance(summary, dict):
        raise LearnerError("course.summary_not_json", reason=f"got {type(summary).__name__}, not an object")
    try:
        text = json.dumps(summary, ensure_ascii=False, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise LearnerError("course.summary_not_json", reason=str(exc)[:120]) from exc
    if len(text) > SUMMARY_LIMIT:
        raise LearnerError("course.summary_too_large", limit=SUMMARY_LIMIT, value=len(text))
    return text


def _learner(row: LearnerRow) -> Learner:
    return Learner(
        id=row.id,
        name=row.name,
        anonymous=bool(row.anonymous),
        protected=row.passphrase_hash is not None,
        created_at=_utc(row.created_at),
    )


# ---------------------------------------------------------------------------------------------------- the store


class ProgressStore:
    """Learner progress behind one URL (SQLite or PostgreSQL). Thread-safe: one per process serves every session."""

    def __init__(self, url: str | None = None, *, auto_migrate: bool = True) -> None:
        try:
            self._url = make_url(url or default_db_url())
        except sa_exc.ArgumentError as exc:
            raise ProgressUnavailable("course.db_unavailable", url="?", reason=_reason(exc)) from exc
        try:
            self._engine = _engine(self._url)  # connects lazily: a server that is down fails on first use
        except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as exc:
            raise ProgressUnavailable("course.db_unavailable", url=_shown(self._url), reason=_reason(exc)) from exc
        self._auto_migrate = auto_migrate
        self._migrated = False
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The database URL without its password."""
        return _shown(self._url)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> ProgressStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing

    def _ensure_schema(self) -> None:
        if self._migrated or not self._auto_migrate:
            return
        with self._lock:
            if self._migrated:
                return
            try:
                migrate(self._engine)
            except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, OSError) as exc:
                raise ProgressUnavailable("course.db_unavailable", url=self.url, reason=_reason(exc)) from exc
            except sa_exc.SQLAlchemyError as exc:
                raise ProgressUnavailable("course.db_failed", url=self.url, reason=_reason(exc)) from exc
            self._migrated = True

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """One transaction; a database that is down (or goes down during it) becomes ProgressUnavailable."""
        self._ensure_schema()
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                yield session
        except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, OSError) as exc:
            raise ProgressUnavailable("course.db_unavailable", url=self.url, reason=_reason(exc)) from exc
        except sa_exc.DBAPIError as exc:
            if exc.connection_invalidated:
                raise ProgressUnavailable("course.db_unavailable", url=self.url, reason=_reason(exc)) from exc
            raise

    def _row(self, session: Session, learner_id: int) -> LearnerRow:
        row = session.get(LearnerRow, int(learner_id))
        if row is None:
            raise LearnerError("course.unknown_learner", learner_id=learner_id)
        return row

    # -- learners

    def sign_in(self, name: str, passphrase: str | None = None) -> Learner:
        """The learner called `name` (created on first sign-in, with `passphrase` protecting it if given).

        A protected learner needs the passphrase (`course.passphrase_required`, `course.wrong_passphrase`); an
        unprotected one is open to anyone who types the name — a passphrase given then is ignored (set one with
        `set_passphrase`)."""
        shown, key = _clean_name(name)
        if passphrase == "":
            passphrase = None
        if passphrase is not None:
            _check_passphrase(passphrase)
        for _attempt in range(2):
            try:
                with self._session() as session:
                    row = session.scalars(select(LearnerRow).where(LearnerRow.key == key)).one_or_none()
                    if row is None:
                        row = LearnerRow(
                            key=key,
                            name=shown,
                            anonymous=False,
                            passphrase_hash=hash_passphrase(passphrase) if passphrase else None,
                            created_at=_now(),
                        )
                        session.add(row)
                        session.flush()
                        return _learner(row)
                    if row.passphrase_hash is not None:
                        if passphrase is None:
                            raise LearnerError("course.passphrase_required", name=row.name)
                        if not verify_passphrase(passphrase, row.passphrase_hash):
                            raise LearnerError("course.wrong_passphrase", name=row.name)
                    return _learner(row)
            except sa_exc.IntegrityError:
                continue  # another tab created the same name a moment ago: read theirs
        raise ProgressUnavailable("course.db_unavailable", url=self.url, reason="the learner could not be created")

    def anonymous(self) -> Learner:
        """A new learner with a random id ("anon-1a2b3c4d"); typing that id at sign-in resumes it."""
        for _attempt in range(5):
            name = f"anon-{secrets.token_hex(4)}"
            try:
                with self._session() as session:
                    row = LearnerRow(key=name, name=name, anonymous=True, passphrase_hash=None, created_at=_now())
                    session.add(row)
                    session.flush()
                    return _learner(row)
            except sa_exc.IntegrityError:
                continue
        raise ProgressUnavailable("course.db_unavailable", url=self.url, reason="no free anonymous id")

    def learner(self, learner_id: int) -> Learner:
        with self._session() as session:
            return _learner(self._row(session, learner_id))

    def set_passphrase(self, learner_id: int, passphrase: str | None, *, current: str | None = None) -> Learner:
        """Set, change (with `current`) or remove (passphrase None, with `current`) a learner's passphrase."""
        if passphrase is not None:
            _check_passphrase(passphrase)
        with self._session() as session:
            row = self._row(session, learner_id)
            if row.passphrase_hash is not None and (
                current is None or not verify_passphrase(current, row.passphrase_hash)
            ):
                raise LearnerError("course.wrong_passphrase", name=row.name)
            row.passphrase_hash = hash_passphrase(passphrase) if passphrase is not None else None
            session.flush()
            return _learner(row)

    # -- recording

    def record_visit(
        self, learner_id: int, chapter: str, section: str, *, at: datetime | None = None, resume: bool = True
    ) -> Visit:
        """A section opened; with `resume` it also becomes the resume point unless a later one is already recorded
        (a page draws all its sections at once: the app moves the resume point only for what the learner did)."""
        chapter = _one_line("chapter", chapter, FIELD_LEN)
        section = _one_line("section", section, FIELD_LEN)
        at = _utc(at) if at is not None else _now()
        with self._session() as session:
            self._row(session, learner_id)
            session.add(VisitRow(learner_id=int(learner_id), chapter=chapter, section=section, at=at))
            if not resume:
                return Visit(chapter, section, at)
            # forward only: a tab that reports an older visit after a newer one does not move the learner back
            session.execute(
                update(LearnerRow)
                .where(LearnerRow.id == int(learner_id))
                .where(or_(LearnerRow.resume_at.is_(None), LearnerRow.resume_at <= at))
                .values(resume_chapter=chapter, resume_section=section, resume_at=at)
            )
        return Visit(chapter, section, at)

    def record_answer(
        self, learner_id: int, chapter: str, quiz_id: str, choice: Any, correct: bool, *, at: datetime | None = None
    ) -> Answer:
        """A predict-then-reveal or quiz answer (every answer is kept; `Progress.latest_answers` has the last)."""
        chapter = _one_line("chapter", chapter, FIELD_LEN)
        quiz_id = _one_line("quiz", quiz_id, FIELD_LEN)
        choice_text = str(choice)
        if len(choice_text) > CHOICE_LIMIT:
            raise LearnerError("course.bad_field", name="choice", limit=CHOICE_LIMIT, value=choice_text[:80] + "…")
        at = _utc(at) if at is not None else _now()
        with self._session() as session:
            self._row(session, learner_id)
            session.add(
                AnswerRow(
                    learner_id=int(learner_id),
                    chapter=chapter,
                    quiz_id=quiz_id,
                    choice=choice_text,
                    correct=bool(correct),
                    at=at,
                )
            )
        return Answer(chapter, quiz_id, choice_text, bool(correct), at)

    def record_run(
        self,
        learner_id: int,
        kind: str,
        summary: dict[str, Any],
        *,
        chapter: str | None = None,
        at: datetime | None = None,
    ) -> Run:
        """A run the learner started: its kind ("train", "sweep", ...) and a short JSON summary."""
        kind = _one_line("kind", kind, FIELD_LEN)
        if chapter is not None:
            chapter = _one_line("chapter", chapter, FIELD_LEN)
        text = _summary_json(summary)
        at = _utc(at) if at is not None else _now()
        with self._session() as session:
            self._row(session, learner_id)
            session.add(RunRow(learner_id=int(learner_id), chapter=chapter, kind=kind, summary=text, at=at))
        return Run(kind, json.loads(text), chapter, at)

    # -- reading

    def visits(self, learner_id: int) -> list[Visit]:
        with self._session() as session:
            self._row(session, learner_id)
            return self._visits(session, int(learner_id))

    def answers(self, learner_id: int) -> list[Answer]:
        with self._session() as session:
            self._row(session, learner_id)
            return self._answers(session, int(learner_id))

    def runs(self, learner_id: int) -> list[Run]:
        with self._session() as session:
            self._row(session, learner_id)
            return self._runs(session, int(learner_id))

    def resume_point(self, learner_id: int) -> ResumePoint | None:
        with self._session() as session:
            return self._resume(self._row(session, learner_id))

    def progress(self, learner_id: int) -> Progress:
        """The learner's whole record, read in one transaction."""
        with self._session() as session:
            row = self._row(session, learner_id)
            lid = int(learner_id)
            return Progress(
                learner=_learner(row),
                visits=self._visits(session, lid),
                answers=self._answers(session, lid),
                runs=self._runs(session, lid),
                resume=self._resume(row),
            )

    @staticmethod
    def _visits(session: Session, lid: int) -> list[Visit]:
        rows = session.scalars(select(VisitRow).where(VisitRow.learner_id == lid).order_by(VisitRow.at, VisitRow.id))
        return [Visit(r.chapter, r.section, _utc(r.at)) for r in rows]

    @staticmethod
    def _answers(session: Session, lid: int) -> list[Answer]:
        rows = session.scalars(
            select(AnswerRow).where(AnswerRow.learner_id == lid).order_by(AnswerRow.at, AnswerRow.id)
        )
        return [Answer(r.chapter, r.quiz_id, r.choice, bool(r.correct), _utc(r.at)) for r in rows]

    @staticmethod
    def _runs(session: Session, lid: int) -> list[Run]:
        rows = session.scalars(select(RunRow).where(RunRow.learner_id == lid).order_by(RunRow.at, RunRow.id))
        return [Run(r.kind, json.loads(r.summary), r.chapter, _utc(r.at)) for r in rows]

    @staticmethod
    def _resume(row: LearnerRow) -> ResumePoint | None:
        if row.resume_chapter is None or row.resume_section is None or row.resume_at is None:
            return None
        return ResumePoint(row.resume_chapter, row.resume_section, _utc(row.resume_at))
