"""Admission control for heavy runs (training, sweeps, index builds): a bounded queue per machine, shared by every
Streamlit process, and a stated memory ceiling.

    queue = AdmissionQueue()                       # LLMLAB_CACHE/course/admission.sqlite, LLMLAB_HEAVY_SLOTS slots
    with queue.admit("train", "ch16 mamba", should_stop=stop, on_wait=lambda n: show(f"queued: position {n}")):
        check_memory(estimate_bytes)               # refuse above LLMLAB_MAX_RSS_MB (MemoryCeiling)
        train(...)                                 # at most `slots` of these run at once on the machine

Light work (a forward pass, a chart) never goes through the queue, so it never waits behind a training run.

How the queue works: one SQLite file, one row per ticket (id from AUTOINCREMENT, so ids are the arrival order).
Every change runs in a BEGIN IMMEDIATE transaction, so two processes never both take the last slot. A waiting
ticket is admitted when fewer than `slots` tickets hold a slot *and* fewer than the free slots are waiting ahead
of it: strict first-come, first-served. A ticket records its process id and that process's start time; a ticket
whose process is gone (killed, crashed: no `finally` ran) is removed by the next caller ("reaped"), so a dead
holder never blocks the machine. A Stop while waiting removes the ticket before `Cancelled` is raised.

Containers that share the cache volume (docs/deploy.md: the replicas of a host) see each other's tickets but not
each other's processes, so a process id is only checked inside its own PID namespace. Every ticket also carries a
heartbeat (a waiting ticket beats at each poll, a holder from a thread `admit` starts); a ticket of another
namespace is reaped when its heartbeat is older than `lease_s` (60 s).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.core.config import get_settings
from engine.core.progress import Cancelled
from engine.course.errors import MemoryCeiling, QueueUnavailable

__all__ = [
    "AdmissionQueue",
    "MemoryCheck",
    "QueueEntry",
    "QueueState",
    "Ticket",
    "check_memory",
    "current_rss",
    "memory_ceiling",
]

DEFAULT_POLL_S = 0.25
DEFAULT_LEASE_S = 60.0
WAITING, HOLDING = "waiting", "holding"
_MB = 2**20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pid INTEGER NOT NULL,
    pid_started REAL NOT NULL,
    ns TEXT NOT NULL,
    beat REAL NOT NULL,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    state TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    admitted_at REAL
)
"""


@dataclass(frozen=True)
class Ticket:
    """A place in the queue (waiting, then holding a slot once admitted)."""

    id: int
    kind: str
    label: str
    pid: int


@dataclass(frozen=True)
class QueueEntry:
    id: int
    kind: str
    label: str
    pid: int
    holding: bool
    enqueued_at: float


@dataclass(frozen=True)
class QueueState:
    """The machine's queue now: who holds the slots, who waits (in order)."""

    slots: int
    holders: list[QueueEntry]
    waiting: list[QueueEntry]


def _namespace() -> str:
    """Which process ids this process can check: its PID namespace (and host), e.g. 'pid:[4026531836]@web-1'."""
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:  # not Linux: the host name alone
        ns = ""
    return f"{ns}@{socket.gethostname()}"


