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


def test_ch4_opens_with_a_labelled_shipped_result_in_every_section():
    at = app("04_alignment.py")
    at.run()
    assert not at.exception
    shipped = [c.value for c in at.caption if c.value.startswith("📦")]
    # sft, reward model, toy best-of-n, race, hacking, β: each labelled with the command that made it
    for section in ("sft", "reward", "race", "hacking", "beta"):
        assert any(f"align-precompute --only {section}" in c for c in shipped), section
    assert len(at.get("plotly_chart")) >= 12  # loss, RM loss, toy best-of-n, race ×5, hacking ×2, β ×2 + scatter
    tables = [f.value for f in at.dataframe]
    assert any("학습 후" in t.columns for t in tables)  # SFT answers before/after
    assert sum("심판 (마지막 1/5)" in t.columns for t in tables) == 2  # race and hacking summaries
    assert all("\ufffd" not in str(t.to_dict()) for t in tables)


def test_ch4_own_run_replaces_the_shipped_result():
    from ui.jobs import STOPPED, JobState

    at = app("04_alignment.py")
    at.session_state["_job_ch04_race"] = JobState(status=STOPPED)
    at.run()
    assert not any("--only race" in c.value for c in at.caption)  # no shipped label once the learner ran it


def test_ch3_opens_with_the_shipped_run_and_its_predictions():
    at = app("03_huggingface.py")
    at.run()
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert any("hf-train --save-precomputed" in c and c.startswith("📦") for c in captions)
    assert any("0.00e+00" in c for c in captions)  # the shipped run: the two loops computed the same losses
    tables = [f.value for f in at.dataframe]
    assert any("예측 (확률)" in t.columns for t in tables)  # the pipeline section is not empty


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


def test_shipped_examples_are_the_pages_defaults():
    """The shipped predictions and best-of-n answers are for the texts the pages open with, in both languages."""
    from engine.alignment.shipped import BON_PROMPTS
    from engine.training.classifier_report import EXAMPLE_LINES
    from ui.i18n import strings

    s = strings()
    for lang in ("ko", "en"):
        assert s["ch03.default_text"][lang].splitlines() == list(EXAMPLE_LINES)
    assert (s["ch04.bon_default"]["ko"], s["ch04.bon_default"]["en"]) == BON_PROMPTS
