"""engine.course.admission: the machine's queue for heavy runs, with real processes, and the memory ceiling.

Each test has its own queue file in a temp folder; each child process makes its own AdmissionQueue, as separate
Streamlit servers would. No timed asserts: the tests wait on events and check orders and counts.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal

import pytest

from engine.core import Cancelled
from engine.course import AdmissionQueue, MemoryCeiling, QueueUnavailable, check_memory, current_rss, memory_ceiling
from tests.engine import _course_workers as workers

# separate processes, each with its own store or queue object, as two Streamlit servers would have; fork (where the
# platform has it) because a spawned child re-imports SQLAlchemy and pytest: seconds each on a loaded 2-core machine
SPAWN = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


@pytest.fixture
def qpath(tmp_path):
    return str(tmp_path / "admission.sqlite")


def test_fifo_positions_in_one_process(qpath):
    q = AdmissionQueue(qpath, slots=1)
    first = q.enqueue("train", "first")
    q.acquire(first)
    waiting = [q.enqueue("sweep", f"w{i}") for i in range(3)]
    assert [q.position(t) for t in [first, *waiting]] == [0, 1, 2, 3]
    assert not q.try_acquire(waiting[1])  # not its turn even after the slot frees up: w0 is ahead
    q.release(first)
    assert not q.try_acquire(waiting[1])
    assert q.try_acquire(waiting[0])
    assert [q.position(t) for t in waiting] == [0, 1, 2]
    state = q.state()
    assert [e.label for e in state.holders] == ["w0"] and [e.label for e in state.waiting] == ["w1", "w2"]
    for t in waiting:
        q.release(t)
    q.release(waiting[0])  # twice: harmless
    assert q.state().holders == [] and q.state().waiting == []


def test_two_slots_admit_two(qpath):
    q = AdmissionQueue(qpath, slots=2)
    a, b, c = (q.enqueue("train") for _ in range(3))
    assert q.try_acquire(a) and q.try_acquire(b) and not q.try_acquire(c)
    assert q.position(c) == 1
    q.release(b)
    assert q.try_acquire(c)


def test_at_most_slots_holders_across_processes(qpath):
    slots = 2
    log = SPAWN.Manager().list()
    procs = [SPAWN.Process(target=workers.hold_slot, args=(qpath, slots, 0.3, log)) for _ in range(5)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 5
    inside, most = 0, 0
    for event, _pid in list(log):  # the log is in the order events happened (appends go through one manager)
        inside += 1 if event == "in" else -1
        most = max(most, inside)
    assert len(log) == 10 and inside == 0
    assert 1 <= most <= slots
    assert AdmissionQueue(qpath, slots=slots).state().holders == []


def test_admission_order_is_arrival_order_across_processes(qpath):
    q = AdmissionQueue(qpath, slots=1)
    gate = q.enqueue("train", "gate")
    q.acquire(gate)  # hold the slot while the others line up
    log = SPAWN.Manager().list()
    procs = []
    for i in range(4):
        enqueued = SPAWN.Event()
        p = SPAWN.Process(target=workers.ordered_waiter, args=(qpath, i, enqueued, log))
        p.start()
        assert enqueued.wait(60)  # the next one enqueues only after this one: a known arrival order
        procs.append(p)
    assert [e.label for e in q.state().waiting] == ["w0", "w1", "w2", "w3"]
    q.release(gate)
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 4
    assert list(log) == [0, 1, 2, 3]


def test_a_killed_holder_is_reaped(qpath):
    admitted = SPAWN.Event()
    hog = SPAWN.Process(target=workers.hold_forever, args=(qpath, admitted))
    hog.start()
    try:
        assert admitted.wait(60)
        q = AdmissionQueue(qpath, slots=1)
        mine = q.enqueue("train", "me")
        assert q.position(mine) == 1 and not q.try_acquire(mine)
        os.kill(hog.pid, signal.SIGKILL)  # no finally, no release: only the reaper can free the slot
        hog.join(30)
        q.acquire(mine, poll_s=0.05)
        assert q.position(mine) == 0
        assert [e.label for e in q.state().holders] == ["me"]
        q.release(mine)
    finally:
        if hog.is_alive():
            hog.kill()


def test_reaped_before_the_parent_collects_the_zombie(qpath):
    admitted = SPAWN.Event()
    hog = SPAWN.Process(target=workers.hold_forever, args=(qpath, admitted))
    hog.start()
    assert admitted.wait(60)
    os.kill(hog.pid, signal.SIGKILL)
    q = AdmissionQueue(qpath, slots=1)
    mine = q.enqueue("train", "me")
    q.acquire(mine, poll_s=0.05)  # the dead hog may still be a zombie (not joined yet): counted as dead
    q.release(mine)
    hog.join(30)


def test_stop_while_waiting_leaves_the_queue_clean(qpath):
    q = AdmissionQueue(qpath, slots=1)
    holder = q.enqueue("train", "holder")
    q.acquire(holder)
    enqueued, stop = SPAWN.Event(), SPAWN.Event()
    result = SPAWN.Manager().list()
    waiter = SPAWN.Process(target=workers.wait_until_stopped, args=(qpath, enqueued, stop, result))
    waiter.start()
    assert enqueued.wait(60)
    assert [e.label for e in q.state().waiting] == ["waiter"]
    stop.set()
    waiter.join(60)
    assert waiter.exitcode == 0
    assert list(result) == ["cancelled", 1]  # it waited at position 1, then stopped
    state = q.state()
    assert state.waiting == [] and [e.label for e in state.holders] == ["holder"]
    q.release(holder)


def test_stop_in_process_raises_cancelled_and_removes_the_ticket(qpath):
    q = AdmissionQueue(qpath, slots=1)
    holder = q.enqueue("train")
    q.acquire(holder)
    seen: list[int] = []
    with pytest.raises(Cancelled), q.admit("train", "x", should_stop=lambda: bool(seen), on_wait=seen.append):
        pass
    assert seen == [1]
    assert q.state().waiting == []


def test_an_interrupted_wait_removes_the_ticket(qpath):
    """A Streamlit rerun interrupts the script with an exception raised from a progress call: no ticket left."""
    q = AdmissionQueue(qpath, slots=1)
    q.acquire(q.enqueue("train"))

    class Rerun(BaseException):
        pass

    def on_wait(_position: int) -> None:
        raise Rerun

    with pytest.raises(Rerun):
        q.acquire(q.enqueue("train", "interrupted"), on_wait=on_wait)
    assert q.state().waiting == []


def test_the_slot_is_released_when_the_run_fails(qpath):
    q = AdmissionQueue(qpath, slots=1)
    with pytest.raises(ZeroDivisionError), q.admit("train"):
        1 / 0  # noqa: B018
    assert q.state().holders == []


def test_slots_come_from_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    monkeypatch.setenv("LLMLAB_HEAVY_SLOTS", "3")
    q = AdmissionQueue()
    assert q.slots == 3 and q.path == tmp_path / "course" / "admission.sqlite"
    monkeypatch.delenv("LLMLAB_HEAVY_SLOTS")
    assert AdmissionQueue().slots == 1


def test_an_unusable_queue_file_is_a_typed_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(QueueUnavailable) as err:
        AdmissionQueue(blocker / "q.sqlite").enqueue("train")
    assert err.value.code == "course.queue_unavailable"


# ---------------------------------------------------------------------------------------------------- memory


def test_memory_ceiling_refuses_a_run_that_would_pass_it():
    rss = current_rss()
    assert rss > 10 * 2**20  # a Python process with pytest loaded
    ok = check_memory(2**20, limit=rss + 100 * 2**20)
    assert ok.headroom == ok.limit - ok.rss - 2**20 and ok.headroom > 0
    with pytest.raises(MemoryCeiling) as err:
        check_memory(200 * 2**20, limit=rss + 100 * 2**20)
    assert err.value.code == "course.memory_ceiling"
    assert err.value.fmt["need_mb"] == 200 and err.value.fmt["limit_mb"] >= err.value.fmt["rss_mb"]


def test_memory_ceiling_setting(monkeypatch):
    monkeypatch.setenv("LLMLAB_MAX_RSS_MB", "1")
    assert memory_ceiling() == 2**20
    with pytest.raises(MemoryCeiling):
        check_memory(0)  # this process alone is above 1 MB
    monkeypatch.delenv("LLMLAB_MAX_RSS_MB")
    import psutil

    assert memory_ceiling() == int(0.8 * psutil.virtual_memory().total)


# ---------------------------------------------------------------------------------------------------- containers


def _foreign(qpath: str, beat_age_s: float) -> None:
    """A ticket written by a process of another container (another PID namespace), last heard of `beat_age_s` ago."""
    import sqlite3
    import time

    with sqlite3.connect(qpath) as conn:
        conn.execute(
            "INSERT INTO tickets_v2 (pid, pid_started, ns, beat, kind, label, state, enqueued_at)"
            " VALUES (1, 1.0, 'pid:[1]@other-container', ?, 'train', 'foreign', 'holding', ?)",
            (time.time() - beat_age_s, time.time()),
        )


def test_another_containers_holder_is_kept_while_it_beats(qpath):
    q = AdmissionQueue(qpath, slots=1, lease_s=60)
    q.reap()  # creates the file
    _foreign(qpath, beat_age_s=1)  # pid 1 exists here too, but it is not that container's process: not checked
    mine = q.enqueue("train", "me")
    assert not q.try_acquire(mine) and [e.label for e in q.state().holders] == ["foreign"]
    q.release(mine)


def test_another_containers_silent_holder_is_reaped_after_the_lease(qpath):
    q = AdmissionQueue(qpath, slots=1, lease_s=60)
    q.reap()
    _foreign(qpath, beat_age_s=61)
    mine = q.enqueue("train", "me")
    assert q.try_acquire(mine) and [e.label for e in q.state().holders] == ["me"]
    q.release(mine)


def test_a_holder_beats_while_it_runs(qpath):
    import sqlite3
    import threading

    q = AdmissionQueue(qpath, slots=1, lease_s=0.2)  # beats every 0.05 s
    with q.admit("train", "long run") as ticket:

        def beat_now() -> float:
            with sqlite3.connect(qpath) as conn:
                return conn.execute("SELECT beat FROM tickets_v2 WHERE id = ?", (ticket.id,)).fetchone()[0]

        first, moved = beat_now(), threading.Event()
        for _ in range(400):  # wait (without a timed assert) until the heartbeat thread has written
            if beat_now() > first:
                moved.set()
                break
            threading.Event().wait(0.05)
        assert moved.is_set()
    assert q.state().holders == []
