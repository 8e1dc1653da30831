"""The progress database's tables (SQLAlchemy 2.x declarative): learners, visits, answers, runs, and the
instructor's demos.

Alembic's migrations (engine/course/migrations) create exactly this schema; a test compares the migrated database
with this metadata (autogenerate finds no difference) on SQLite and on PostgreSQL. Change a table here, then add a
migration (`alembic revision --autogenerate` against a database at head), never the other way round.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["AnswerRow", "Base", "DemoRow", "LearnerRow", "RunRow", "VisitRow"]

# Named constraints: the same names on SQLite and PostgreSQL, so migrations can refer to them later.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LEN = 200  # column width; the API accepts names of up to 64 characters (casefold may lengthen them)
FIELD_LEN = 100  # chapter, section, quiz id, run kind
CHOICE_LEN = 500
LINK_LEN = 4000  # a share link carries every control of a page that differs from its default
NOTE_LEN = 300


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class LearnerRow(Base):
    """One learner: a display name (or an anonymous id), an optional passphrase hash, and where they left off."""

    __tablename__ = "learners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # the name folded (NFC, casefold): "Minji" and "minji" are one learner; the display name keeps the spelling
    key: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    anonymous: Mapped[bool] = mapped_column(Boolean)
    # "scrypt$n$r$p$salt$hash" (hex); None: no passphrase. The passphrase itself is never stored.
    passphrase_hash: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the resume point: the last section visited (only ever moved forward in time, so an old tab cannot rewind it)
    resume_chapter: Mapped[str | None] = mapped_column(String(FIELD_LEN), nullable=True)
    resume_section: Mapped[str | None] = mapped_column(String(FIELD_LEN), nullable=True)
    resume_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class VisitRow(Base):
    """A section opened by a learner (every visit is a row: two tabs never overwrite each other)."""

    __tablename__ = "visits"
    __table_args__ = (Index("ix_visits_learner_at", "learner_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id", ondelete="CASCADE"))
    chapter: Mapped[str] = mapped_column(String(FIELD_LEN))
    section: Mapped[str] = mapped_column(String(FIELD_LEN))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AnswerRow(Base):
    """A predict-then-reveal or quiz answer: which choice, and whether it was right."""

    __tablename__ = "answers"
    __table_args__ = (Index("ix_answers_learner_at", "learner_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id", ondelete="CASCADE"))
    chapter: Mapped[str] = mapped_column(String(FIELD_LEN))
    quiz_id: Mapped[str] = mapped_column(String(FIELD_LEN))
    choice: Mapped[str] = mapped_column(String(CHOICE_LEN))
    correct: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RunRow(Base):
    """A run the learner started (a training run, a sweep): its kind and a short JSON summary."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_learner_at", "learner_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id", ondelete="CASCADE"))
    chapter: Mapped[str | None] = mapped_column(String(FIELD_LEN), nullable=True)
    kind: Mapped[str] = mapped_column(String(FIELD_LEN))
    summary: Mapped[str] = mapped_column(Text)  # JSON, at most SUMMARY_LIMIT characters
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DemoRow(Base):
    """A demo the instructor put on every learner's screen: a link into the app (a page with its widget state)."""

    __tablename__ = "demos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link: Mapped[str] = mapped_column(String(LINK_LEN))  # "/<page>?<query>": always inside the app
    note: Mapped[str] = mapped_column(String(NOTE_LEN))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
