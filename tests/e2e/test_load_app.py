"""engine.course.load_app against the real app: simulated learners speak the app's websocket protocol."""

from __future__ import annotations

import pytest

from engine.course.load_app import LearnerPath, LoadTestError, StreamlitSession, run_load

pytestmark = pytest.mark.e2e


def test_two_learners_walk_the_path_without_errors(quiet_app):
    report = run_load(quiet_app, sessions=2, minutes=0.25, heavy_sessions=0, think_s=0.1, ramp_s=0.5)
    by_action = {a.action: a for a in report.actions}
    assert {"connect", "open_chapter", "move_slider", "light_demo", "answer_quiz"} <= set(by_action)
    assert report.errors == 0, report.error_examples
    assert all(a.count >= 1 and a.p50_s is not None and a.p50_s <= a.p95_s for a in report.actions)
    assert report.max_rss_bytes and report.max_rss_bytes > 50 * 2**20  # the app's process tree, sampled
    lines = report.lines()
    assert lines[-1]["sessions"] == 2 and set(lines[0]) == {"action", "count", "p50_s", "p95_s", "errors"}


def test_a_path_with_a_missing_page_or_widget_is_an_error_not_a_crash(quiet_app):
    report = run_load(
        quiet_app,
        sessions=1,
        minutes=0.05,
        heavy_sessions=0,
        think_s=0.0,
        ramp_s=0.0,
        path=LearnerPath(page="no_such_page", slider="no_such_slider"),
    )
    assert report.errors >= 1
    assert any("no page 'no_such_page'" in e for e in report.error_examples)


@pytest.mark.parametrize("url", ["localhost:8501", "ftp://x", ""])
def test_bad_url_is_a_typed_error(url):
    with pytest.raises(LoadTestError):
        StreamlitSession(url)


def test_absurd_sizes_are_refused():
    with pytest.raises(LoadTestError):
        run_load("http://127.0.0.1:1", sessions=0)
    with pytest.raises(LoadTestError):
        run_load("http://127.0.0.1:1", sessions=2, minutes=10_000)
