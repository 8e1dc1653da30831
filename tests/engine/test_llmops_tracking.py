"""engine.llmops.tracking: training runs into a real MLflow store (SQLite under tmp_path) through the training
commands' --track, read back with MLflow's own client and with the comparison functions; a broken store costs a
warning, never the training."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import socket
from pathlib import Path

import pytest

from engine.core import InputError, UserError
from engine.llmops import tracking


@pytest.fixture(autouse=True)
def _fresh():
    tracking.reset()
    yield
    tracking.reset()


@pytest.fixture(scope="module")
def _empty_store(tmp_path_factory) -> Path:
    """MLflow's tables once (creating them takes 2-5 s), copied for each test."""
    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    tracking.client(f"sqlite:///{db.as_posix()}").search_experiments()
    return db


@pytest.fixture
def store(_empty_store, tmp_path, monkeypatch) -> str:
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(_empty_store, db)
    uri = f"sqlite:///{db.as_posix()}"
    monkeypatch.setenv("LLMLAB_TRACKING_URI", uri)
    return uri


def _mlflow(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _cli(capsys, *argv: str) -> list[dict]:
    from engine.__main__ import main

    assert main(list(argv)) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


# --- dataset versions ---------------------------------------------------------------------------------------------


def test_dataset_version_is_a_content_hash():
    rows = [("CREATE TABLE t(a)", "몇 개?", "SELECT count(*) FROM t"), {"b": 2, "a": [1, 2]}]
    v = tracking.dataset_version("pairs", rows, source="test")
    lines = ['["CREATE TABLE t(a)","몇 개?","SELECT count(*) FROM t"]', '{"a":[1,2],"b":2}']
    expected = hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()[:16]
    assert (v.name, v.digest, v.rows, v.source, v.context) == ("pairs", expected, 2, "test", "train")
    assert v.label == f"pairs@{expected} (2 rows)"
    assert tracking.dataset_version("pairs", rows[::-1]).digest != v.digest  # order is part of the version
    import torch

    assert tracking.dataset_version("ids", torch.tensor([[1, 2], [3, 4]])).digest == (
        tracking.dataset_version("ids", [[1, 2], [3, 4]]).digest
    )


# --- a real training run through its command ---------------------------------------------------------------------


@pytest.mark.slow  # loads and trains the tiny Llama (20-60 s on 2 busy cores)
def test_finetune_track_logs_params_steps_data_and_adapter(store, capsys):
    lines = _cli(capsys, "finetune", "--model", "tiny", "--mode", "lora", "--steps", "3", "--json", "--track")
    assert [line["step"] for line in lines] == [1, 2, 3]
    run_id = lines[0]["run_id"]
    assert all(line["run_id"] == run_id and line["tracking_uri"] == store for line in lines)

    client = _mlflow(store)  # MLflow's own client reads what the command wrote
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "finetune lora"
    assert client.get_experiment(run.info.experiment_id).name == "llmlab-ch05"
    assert run.data.params["mode"] == "lora" and run.data.params["steps"] == "3" and run.data.params["lora_r"] == "8"
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "loss"))
    assert history == [(line["step"], line["loss"]) for line in lines]  # every step, exactly the printed loss
    (ds,) = run.inputs.dataset_inputs
    from engine.training.finetune import dummy_batch

    batch = dummy_batch(49152, 2, 64, seed=0)
    assert ds.dataset.digest == tracking.dataset_version("dummy-batch", batch["input_ids"]).digest
    assert json.loads(ds.dataset.profile) == {"num_rows": 2}
    assert run.data.tags["llmlab.dataset.digest"] == ds.dataset.digest
    names = {a.path for a in client.list_artifacts(run_id, "adapter")}
    assert {"adapter/adapter_config.json", "adapter/adapter_model.safetensors"} <= names
    # artifacts beside the database, never in the working directory
    location = client.get_experiment(run.info.experiment_id).artifact_location
    assert location == (Path(store.removeprefix("sqlite:///")).parent / "artifacts" / "llmlab-ch05").as_uri()

    (summary,) = tracking.list_runs("ch05")
    assert summary.run_id == run_id and summary.status == "FINISHED" and summary.metrics["loss"] == lines[-1]["loss"]
    assert summary.datasets[0].name == "dummy-batch" and summary.datasets[0].rows == 2
    (listed,) = _cli(capsys, "runs", "--chapter", "ch05", "--json")
    assert listed["run_id"] == run_id and listed["tracking_uri"] == store


@pytest.mark.slow  # the same command without --track: output and store untouched
def test_finetune_without_track_is_unchanged(store, capsys):
    lines = _cli(capsys, "finetune", "--model", "tiny", "--mode", "lora", "--steps", "2", "--json")
    assert [sorted(line) for line in lines] == [["loss", "mode", "seconds", "step"]] * 2
    assert tracking.list_runs() == []  # nothing written (the copied store holds only MLflow's tables)