def _process_start(pid: int) -> float | None:
    """The process's start time, or None when it is gone (or a zombie: killed, not yet collected by its parent)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return round(proc.create_time(), 2)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:  # another user's process that exists: alive
        return 0.0


class AdmissionQueue:
    """The machine's queue for heavy runs (one SQLite file under LLMLAB_CACHE); safe across processes and threads."""

    def __init__(
        self, path: str | Path | None = None, slots: int | None = None, *, lease_s: float = DEFAULT_LEASE_S
    ) -> None:
        # (settings only when needed: reading them may import torch to find the device, seconds in a fresh process)
        settings = get_settings() if path is None or slots is None else None
        self._path = Path(path) if path is not None else settings.cache_dir / "course" / "admission.sqlite"
        self.slots = max(1, int(slots if slots is not None else settings.heavy_slots))
        self.lease_s = float(lease_s)
        self._pid = os.getpid()
        self._pid_started: float | None = None
        self._ns = _namespace()

    @property
    def path(self) -> Path:
        return self._path

    # -- plumbing

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One BEGIN IMMEDIATE transaction: the write lock from the first statement, so decisions are atomic."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self._path, timeout=30, isolation_level=None)) as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(_SCHEMA)
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            raise QueueUnavailable("course.queue_unavailable", path=str(self._path), reason=str(exc)[:200]) from exc

    def _me(self) -> tuple[int, float]:
        pid = os.getpid()
        if self._pid_started is None or pid != self._pid:  # after a fork the child is another process
            self._pid, self._pid_started = pid, _process_start(pid) or 0.0
        return self._pid, self._pid_started

    def _reap(self, conn: sqlite3.Connection) -> int:
        """Remove the tickets of processes that are gone (or whose pid now belongs to a newer process); a ticket of
        another PID namespace (another container) when its heartbeat is older than the lease."""
        dead = []
        starts: dict[int, float | None] = {}
        now_s = time.time()
        for tid, pid, started, ns, beat in conn.execute(
            "SELECT id, pid, pid_started, ns, beat FROM tickets_v2"
        ).fetchall():
            if ns != self._ns:
                if now_s - beat > self.lease_s:
                    dead.append((tid,))
                continue
            if pid not in starts:
                starts[pid] = _process_start(pid)
            now = starts[pid]
            if now is None or (now and started and abs(now - started) > 0.05):
                dead.append((tid,))
        conn.executemany("DELETE FROM tickets_v2 WHERE id = ?", dead)
        return len(dead)

    def _position(self, conn: sqlite3.Connection, ticket: Ticket) -> int:
        row = conn.execute("SELECT state FROM tickets_v2 WHERE id = ?", (ticket.id,)).fetchone()
        if row is None:  # the queue file was deleted under us, or the ticket was released already
            raise QueueUnavailable(
                "course.queue_unavailable", path=str(self._path), reason=f"ticket {ticket.id} is no longer queued"
            )
        if row[0] == HOLDING:
            return 0
        ahead = conn.execute(
            "SELECT COUNT(*) FROM tickets_v2 WHERE state = ? AND id < ?", (WAITING, ticket.id)
        ).fetchone()[0]
        return int(ahead) + 1

    # -- the ticket API

    def enqueue(self, kind: str, label: str = "") -> Ticket:
        """Join the end of the queue."""
        pid, started = self._me()
        with self._tx() as conn:
            self._reap(conn)
            cur = conn.execute(
                "INSERT INTO tickets_v2 (pid, pid_started, ns, beat, kind, label, state, enqueued_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (pid, started, self._ns, time.time(), str(kind), str(label), WAITING, time.time()),
            )
            return Ticket(id=int(cur.lastrowid), kind=str(kind), label=str(label), pid=pid)

    def position(self, ticket: Ticket) -> int:
        """0 once admitted; else the place among the waiting tickets (1 = next to be admitted)."""
        with self._tx() as conn:
            self._reap(conn)
            return self._position(conn, ticket)

    def try_acquire(self, ticket: Ticket) -> bool:
        """Admit the ticket if a slot is free and no earlier ticket is waiting for it; never blocks."""
        with self._tx() as conn:
            self._reap(conn)
            position = self._position(conn, ticket)
            conn.execute("UPDATE tickets_v2 SET beat = ? WHERE id = ?", (time.time(), ticket.id))  # still here
            if position == 0:
                return True
            holders = conn.execute("SELECT COUNT(*) FROM tickets_v2 WHERE state = ?", (HOLDING,)).fetchone()[0]
            if holders + (position - 1) < self.slots:  # FIFO: the free slots go to the earliest waiters
                conn.execute(
                    "UPDATE tickets_v2 SET state = ?, admitted_at = ? WHERE id = ?", (HOLDING, time.time(), ticket.id)
                )
                return True
            return False

    def acquire(
        self,
        ticket: Ticket,
        *,
        should_stop: Callable[[], bool] | None = None,
        on_wait: Callable[[int], None] | None = None,
        poll_s: float = DEFAULT_POLL_S,
    ) -> None:
        """Wait until admitted. `on_wait(position)` is called at every poll while waiting (a page redraws its
        progress with it); when `should_stop()` turns true the ticket is removed and `Cancelled` is raised.
        Anything that interrupts the wait (an exception, a Streamlit rerun) also removes the ticket."""
        try:
            while True:
                if should_stop is not None and should_stop():
                    raise Cancelled("stopped while waiting for a free slot")
                if self.try_acquire(ticket):
                    return
                if on_wait is not None:
                    on_wait(self.position(ticket))
                time.sleep(poll_s)
        except BaseException:
            self.release(ticket)
            raise

    def beat(self, ticket: Ticket) -> None:
        """The ticket's process is alive (for other containers, which cannot see it): `admit` calls this."""
        with self._tx() as conn:
            conn.execute("UPDATE tickets_v2 SET beat = ? WHERE id = ?", (time.time(), ticket.id))

    def release(self, ticket: Ticket) -> None:
        """Leave the queue (give the slot back, or stop waiting); releasing twice is harmless."""
        with self._tx() as conn:
            conn.execute("DELETE FROM tickets_v2 WHERE id = ?", (ticket.id,))

    @contextmanager
    def admit(
        self,
        kind: str,
        label: str = "",
        *,
        should_stop: Callable[[], bool] | None = None,
        on_wait: Callable[[int], None] | None = None,
        poll_s: float = DEFAULT_POLL_S,
    ) -> Iterator[Ticket]:
        """enqueue + acquire; the slot is released when the block ends, however it ends."""
        ticket = self.enqueue(kind, label)
        self.acquire(ticket, should_stop=should_stop, on_wait=on_wait, poll_s=poll_s)
        done = threading.Event()

        def heartbeat() -> None:  # a long run outlives the lease: other containers must not reap its slot
            while not done.wait(self.lease_s / 4):
                with contextlib.suppress(QueueUnavailable):  # a busy or vanished file: try at the next beat
                    self.beat(ticket)

        beater = threading.Thread(target=heartbeat, name=f"admission-beat-{ticket.id}", daemon=True)
        beater.start()
        try:
            yield ticket
        finally:
            done.set()
            beater.join()
            self.release(ticket)

    def reap(self) -> int:
        """Remove dead processes' tickets now; returns how many (every other call does this too)."""
        with self._tx() as conn:
            return self._reap(conn)

    def state(self) -> QueueState:
        with self._tx() as conn:
            self._reap(conn)
            rows = conn.execute(
                "SELECT id, kind, label, pid, state, enqueued_at FROM tickets_v2 ORDER BY id"
            ).fetchall()
        entries = [QueueEntry(r[0], r[1], r[2], r[3], r[4] == HOLDING, r[5]) for r in rows]
        return QueueState(
            slots=self.slots, holders=[e for e in entries if e.holding], waiting=[e for e in entries if not e.holding]
        )


