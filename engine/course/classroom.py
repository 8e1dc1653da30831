"""The instructor's view of a class, read from the progress database (engine.course.progress):

- `class_now`: who is where — each signed-in learner's latest section and answers so far, most recent first;
- `poll`: the live answer distribution of one quiz question (each learner's latest choice counts once), for a
  projected poll;
- `publish_demo` / `latest_demo`: a prepared demo (a share link into the app: a page with its widget state) that
  every learner's sidebar then offers to open.

Names come back exactly as typed: showing them safely is the page's job (they are data, never markup).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select

from engine.core.textinput import InputError
from engine.course.progress import ProgressStore, _now, _one_line, _utc
from engine.course.tables import LINK_LEN, NOTE_LEN, AnswerRow, DemoRow, LearnerRow


@dataclass(frozen=True)
class LearnerNow:
    learner_id: int
    name: str
    anonymous: bool
    chapter: str | None
    section: str | None
    at: datetime | None  # when they were last seen there
    answers: int
    correct: int


@dataclass(frozen=True)
class Poll:
    quiz_id: str
    counts: dict[str, int] = field(default_factory=dict)  # choice -> learners whose latest answer it is
    correct: dict[str, bool] = field(default_factory=dict)  # choice -> whether it is the right one

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Demo:
    link: str
    note: str
    at: datetime


def class_now(store: ProgressStore, *, active_minutes: float | None = 60) -> list[LearnerNow]:
    """Every learner seen in the last `active_minutes` (all with None), most recently active first."""
    with store._session() as session:
        q = select(LearnerRow)
        if active_minutes is not None:
            q = q.where(LearnerRow.resume_at >= _now() - timedelta(minutes=active_minutes))
        learners = session.scalars(q.order_by(LearnerRow.resume_at.desc().nulls_last(), LearnerRow.id)).all()
        ids = [r.id for r in learners]
        tallies: dict[int, tuple[int, int]] = {}  # learner -> (answers, correct)
        if ids:
            for lid, ok in session.execute(
                select(AnswerRow.learner_id, AnswerRow.correct).where(AnswerRow.learner_id.in_(ids))
            ):
                n, c = tallies.get(lid, (0, 0))
                tallies[lid] = (n + 1, c + int(bool(ok)))
        return [
            LearnerNow(
                r.id,
                r.name,
                r.anonymous,
                r.resume_chapter,
                r.resume_section,
                _utc(r.resume_at) if r.resume_at else None,
                *tallies.get(r.id, (0, 0)),
            )
            for r in learners
        ]


def poll(store: ProgressStore, quiz_id: str, *, since: datetime | None = None) -> Poll:
    """How the class answered `quiz_id` (a quiz key such as "quiz_16_s4_0"): each learner's latest choice."""
    quiz_id = _one_line("quiz", quiz_id, 100)
    with store._session() as session:
        q = select(AnswerRow.learner_id, AnswerRow.choice, AnswerRow.correct, AnswerRow.at, AnswerRow.id).where(
            AnswerRow.quiz_id == quiz_id
        )
        if since is not None:
            q = q.where(AnswerRow.at >= since)
        latest: dict[int, tuple] = {}
        for lid, choice, ok, _at, _id in session.execute(q.order_by(AnswerRow.at, AnswerRow.id)):
            latest[lid] = (choice, ok)
    counts = Counter(choice for choice, _ in latest.values())
    correct = {choice: bool(ok) for choice, ok in latest.values()}
    return Poll(quiz_id, dict(counts.most_common()), correct)


def demo_link(link: str) -> str:
    """The part of a share link that stays inside the app: "/page?query". A link to another site is refused (the
    instructor view must not become a way to send a whole class somewhere else)."""
    text = str(link or "").strip()
    if not text:
        raise InputError("input.empty")
    parts = urlsplit(text)
    if parts.scheme not in ("", "http", "https") or (parts.scheme and not parts.netloc):
        raise InputError("course.bad_demo_link", value=text[:80])
    path = parts.path if parts.path.startswith("/") else "/" + parts.path
    if "//" in path or "\\" in path or any(ch in path for ch in "\r\n\t"):
        raise InputError("course.bad_demo_link", value=text[:80])
    out = path + (f"?{parts.query}" if parts.query else "")
    if len(out) > LINK_LEN:
        raise InputError("course.bad_demo_link", value=text[:80])
    return out


def publish_demo(store: ProgressStore, link: str, note: str = "") -> Demo:
    """Put `link` (a share link copied from a page) on every learner's screen, with an optional note."""
    path = demo_link(link)
    note = str(note or "").strip().replace("\n", " ")[:NOTE_LEN]
    at = _now()
    with store._session() as session:
        session.add(DemoRow(link=path, note=note, at=at))
    return Demo(path, note, at)


def latest_demo(store: ProgressStore, *, max_age_minutes: float = 120) -> Demo | None:
    """The demo published last, unless it is older than `max_age_minutes` (yesterday's class is over)."""
    with store._session() as session:
        row = session.scalars(select(DemoRow).order_by(DemoRow.at.desc(), DemoRow.id.desc()).limit(1)).first()
    if row is None:
        return None
    at = _utc(row.at)
    if at < _now() - timedelta(minutes=max_age_minutes):
        return None
    return Demo(row.link, row.note, at)
