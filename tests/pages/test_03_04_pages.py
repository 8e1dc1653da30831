"""Chapters 3 and 4 pages under AppTest: the default load is light and error-free; runs keep partial results."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def app(page: str):
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "pages" / page), default_timeout=600)


@pytest.mark.parametrize("page", ["03_huggingface.py", "04_alignment.py"])
def test_default_load_has_no_exception(page):
    at = app(page)
    at.run()
    assert not at.exception
    assert not at.error


def test_ch4_interrupted_run_is_shown_as_cancelled_with_its_rows():
    at = app("04_alignment.py")
    rows = [
        {
            "method": "ppo",
            "step": s,
            "reward_mean": 1.0,
            "kl": 0.1,
            "loss": 0.0,
            "seconds": 0.1,
            "judge_mean": 0.5,
            "kind": "train",
        }
        for s in (1, 2, 3)
    ]
    from ui.jobs import RUNNING, JobState

    # the script that ran it was interrupted by a click (Stop, or anything else): ui.jobs kept its rows
    at.session_state["_job_ch04_race"] = JobState(status=RUNNING, rows=list(rows))
    at.run()
    assert not at.exception
    assert any("중지" in w.value and "3" in w.value for w in at.warning)
    assert at.session_state["_job_ch04_race"].rows == rows


def test_ch4_malformed_preferences_give_a_message():
    at = app("04_alignment.py")
    at.run()
    at.text_area(key="ch04_prefs").set_value('{"prompt": "a", "chosen": "b"}\n{oops')
    at.run()
    assert not at.exception
    assert any("line 2" in w.value or "rejected" in w.value for w in at.warning)


@pytest.mark.slow
def test_ch3_train_classify_and_round_trip():
    at = app("03_huggingface.py")
    at.run()
    at.slider(key="hf_epochs").set_value(1)
    at.button(key="ch03_loops_start").click()
    at.run()
    assert not at.exception
    assert any("0.00e+00" in c.value for c in at.caption)  # the two loops' losses are identical
    at.button(key="hf_roundtrip").click()
    at.run()
    assert any("save_pretrained" in s.value for s in at.success)


@pytest.mark.slow
def test_ch4_race_and_hacking_runs():
    at = app("04_alignment.py")
    at.run()
    at.slider(key="race_steps").set_value(5)
    at.button(key="ch04_race_start").click()
    at.run()
    assert not at.exception and len(at.session_state["_job_ch04_race"].rows) == 10
    at.slider(key="hack_steps").set_value(5)
    at.button(key="ch04_hack_start").click()
    at.run()
    assert not at.exception and len(at.session_state["_job_ch04_hack"].rows) == 10