# ---------------------------------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class MemoryCheck:
    rss: int  # bytes this process uses now
    estimate: int  # bytes the run is expected to add
    limit: int  # the ceiling in bytes

    @property
    def headroom(self) -> int:
        return self.limit - self.rss - self.estimate


def current_rss() -> int:
    """Resident memory of this process in bytes (psutil)."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def memory_ceiling() -> int:
    """The most memory one app process may use, in bytes: LLMLAB_MAX_RSS_MB, or 80% of the machine's RAM."""
    settings = get_settings()
    if settings.max_rss_mb:
        return int(settings.max_rss_mb) * _MB
    import psutil

    return int(0.8 * psutil.virtual_memory().total)


def check_memory(estimate_bytes: int = 0, *, limit: int | None = None) -> MemoryCheck:
    """Refuse (MemoryCeiling) a run whose estimate on top of this process's RSS would pass the ceiling."""
    check = MemoryCheck(
        rss=current_rss(), estimate=max(0, int(estimate_bytes)), limit=int(limit if limit else memory_ceiling())
    )
    if check.headroom < 0:
        raise MemoryCeiling(
            "course.memory_ceiling",
            need_mb=round(check.estimate / _MB),
            rss_mb=round(check.rss / _MB),
            limit_mb=round(check.limit / _MB),
        )
    return check
