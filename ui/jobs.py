"""The one way a page runs long work: a progress bar, a ⏹ Stop button, finished rows kept, results shared.

    if st.button(t("ch07.kv_run")):
        run_job("kv", lambda progress, on_row, should_stop: kv_bench(..., progress=progress, on_row=on_row))
    job = last_job("kv")           # JobState: rows (partial or all), result, status, message
    show_job_status("kv")          # a warning when it was stopped, an error when training diverged

Why it works: a click on Stop (or on anything else) makes Streamlit rerun the page, which interrupts the running
script. Rows are appended to the session as the engine reports them, so the next run finds them under the job's
key with the status still "running" and calls it stopped. An engine that stops on its own (`Cancelled`, or a
training run that diverged) ends the same way. With `shared_key`, a pure result (same inputs, same output) is
computed once per process and shared by every session (ui.cache.shared).

Heavy work (training, sweeps, index builds) passes `heavy=True`: it first waits for a slot of the machine's queue
(engine.course.AdmissionQueue, shared by every Streamlit process; the bar says "queued: position N", Stop leaves
the queue), then the memory ceiling is checked (`estimate_mb` on top of the process's RSS; a refusal is a
message), then it runs. Light work never queues.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from engine.core import Cancelled, ProgressFn
from ui.cache import shared
from ui.i18n import t

RUNNING, FINISHED, STOPPED, DIVERGED, FAILED = "running", "finished", "cancelled", "diverged", "failed"

# work(progress, on_row, should_stop) -> result
Work = Callable[[ProgressFn, Callable[[Any], None], Callable[[], bool]], Any]


@dataclass
class JobState:
    status: str | None = None  # None: never run here
    rows: list = field(default_factory=list)  # every row reported so far (all of them once finished)
    result: Any = None  # what `work` returned; None unless it finished
    message: str = ""

    @property
    def complete(self) -> bool:
        return self.status == FINISHED


def _slot(key: str) -> str:
    return f"_job_{key}"


def last_job(key: str) -> JobState:
    """The job's state in this session; a run that was interrupted by a rerun is reported as stopped."""
    state: JobState = st.session_state.get(_slot(key)) or JobState()
    if state.status == RUNNING:  # run_job always ends a run it finishes: this one was interrupted by a rerun
        state.status = STOPPED
        state.message = t("job.stopped", rows=len(state.rows))
    return state


def _request_stop(key: str) -> None:
    st.session_state[f"_job_{key}_stop"] = True


def _admitted(work: Work, label: str, estimate_mb: float) -> Work:
    """`work` behind the machine's queue for heavy runs: wait for a slot (position on the bar), check memory, run."""

    def run(progress: ProgressFn, on_row: Callable[[Any], None], should_stop: Callable[[], bool]) -> Any:
        from engine.course import AdmissionQueue, check_memory

        def waiting(position: int) -> None:  # called at every poll: a Stop click (a rerun) interrupts here
            progress(0.0, t("job.queued", position=position))

        with AdmissionQueue().admit("heavy", label, should_stop=should_stop, on_wait=waiting):
            check_memory(int(estimate_mb * 2**20))  # after admission: the runs ahead have given memory back
            return work(progress, on_row, should_stop)

    return run


def run_job(
    key: str,
    work: Work,
    *,
    label: str = "",
    shared_key: tuple | None = None,
    heavy: bool = False,
    estimate_mb: float = 0.0,
) -> JobState:
    """Run `work` now, drawing a progress bar and a Stop button; returns the job's state when it ends.

    `heavy=True`: wait for the machine's queue for heavy runs first, and refuse a run whose `estimate_mb` would take
    the process above the memory ceiling (engine.course.admission)."""
    if heavy:
        work = _admitted(work, label or key, estimate_mb)
    state = JobState(status=RUNNING)
    st.session_state[_slot(key)] = state
    st.session_state[f"_job_{key}_stop"] = False
    bar = st.progress(0.0, text=label or t("job.starting"))
    stop_slot = st.empty()  # the Stop button goes away with the bar when the job ends
    stop_slot.button("⏹ " + t("job.stop"), key=f"_job_{key}_stop_btn", on_click=_request_stop, args=(key,))

    def progress(fraction: float, message: str) -> None:
        bar.progress(max(0.0, min(1.0, float(fraction))), text=f"{label}: {message}" if label else message)

    def should_stop() -> bool:
        return bool(st.session_state.get(f"_job_{key}_stop", False))

    try:
        if shared_key is None:
            state.result = work(progress, state.rows.append, should_stop)
        else:
            # the first session computes it (its rows survive a Stop); every other session gets the result at once
            state.result = shared(shared_key, lambda p: work(p, state.rows.append, lambda: False), progress)
        state.status = FINISHED
    except Cancelled as exc:
        state.status = STOPPED
        state.message = t("job.stopped", rows=len(state.rows))
        partial = getattr(exc, "partial", None)
        if partial is not None and not state.rows:
            state.rows = list(partial)
    except Exception:
        # A refusal (UserError, shown by friendly_errors) or a bug: not a Stop, so not reported as one. (A rerun
        # that interrupts the script is a BaseException: it passes by, and the next run sees RUNNING -> stopped.)
        state.status = FAILED
        raise
    finally:
        bar.empty()
        stop_slot.empty()
        if state.status != RUNNING:  # ended here (not cut off by a rerun): a signed-in learner's run is recorded
            from ui.course import ran

            ran(key, state.status, len(state.rows), label)
    return state


def run_and_keep(
    key: str, work: Work, label: str, store: str, *, heavy: bool = False, estimate_mb: float = 0.0
) -> None:
    """Run `work` as a stoppable job with errors shown as messages; keep its result in the session under `store`.
    `heavy=True`: queue for the machine's heavy-run slots first (see run_job)."""
    from ui.layout import friendly_errors

    with friendly_errors():
        done = run_job(key, work, label=label, heavy=heavy, estimate_mb=estimate_mb)
        if done.complete:
            st.session_state[store] = done.result
    show_job_status(key)


def mark_diverged(key: str, message: str) -> None:
    """For training runs that stop themselves on NaN: keep the finished steps, say why it stopped."""
    state = last_job(key)
    state.status, state.message = DIVERGED, message
    st.session_state[_slot(key)] = state


def show_job_status(key: str) -> None:
    state = last_job(key)
    if state.status == STOPPED:
        st.warning(state.message or t("job.stopped", rows=len(state.rows)), icon="⏹️")
    elif state.status == DIVERGED:
        st.error(t("train.diverged", message=state.message), icon="💥")