@pytest.mark.slow  # builds chapter 4's toy setup (an SFT reference) and races PPO and DPO
def test_align_track_one_child_run_per_method(store, capsys):
    lines = _cli(capsys, "align", "--steps", "3", "--json", "--track")
    by_method = {}
    for line in lines:
        by_method.setdefault(line["method"], set()).add(line["run_id"])
    assert set(by_method) == {"dpo", "ppo"} and all(len(ids) == 1 for ids in by_method.values())
    runs = {r.name: r for r in tracking.list_runs("ch04")}
    assert set(runs) == {"align race", "dpo", "ppo"}
    parent = runs["align race"]
    for method in ("dpo", "ppo"):
        child = runs[method]
        assert child.run_id == next(iter(by_method[method])) and child.parent_run_id == parent.run_id
        assert child.params["run"] == method and child.params["steps"] == "3" and child.status == "FINISHED"
        assert child.datasets[0].name == "toy-preferences" and child.datasets[0].rows > 0
        printed = [line["reward_mean"] for line in lines if line["method"] == method]
        (curve,) = tracking.metric_curves([child.run_id], ["reward_mean"])
        assert curve.steps == [1, 2, 3] and [round(v, 6) for v in curve.values] == printed
    assert parent.datasets[0].digest == runs["dpo"].datasets[0].digest


# --- the API on a fast loop ---------------------------------------------------------------------------------------


def _loop(on_row, n: int = 4, start: float = 1.0) -> list[dict]:
    """A plain loop's rows through a Monitor, as every training loop of the app reports them."""
    from engine.training.callbacks import Monitor

    monitor = Monitor(n, on_row=on_row, label="loop")
    for step in range(1, n + 1):
        monitor.record({"step": step, "loss": start / step})
    monitor.record({"step": n, "accuracy": 0.75}, counts_as_step=False)
    return monitor.finish().rows


def test_rows_params_and_comparison(store):
    ids = []
    for lr, start in ((0.1, 2.0), (0.01, 1.0)):
        with tracking.track_run("ch03", f"lr {lr}", {"lr": lr, "epochs": 3, "note": None}) as run:
            _loop(run.tee(), start=start)
            run.log_dict({"lr": lr}, "summary.json")
        assert run.warning is None and run.fields() == {"run_id": run.run_id, "tracking_uri": store}
        ids.append(run.run_id)

    runs = tracking.list_runs("ch03")
    assert [r.name for r in runs] == ["lr 0.01", "lr 0.1"]  # newest first
    assert runs[1].params == {"lr": "0.1", "epochs": "3", "note": "null"}
    assert runs[1].metrics == {"loss": 0.5, "eval_accuracy": 0.75}  # the last step's value; eval rows prefixed

    curves = tracking.metric_curves(ids, ["loss"])
    assert [(c.run_name, c.steps, c.values) for c in curves] == [
        ("lr 0.1", [1, 2, 3, 4], [2.0, 1.0, 2 / 3, 0.5]),
        ("lr 0.01", [1, 2, 3, 4], [1.0, 0.5, 1 / 3, 0.25]),
    ]
    table = tracking.params_table(ids, "loss")
    assert table.varying == ["lr"] and table.constant == {"epochs": "3", "note": "null"}
    assert [(r["lr"], r["loss"]) for r in table.rows] == [(0.1, 0.5), (0.01, 0.25)]
    assert [c for c, _ in tracking.experiments()] == ["ch03"]
    assert tracking.get_run(ids[0]).name == "lr 0.1"
    with pytest.raises(UserError) as err:
        tracking.get_run("0" * 32)
    assert err.value.code == "llmops.tracking.no_run"


def test_disabled_run_does_nothing(store):
    seen = []
    run = tracking.track_run("ch03", "off", {"lr": 1}, enabled=False)
    with run:
        assert run.tee(seen.append) == seen.append  # the command's own callback, untouched
        _loop(run.tee(seen.append))
        run.log_metrics({"x": 1.0})
    assert run.run_id is None and run.fields() == {} and len(seen) == 5
    assert not (Path(store.removeprefix("sqlite:///")).parent / "artifacts").exists()


def test_failed_and_cancelled_runs_are_marked(store):
    from engine.core.progress import Cancelled

    with pytest.raises(ZeroDivisionError), tracking.track_run("ch05", "boom") as failed:
        failed.log_metrics({"loss": 1.0}, 1)
        _ = 1 / 0
    with pytest.raises(Cancelled), tracking.track_run("ch05", "stop") as killed:
        raise Cancelled("stopped")
    client = _mlflow(store)
    assert client.get_run(failed.run_id).info.status == "FAILED"
    assert client.get_run(failed.run_id).data.tags["llmlab.error"].startswith("ZeroDivisionError")
    assert client.get_run(failed.run_id).data.metrics == {"loss": 1.0}  # what was logged before is kept
    assert client.get_run(killed.run_id).info.status == "KILLED"


