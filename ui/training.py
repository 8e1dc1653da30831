"""Drawing helpers for live training runs: curves redrawn as rows arrive, and the glue to ui.jobs.run_job.

Starting, stopping and keeping partial rows is ui.jobs' job (`run_job`, `last_job`, `show_job_status`); this module
only draws. `run_training` is run_job for an engine run that ends itself (a RunLog-like result whose status is
finished, cancelled or diverged): a cancelled run is reported as a Stop, a diverged one through `mark_diverged`.
`training_demo` is a whole section's run: button, curves, and until the learner runs it, the result shipped in
assets/precomputed (labelled as such), so a section never opens empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.express as px
import streamlit as st

from engine.core import Cancelled, load_precomputed
from engine.training import CANCELLED, DIVERGED
from ui import charts
from ui.jobs import JobState, last_job, mark_diverged, run_job, show_job_status
from ui.layout import friendly_errors, precomputed_note
from ui.tracking import Track, track_toggle, tracked, tracked_note

# train(progress, on_row, should_stop) -> result; status_of(result) -> (status, message)
Train = Callable[[Any, Callable[[dict], None], Callable[[], bool]], Any]


def _log_status(result) -> tuple[str, str]:
    """A RunLog's (status, message), or that of the RunLog in `result.log` (SFTResult, RMResult)."""
    log = getattr(result, "log", result)
    return log.status, log.message


def run_training(
    key: str,
    train: Train,
    curves: tuple[LiveCurves, ...] = (),
    status_of: Callable[[Any], tuple[str, str]] = _log_status,
    label: str = "",
    heavy: bool = True,
) -> JobState:
    """run_job for a training run: every row also goes to `curves`; the run's own end status is honoured.
    A training run is heavy: it waits for the machine's queue first (`heavy=True`, ui.jobs.run_job)."""

    def work(progress, on_row, should_stop):
        def row(r: dict) -> None:
            on_row(r)
            for c in curves:
                c(r)

        result = train(progress, row, should_stop)
        status, message = status_of(result)
        if status == CANCELLED:
            raise Cancelled(message)
        return result

    job = run_job(key, work, label=label, heavy=heavy)
    if job.complete:
        status, message = status_of(job.result)
        if status == DIVERGED:
            mark_diverged(key, message)
    return last_job(key)


def shipped(key: str, name: str, started: bool, slot=None):
    """The shipped result `name` (assets/precomputed) to show while the learner has not run job `key` here, labelled
    as such in `slot` (placed above the run button: the label says "run it yourself with the button below");
    None once they start a run of their own, or when none is shipped."""
    if started or last_job(key).status is not None:
        return None
    pre = load_precomputed(name)
    if pre is not None:
        with slot if slot is not None else st.container():
            precomputed_note(pre)
    return pre


def training_demo(
    key: str,
    label: str,
    shipped_name: str | None,
    make_curves: Callable[[], LiveCurves | tuple[LiveCurves, ...]],
    train: Train,
    status_of: Callable[[Any], tuple[str, str]] = _log_status,
    track: Track | None = None,
):
    """One section's training demo: the run button (with the shipped result's label above it), live curves, the run
    when the button is clicked, and the curves of the learner's run, or of the shipped one while there is none.

    `make_curves` is called after the button, so the charts sit under it. Returns (JobState, Precomputed or None):
    the section draws its tables from the job's result, or from the shipped data. With `track`, a "Track in MLflow"
    toggle sits beside the button (the page's one setting, `<chapter>_track`) and the run is logged to MLflow
    (ui.tracking); its run id, or why nothing was recorded, shows under the curves.
    """
    note = st.empty()
    on = False
    if track is None:
        start = st.button(label, key=f"{key}_start", type="primary", width="stretch")
    else:
        left, right = st.columns([4, 1], vertical_alignment="center")
        start = left.button(label, key=f"{key}_start", type="primary", width="stretch")
        on = track_toggle(f"{track.chapter}_track", key, right)
    pre = shipped(key, shipped_name, start, note) if shipped_name else None
    made = make_curves()
    curves = made if isinstance(made, tuple) else (made,)
    if start:
        with friendly_errors():
            run_training(key, tracked(key, train, track, on) if track is not None else train, curves, status_of)
    job = last_job(key)
    for c in curves:
        c.draw(pre.data["rows"] if pre is not None else job.rows)
    show_job_status(key)
    if track is not None:
        tracked_note(key)
    return job, pre


class LiveCurves:
    """Draws line charts of `metrics` (one chart each, a line per run) and redraws them every `every` rows.

    `labels` names the axes ({"step": "단계", "loss": "손실"}: the x column and each metric); `names` turns a run's
    engine name ("ppo", "PyTorch loop") into what the legend shows.
    """

    def __init__(
        self,
        key: str,
        metrics: list[tuple[str, str]],
        color: str = "method",
        x: str = "step",
        every: int = 4,
        columns: int = 2,
        kind: str = "train",
        labels: dict[str, str] | None = None,
        names: Callable[[str], str] | None = None,
    ):
        self.key, self.metrics, self.color, self.x, self.every, self.kind = key, metrics, color, x, every, kind
        self.labels, self.names = labels or {}, names
        cols = st.columns(columns)
        self.slots = [cols[i % columns].empty() for i in range(len(metrics))]
        self.rows: list[dict] = []  # the rows seen during this script run (the job keeps them across reruns)
        self._seen = 0
        self._draws = 0

    def __call__(self, row: dict) -> None:
        """The on_row callback: remember the row, redraw now and then."""
        self.rows.append(row)
        if row.get("kind", "train") == self.kind:
            self._seen += 1
            if self._seen % self.every == 0:
                self.draw(self.rows)

    def draw(self, rows: list[dict] | None = None) -> None:
        rows = [r for r in (rows if rows is not None else self.rows) if r.get("kind", "train") == self.kind]
        self._draws += 1
        for i, (slot, (metric, title)) in enumerate(zip(self.slots, self.metrics, strict=True)):
            data = [r for r in rows if isinstance(r.get(metric), int | float) and self.x in r]
            if not data:
                slot.empty()
                continue
            if self.names is not None and self.color in data[0]:
                data = [{**r, self.color: self.names(str(r[self.color]))} for r in data]
            fig = px.line(
                data,
                x=self.x,
                y=metric,
                color=self.color if self.color in data[0] else None,
                title=title,
                markers=len(data) < 40,
                labels=self.labels,
            )
            fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend_title_text="")
            charts.show(slot, fig, width="stretch", key=f"{self.key}_{self.kind}_{i}_{self._draws}")
