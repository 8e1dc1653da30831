"""The pages' training buttons tracked in MLflow (chapter 13's `ui.tracking` on chapter 4's page, the cheapest real
training): the "Track in MLflow" toggle sits beside each training button, on by default, one setting per page
(and in the URL); a run with it on is in the store with its settings, per-step metrics, the data version and a
child run per method, and the page says which run; with it off nothing is written; a broken store costs a
translated warning, never the training."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.pages.conftest import exceptions
from ui.i18n import strings

PAGE = "pages/04_alignment.py"


@pytest.fixture(scope="module")
def _empty_store(tmp_path_factory) -> Path:
    """MLflow's tables once (creating them takes seconds), copied for each test."""
    from engine.llmops import tracking

    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    tracking.client(f"sqlite:///{db.as_posix()}").search_experiments()
    return db


@pytest.fixture
def store(_empty_store, tmp_path, monkeypatch) -> str:
    from engine.llmops import tracking

    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(_empty_store, db)
    uri = f"sqlite:///{db.as_posix()}"
    monkeypatch.setenv("LLMLAB_TRACKING_URI", uri)
    tracking.reset()
    yield uri
    tracking.reset()


def _clean(at) -> None:
    assert not at.exception, exceptions(at)
    assert not at.error, [e.value for e in at.error]


@pytest.mark.slow  # a toy training with tracking off (10-60 s on the busy machine; the engine tests cover it fast)
def test_toggles_share_one_setting_and_off_writes_nothing(open_page, store):
    from engine.llmops import list_runs

    at = open_page(PAGE, "en")
    _clean(at)
    keys = [f"_ch04_track_{job}" for job in ("ch04_sft", "ch04_rm", "ch04_race", "ch04_chatdpo", "ch04_hack")]
    keys.append("_ch04_track_ch04_sweep")
    assert all(at.toggle(key=k).value is True for k in keys)  # beside every training button, on by default
    assert at.toggle(key=keys[2]).label == strings()["ch13.track_toggle"]["en"]
    at.toggle(key="_ch04_track_ch04_race").set_value(False).run()
    _clean(at)
    assert at.session_state["ch04_track"] is False and all(at.toggle(key=k).value is False for k in keys)
    at.slider(key="hack_steps").set_value(5).run()
    at.button(key="ch04_hack_start").click().run()
    _clean(at)
    assert len(at.session_state["_job_ch04_hack"].rows) == 10 and "_tracked_ch04_hack" not in at.session_state
    assert list_runs("ch04") == []  # tracking off: nothing written


def test_a_link_can_turn_tracking_off(monkeypatch, store):
    from streamlit.testing.v1 import AppTest

    import ui.i18n
    from tests.pages.conftest import ROOT, TIMEOUT

    monkeypatch.setattr(ui.i18n, "DEFAULT_LANG", "ko")
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=TIMEOUT)
    at.query_params["ch04_track"] = "false"
    at.run()
    _clean(at)
    assert at.toggle(key="_ch04_track_ch04_hack").value is False


def test_tracked_race_is_in_the_store(open_page, store):
    from engine.llmops import list_runs, metric_curves, toy_preferences

    at = open_page(PAGE, "ko")
    at.slider(key="race_steps").set_value(5).run()
    at.button(key="ch04_race_start").click().run()
    _clean(at)
    rows = at.session_state["_job_ch04_race"].rows
    assert len(rows) == 10  # PPO and DPO, 5 steps each: the page's rows are whole
    done = at.session_state["_tracked_ch04_race"]
    assert done["run_id"] and not done["warning"] and done["uri"] == store and set(done["children"]) == {"ppo", "dpo"}
    assert any(done["run_id"] in s.value and "llmlab-ch04" in s.value for s in at.success)  # the page says which
    runs = {r.name: r for r in list_runs("ch04")}
    assert set(runs) == {"race", "ppo", "dpo"}
    parent = runs["race"]
    assert parent.params == {"methods": "ppo,dpo", "steps": "5", "seed": "0", "beta": "0.3"}
    assert runs["dpo"].params["run"] == "dpo" and runs["dpo"].parent_run_id == parent.run_id
    digest = toy_preferences(0).digest
    assert all(r.datasets[0].digest == digest and r.datasets[0].name == "toy-preferences" for r in runs.values())
    assert parent.tags["llmlab.dataset.digest"] == digest and parent.tags["llmlab.chapter"] == "ch04"
    (curve,) = metric_curves([runs["dpo"].run_id], ["reward_mean"])
    dpo_rows = [r for r in rows if r["run"] == "dpo"]
    assert curve.steps == [1, 2, 3, 4, 5] and curve.values == pytest.approx([r["reward_mean"] for r in dpo_rows])
    assert all(r.status == "FINISHED" for r in runs.values())


def test_a_broken_store_warns_and_the_training_runs(open_page, tmp_path, monkeypatch):
    from engine.llmops import tracking

    (tmp_path / "garbage.db").write_bytes(bytes(range(256)) * 64)
    monkeypatch.setenv("LLMLAB_TRACKING_URI", f"sqlite:///{(tmp_path / 'garbage.db').as_posix()}")
    tracking.reset()
    at = open_page(PAGE, "ko")
    at.slider(key="hack_steps").set_value(5).run()
    at.button(key="ch04_hack_start").click().run()
    assert not at.exception, exceptions(at)
    assert len(at.session_state["_job_ch04_hack"].rows) == 10  # KL off and on, 5 steps each
    done = at.session_state["_tracked_ch04_hack"]
    assert done["run_id"] is None and done["warning"] == "llmops.tracking.unwritable"
    expected = strings()["error.llmops.tracking.unwritable"]["ko"].split("{")[0].strip()
    assert any(expected in w.value for w in at.warning)


@pytest.mark.slow  # trains chapter 3's tiny BERT twice (Trainer and the plain loop): 20-60 s
def test_chapter3_training_is_tracked_with_both_loops_and_the_data(open_page, store):
    from engine.llmops import list_runs

    at = open_page("pages/03_huggingface.py", "ko")
    at.slider(key="hf_epochs").set_value(1).run()
    at.button(key="ch03_loops_start").click().run()
    _clean(at)
    done = at.session_state["_tracked_ch03_loops"]
    assert done["run_id"] and not done["warning"] and set(done["children"]) == {"Trainer", "PyTorch loop"}
    runs = {r.name: r for r in list_runs("ch03")}
    assert set(runs) == {"hf-train", "Trainer", "PyTorch loop"}
    parent = runs["hf-train"]
    assert parent.params["epochs"] == "1" and parent.params["min_per_class"] == "15"
    contexts = [(d.name, d.context) for d in parent.datasets]
    assert contexts == [("constitution-chapters", "train"), ("constitution-chapters", "eval")]
    assert {"accuracy_trainer", "accuracy_loop", "max_loss_gap"} <= set(parent.metrics)
    for label in ("Trainer", "PyTorch loop"):
        assert runs[label].status == "FINISHED" and "loss" in runs[label].metrics
