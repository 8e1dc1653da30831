"""A page's training button, tracked in MLflow (chapter 13): the "Track in MLflow" toggle beside the button, the
work wrapped by `engine.llmops.tracked_work`, and after the run its id and store (or why nothing was recorded: the
training ran either way).

    spec = Track("ch04", "race", {"steps": 60, "beta": 0.3}, dataset=lambda: toy_preferences(seed), by="run")
    on = track_toggle("ch04_track", "ch04_race", c2)      # one setting per page (and in the URL), one widget per button
    run_job("ch04_race", tracked("ch04_race", work, spec, on))
    tracked_note("ch04_race")

`ui.training.training_demo(..., track=spec)` does all three for the sections built on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from engine.llmops import experiment_name, result_statuses, tracked_work
from ui.errors import translated
from ui.i18n import strings, t
from ui.state import param

SS = st.session_state


@dataclass
class Track:
    """What a page's run records besides its rows (see engine.llmops.tracked_work for each field)."""

    chapter: str  # "ch04": the experiment llmlab-ch04
    name: str  # the run's name ("race", "LoRA SFT")
    params: Mapping[str, Any] = field(default_factory=dict)  # the page's settings
    dataset: Any = None  # a DatasetVersion, several, or a function that makes them when the run starts
    by: str | None = None  # a row field naming the child run ("run" for several runs at once)
    status: Callable[[Any], Any] = result_statuses
    finish: Callable[[Any, Any], None] | None = None  # (run, result): artifacts, final figures
    command: str = ""  # the page file


def _copy(widget: str, setting: str) -> None:
    SS[setting] = bool(SS[widget])


def track_toggle(setting: str, job_key: str, where=None) -> bool:
    """The toggle (default on; `setting` is the page's one value, in the URL as ?<setting>=false). A page with
    several training buttons draws one widget per button, all showing and changing the same setting."""
    param(setting, True)
    widget = f"_{setting}_{job_key}"
    SS[widget] = bool(SS[setting])
    (where or st).toggle(
        t("ch13.track_toggle"), key=widget, help=t("ch13.track_toggle_help"), on_change=_copy, args=(widget, setting)
    )
    return bool(SS[setting])


def _slot(job_key: str) -> str:
    return f"_tracked_{job_key}"


def tracked(job_key: str, work, spec: Track | None, on: bool = True):
    """`work` as a tracked work when `on` (the outcome kept for `tracked_note`), else `work` itself."""
    SS.pop(_slot(job_key), None)
    if spec is None or not on:
        return work

    def done(outcome) -> None:
        SS[_slot(job_key)] = outcome.as_dict()

    return tracked_work(
        work,
        spec.chapter,
        spec.name,
        spec.params,
        dataset=spec.dataset,
        by=spec.by,
        status=spec.status,
        finish=spec.finish,
        on_done=done,
        command=spec.command or None,
    )


def status_label(status: str) -> str:
    key = f"ch13.status_{str(status).lower()}"
    return t(key) if key in strings() else str(status)


def outcome_note(done: dict | None, text_key: str = "ch13.tracked_page") -> None:
    """What a tracked run left: its id, experiment and store, or why tracking was off (the training ran anyway)."""
    if not done:
        return
    if done.get("warning"):
        st.warning(translated(done["warning"], done.get("fmt") or {}) or done["warning"], icon="⚠️")
        return
    values = {"run_id": done["run_id"], "status": status_label(done["status"]), "uri": done["uri"]}
    values["experiment"] = experiment_name(done["chapter"]) if done.get("chapter") else "—"
    children = done.get("children") or {}
    values["children"] = len(children)
    st.success(t(text_key, **values) + (" " + t("ch13.tracked_children", n=len(children)) if children else ""))


def tracked_note(job_key: str) -> None:
    outcome_note(SS.get(_slot(job_key)))


def last_outcome(job_key: str) -> dict | None:
    return SS.get(_slot(job_key))
