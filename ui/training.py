"""Live training runs on a page: start/cancel buttons, a progress bar, curves redrawn as rows arrive.

The pattern (chapters 3 and 4): a run's rows are appended to `st.session_state[key + "_rows"]` as they arrive,
so whatever stops the script — the run finishing, diverging, or a click on Cancel (Streamlit interrupts the
running script for the rerun that click causes) — the steps already finished are still there to draw.
"""

from __future__ import annotations

from collections.abc import Callable

import plotly.express as px
import streamlit as st

from engine.training import CANCELLED, DIVERGED, FINISHED
from ui.i18n import t
from ui.layout import progress_callback


def _rows_key(key: str) -> str:
    return f"{key}_rows"


def stored_rows(key: str) -> list[dict]:
    return st.session_state.get(_rows_key(key), [])


def run_state(key: str) -> str | None:
    """None (never run), "running" (a run was interrupted: treated as cancelled), or the finished status."""
    return st.session_state.get(f"{key}_status")


def _request_cancel(key: str) -> None:
    st.session_state[f"{key}_cancel"] = True


def controls(key: str, label: str) -> bool:
    """The start button and, next to it, Cancel. Returns True when a new run should start now."""
    c1, c2 = st.columns([3, 1])
    start = c1.button(label, key=f"{key}_start", type="primary", width="stretch")
    c2.button(
        t("train.cancel"),
        key=f"{key}_cancel_btn",
        on_click=_request_cancel,
        args=(key,),
        width="stretch",
        help=t("train.cancel_help"),
    )
    if st.session_state.get(f"{key}_status") == "running" and not start:
        # the script that ran it was interrupted (Cancel, or any other click): keep what it finished
        st.session_state[f"{key}_status"] = CANCELLED
        st.session_state[f"{key}_message"] = t("train.interrupted", steps=len(stored_rows(key)))
    return start


def begin(key: str) -> None:
    st.session_state[_rows_key(key)] = []
    st.session_state[f"{key}_status"] = "running"
    st.session_state[f"{key}_message"] = ""
    st.session_state[f"{key}_cancel"] = False
    st.session_state.pop(f"{key}_result", None)


def should_stop(key: str) -> Callable[[], bool]:
    return lambda: bool(st.session_state.get(f"{key}_cancel", False))


def end(key: str, status: str, message: str = "", result=None) -> None:
    st.session_state[f"{key}_status"] = status
    st.session_state[f"{key}_message"] = message
    if result is not None:
        st.session_state[f"{key}_result"] = result


def result(key: str):
    return st.session_state.get(f"{key}_result")


def show_status(key: str) -> None:
    status = run_state(key)
    message = st.session_state.get(f"{key}_message", "")
    if status == DIVERGED:
        st.error(t("train.diverged", message=message), icon="💥")
    elif status == CANCELLED:
        st.warning(t("train.cancelled", message=message), icon="⏹️")
    elif status == FINISHED and message:
        st.info(message)


def progress_bar():
    bar = st.progress(0.0)
    return bar, progress_callback(bar)


class LiveCurves:
    """Draws line charts of `metrics` (one chart each, a line per run) and redraws them every `every` rows."""

    def __init__(
        self,
        key: str,
        metrics: list[tuple[str, str]],
        color: str = "method",
        x: str = "step",
        every: int = 4,
        columns: int = 2,
        kind: str = "train",
    ):
        self.key, self.metrics, self.color, self.x, self.every, self.kind = key, metrics, color, x, every, kind
        cols = st.columns(columns)
        self.slots = [cols[i % columns].empty() for i in range(len(metrics))]
        self._seen = 0
        self._draws = 0

    def __call__(self, row: dict) -> None:
        """The on_row callback: keep the row in the session, redraw now and then."""
        st.session_state.setdefault(_rows_key(self.key), []).append(row)
        self._seen += 1
        if self._seen % self.every == 0:
            self.draw()

    def draw(self, rows: list[dict] | None = None) -> None:
        rows = [r for r in (rows if rows is not None else stored_rows(self.key)) if r.get("kind", "train") == self.kind]
        self._draws += 1
        for i, (slot, (metric, title)) in enumerate(zip(self.slots, self.metrics, strict=True)):
            data = [r for r in rows if isinstance(r.get(metric), int | float) and self.x in r]
            if not data:
                slot.empty()
                continue
            fig = px.line(
                data,
                x=self.x,
                y=metric,
                color=self.color if self.color in data[0] else None,
                title=title,
                markers=len(data) < 40,
            )
            fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend_title_text="")
            slot.plotly_chart(fig, width="stretch", key=f"{self.key}_{self.kind}_{i}_{self._draws}")