def test_diverged_child_status_and_nan_kept(store):
    with tracking.track_run("ch04", "two", {"seed": 0}) as run:
        on_row = run.tee(by="run")
        on_row({"run": "a", "step": 1, "loss": 1.0})
        on_row({"run": "b", "step": 1, "loss": float("nan")})
        run.set_statuses({"a": "finished", "b": "diverged"})
    runs = {r.name: r for r in tracking.list_runs("ch04")}
    assert runs["a"].status == "FINISHED" and runs["b"].status == "FAILED"
    assert math.isnan(runs["b"].metrics["loss"])  # a divergence is data, not dropped
    assert runs["b"].params == {"seed": "0", "run": "b"} and runs["b"].parent_run_id == runs["two"].run_id


def test_bad_chapter_is_refused_before_training():
    with pytest.raises(InputError) as err:
        tracking.track_run("chapter4", "x")
    assert err.value.code == "llmops.tracking.bad_chapter"


# --- broken stores ------------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _broken(kind: str, tmp_path: Path) -> str:
    if kind == "parent_is_a_file":  # a store that cannot be created
        (tmp_path / "plain.txt").write_text("not a directory")
        return f"sqlite:///{(tmp_path / 'plain.txt' / 'mlflow.db').as_posix()}"
    if kind == "not_sqlite":  # a corrupted store
        (tmp_path / "garbage.db").write_bytes(bytes(range(256)) * 64)
        return f"sqlite:///{(tmp_path / 'garbage.db').as_posix()}"
    return f"http://127.0.0.1:{_closed_port()}"  # an unreachable remote URI


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("parent_is_a_file", "llmops.tracking.unwritable"),
        ("not_sqlite", "llmops.tracking.unwritable"),
        ("closed_port", "llmops.tracking.unreachable"),
    ],
)
def test_broken_store_costs_a_warning_not_the_training(kind, code, tmp_path, monkeypatch):
    uri = _broken(kind, tmp_path)
    monkeypatch.setenv("LLMLAB_TRACKING_URI", uri)
    before = (tmp_path / "garbage.db").read_bytes() if kind == "not_sqlite" else None
    printed = []
    with tracking.track_run("ch03", "x", {"lr": 1}) as run:
        rows = _loop(run.tee(printed.append, by="run"))
    assert len(rows) == 5 and printed == rows  # the training and its output are whole
    assert run.run_id is None and run.warning == code
    assert run.fields(rows[0]) == {"run_id": None, "tracking_uri": uri, "tracking_error": code}
    assert uri in run.warning_message and str(UserError(code, **run.warning_fmt)) == run.warning_message
    if before is not None:
        assert (tmp_path / "garbage.db").read_bytes() == before  # nothing half-written into it
    if kind == "parent_is_a_file":  # a store that does not exist holds no runs (and reading creates nothing)
        assert tracking.list_runs() == []
        return
    with pytest.raises(UserError) as err:  # reading says so too
        tracking.list_runs()
    expected = "llmops.tracking.unreachable" if kind == "closed_port" else "llmops.tracking.unreadable"
    assert err.value.code == expected


def test_missing_store_reads_as_empty_and_is_not_created(tmp_path, monkeypatch):
    db = tmp_path / "none" / "mlflow.db"
    monkeypatch.setenv("LLMLAB_TRACKING_URI", f"sqlite:///{db.as_posix()}")
    assert tracking.list_runs() == [] and tracking.experiments() == []
    assert not db.exists()


def test_store_breaking_mid_run_keeps_the_training(store):
    db = Path(store.removeprefix("sqlite:///"))
    with tracking.track_run("ch05", "breaks") as run:
        run.log_metrics({"loss": 1.0}, 1)
        run.flush()
        db.write_bytes(bytes(range(256)) * 64)  # the store is damaged while the run goes on
        rows = _loop(run.tee())
    assert len(rows) == 5 and run.warning == "llmops.tracking.write_failed"
    assert "file is not a database" in run.warning_fmt["reason"]


_CHILD = r"""
import json, sys
events = []
sys.addaudithook(lambda ev, args: events.append(ev) if ev in ("socket.connect", "socket.getaddrinfo") else None)
from engine.llmops import tracking
with tracking.track_run("ch03", "child", {"lr": 0.1}) as run:
    run.log_metrics({"loss": 1.0}, 1)
    run.log_dataset(tracking.dataset_version("d", [1, 2, 3]))
print(json.dumps({"run_id": run.run_id, "warning": run.warning, "network": events}))
"""


@pytest.mark.slow  # a fresh interpreter imports mlflow (and torch through it): 10-30 s
def test_another_process_reads_it_and_nothing_goes_online(store):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=root, capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["warning"] is None and report["network"] == []  # telemetry off: not one socket opened
    (run,) = tracking.list_runs("ch03")
    assert run.run_id == report["run_id"] and run.metrics == {"loss": 1.0} and run.datasets[0].rows == 3


def test_ui_command_is_the_shared_store(store):
    assert tracking.mlflow_ui_command().startswith(f"mlflow ui --backend-store-uri {store}")
