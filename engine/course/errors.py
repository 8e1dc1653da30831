"""Typed errors of the course layer: a progress database that is down, a learner name or passphrase that does not
fit, a run queue that cannot be used, a heavy run above the memory ceiling. Each has a `course.*` code
(engine.core.errors.MESSAGES, ko/en in ui/strings/errors.yaml), so a page shows a message instead of a traceback."""

from __future__ import annotations

from engine.core.errors import UserError

__all__ = ["CourseError", "LearnerError", "MemoryCeiling", "ProgressUnavailable", "QueueUnavailable"]


class CourseError(UserError):
    """Anything the course layer refuses (a `UserError` with a `course.*` code)."""

    default_code = "course.error"


class ProgressUnavailable(CourseError):
    """The progress database cannot be reached or written (down, unreachable, disk full); nothing was saved."""

    default_code = "course.db_unavailable"


class LearnerError(CourseError):
    """A learner name, passphrase or recorded field that is not accepted (the learner can fix it)."""

    default_code = "course.bad_name"


class QueueUnavailable(CourseError):
    """The machine's run queue file cannot be opened or written; the heavy run was not started."""

    default_code = "course.queue_unavailable"


class MemoryCeiling(CourseError):
    """A heavy run whose memory estimate would take the app process above LLMLAB_MAX_RSS_MB."""

    default_code = "course.memory_ceiling"
