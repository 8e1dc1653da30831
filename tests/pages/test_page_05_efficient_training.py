"""Chapter 5 page through Streamlit's AppTest: a light default load, then the buttons on the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "05_efficient_training.py")


def _app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=600)
    at.run()
    assert not at.exception, at.exception
    return at


SHIPPED = "📦"  # ui.layout.precomputed_note: a result shipped with the app, labelled as such


def _shipped_notes(at) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith(SHIPPED)]


def test_default_load_is_light_and_complete():
    at = _app()
    assert {b.key for b in at.button} >= {"mem_measure", "acc_run", "ck_run", "lora_merge", "q_load", "tr_run"}
    # nothing run yet, yet no section is empty: the six run-only demos show their shipped results, labelled
    notes = _shipped_notes(at)
    assert len(notes) == 6 and all("python -m engine memory-demo" in n for n in notes)
    # estimate, shipped measurement, shipped checkpointing, ZeRO, shipped training, the book's T4 table
    assert len(at.dataframe) == 6
    headers = [h.value for h in at.header]
    assert len(headers) == 6
    zero = next(d.value for d in at.dataframe if "ZeRO-1 (P_os)" in d.value.iloc[:, 0].tolist())
    assert [round(x, 1) for x in zero.iloc[:, 1]] == [120.0, 31.4, 16.6, 1.9]
    book = at.dataframe[-1].value
    assert book.iloc[:, 3].tolist().count("—") == 3 and not book.isna().any().any()  # with the reason in a caption


def test_absurd_batch_is_refused_with_the_estimate():
    at = _app()
    at.selectbox(key="mem_model").set_value("tiny")
    at.number_input(key="mem_batch").set_value(4096)  # beyond the engine's bound: a message, no traceback
    at.run()
    assert not at.exception and any("1024" in w.value and "4096" in w.value for w in at.warning)  # limit and value
    at.number_input(key="mem_batch").set_value(1024)  # allowed, but ~200 GB of activations at 1024 tokens
    at.select_slider(key="mem_seq").set_value(1024)
    at.run()
    assert not at.exception
    assert "⛔" in at.dataframe[0].value.to_string()
    at.button(key="mem_measure").click()
    at.run()
    assert not at.exception
    refused = [w.value for w in at.warning if "GiB" in w.value and "LoRA" in w.value]  # the page is Korean
    assert len(refused) == 3 and all("GiB" in w for w in refused)


def test_accumulation_button():
    at = _app()
    at.button(key="acc_run").click()
    at.run()
    assert not at.exception
    assert len(_shipped_notes(at)) == 5  # the learner's own run replaced the shipped one, and is not labelled
    diff = next(m for m in at.metric if m.value.startswith(("0.00e", "1.", "2.", "3.", "4.", "5.", "6.", "7.", "8.")))
    assert float(diff.value) < 1e-6


@pytest.mark.slow
def test_measure_and_train_on_tiny():
    at = _app()
    at.selectbox(key="mem_model").set_value("tiny")
    at.select_slider(key="mem_seq").set_value(16)
    at.number_input(key="mem_batch").set_value(1)
    at.button(key="mem_measure").click()
    at.run()
    assert not at.exception and not at.warning
    table = at.dataframe[1].value
    assert len(table) == 12  # 3 modes x 4 components
    assert (table.iloc[:, -1].dropna() == 1.0).all()  # estimated / measured
    at.select_slider(key="tr_lr").set_value(1e4)
    at.slider(key="tr_steps").set_value(6)
    at.button(key="tr_run").click()
    at.run()
    assert not at.exception
    assert any("NaN" in e.value for e in at.error)  # full fine-tuning diverges and says so
