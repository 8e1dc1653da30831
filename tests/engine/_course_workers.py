"""Functions run in child processes by the course tests (importable by `spawn`, light imports only)."""

from __future__ import annotations

import os
import time


def write_progress(url: str, name: str, tag: str, count: int, start) -> None:
    """One 'tab' (its own process and store): sign in as `name`, record `count` visits and answers."""
    from engine.course import ProgressStore

    store = ProgressStore(url)
    learner = store.sign_in(name)
    start.wait(60)  # every writer starts together, so their writes interleave
    for i in range(count):
        store.record_visit(learner.id, "16", f"{tag}-{i}")
        store.record_answer(learner.id, "16", f"{tag}-q{i}", choice=i, correct=i % 2 == 0)
    store.close()


def write_then_exit(url: str, name: str) -> None:
    """A whole app session in its own process: sign in, record, and end (the 'restart' is the next process)."""
    from engine.course import ProgressStore

    store = ProgressStore(url)
    me = store.sign_in(name, passphrase="correct horse")
    store.record_visit(me.id, "13", "tracking")
    store.record_visit(me.id, "16", "mamba")
    store.record_answer(me.id, "16", "q1", choice="B", correct=True)
    store.record_run(me.id, "train", {"loss": 0.5, "steps": 20}, chapter="16")
    store.close()


def hold_slot(path: str, slots: int, hold_s: float, log) -> None:
    """Take a slot, note the time inside on `log` (a shared list), hold it for `hold_s`, give it back."""
    from engine.course import AdmissionQueue

    queue = AdmissionQueue(path, slots=slots)
    with queue.admit("train", f"pid {os.getpid()}"):
        log.append(("in", os.getpid()))
        time.sleep(hold_s)
        log.append(("out", os.getpid()))


def ordered_waiter(path: str, index: int, enqueued, log) -> None:
    """Enqueue (then signal), wait for admission, note the order of admission."""
    from engine.course import AdmissionQueue

    queue = AdmissionQueue(path, slots=1)
    ticket = queue.enqueue("train", f"w{index}")
    enqueued.set()
    queue.acquire(ticket, poll_s=0.05)
    log.append(index)
    queue.release(ticket)


def hold_forever(path: str, admitted) -> None:
    """Take the only slot and never give it back (the test kills this process)."""
    from engine.course import AdmissionQueue

    queue = AdmissionQueue(path, slots=1)
    ticket = queue.enqueue("train", "hog")
    queue.acquire(ticket)
    admitted.set()
    time.sleep(600)


def wait_until_stopped(path: str, enqueued, stop, result) -> None:
    """Wait for a slot that never comes; Stop (the `stop` event) ends the wait."""
    from engine.core import Cancelled
    from engine.course import AdmissionQueue

    queue = AdmissionQueue(path, slots=1)
    positions: list[int] = []

    def waiting(position: int) -> None:
        positions.append(position)
        enqueued.set()  # it is in the queue and waiting: the test may press Stop now

    try:
        with queue.admit("train", "waiter", should_stop=stop.is_set, on_wait=waiting, poll_s=0.05):
            result.append("admitted")
    except Cancelled:
        result.append("cancelled")
    result.append(max(positions) if positions else 0)
