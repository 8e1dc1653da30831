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


# --- tracked_work: a page's training work, tracked ----------------------------------------------------------------


def _two_runs(progress, on_row, should_stop) -> dict:
    """A work(progress, on_row, should_stop) training two labelled loops, as ch.4's race does: {label: RunLog}."""
    from engine.training.callbacks import Monitor

    logs = {}
    for label, start in (("a", 2.0), ("b", 1.0)):
        monitor = Monitor(3, progress, should_stop, on_row, label=label)
        for step in range(1, 4):
            monitor.record({"step": step, "loss": start / step, "note": "text is not a metric", "ok": True})
        logs[label] = monitor.finish()
    logs["b"].status = "diverged"  # a child's own end status reaches its run
    return logs


def test_tracked_work_logs_params_step_metrics_dataset_status_and_artifacts(store, tmp_path):
    seen, outcomes = [], []
    data = tracking.dataset_version("pairs", [{"q": "몇 개?", "sql": "SELECT 1"}] * 3, "tests")

    def finish(run, result):
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "w.txt").write_text("weights")
        run.log_artifacts(tmp_path / "out", "policy")
        run.log_metrics({"final": 0.5}, 3)

    work = tracking.tracked_work(
        _two_runs,
        "ch04",
        "race",
        {"steps": 3, "beta": 0.1},
        dataset=lambda: data,
        by="run",
        finish=finish,
        on_done=outcomes.append,
        command="pages/04_alignment.py",
    )
    logs = work(lambda f, m: None, seen.append, lambda: False)
    assert set(logs) == {"a", "b"} and len(seen) == 6  # the result and the page's rows, untouched

    (done,) = outcomes
    assert done.warning is None and done.uri == store and done.status == "FINISHED" and set(done.children) == {"a", "b"}
    assert done.as_dict()["run_id"] == done.run_id and done.as_dict()["fmt"] == {}
    runs = {r.name: r for r in tracking.list_runs("ch04")}
    assert set(runs) == {"race", "a", "b"}
    parent, a, b = runs["race"], runs["a"], runs["b"]
    assert parent.run_id == done.run_id and a.run_id == done.children["a"] and a.parent_run_id == parent.run_id
    assert parent.params == {"steps": "3", "beta": "0.1"} and a.params == {"steps": "3", "beta": "0.1", "run": "a"}
    assert (a.status, b.status) == ("FINISHED", "FAILED")  # diverged -> FAILED
    assert a.metrics == {"loss": 2 / 3} and b.metrics == {"loss": 1 / 3}  # text and booleans are not metrics
    curves = {c.run_name: (c.steps, c.values) for c in tracking.metric_curves([a.run_id, b.run_id], ["loss"])}
    assert curves == {"a": ([1, 2, 3], [2.0, 1.0, 2 / 3]), "b": ([1, 2, 3], [1.0, 0.5, 1 / 3])}
    for run in (parent, a, b):
        assert [(d.name, d.digest, d.rows, d.source) for d in run.datasets] == [("pairs", data.digest, 3, "tests")]
    assert parent.tags["llmlab.dataset.digest"] == data.digest and parent.metrics == {"final": 0.5}
    client = _mlflow(store)
    assert [f.path for f in client.list_artifacts(parent.run_id, "policy")] == ["policy/w.txt"]
    assert client.get_run(parent.run_id).data.tags["mlflow.source.name"] == "pages/04_alignment.py"


def test_tracked_work_single_run_eval_rows_and_status(store):
    outcomes = []

    def work(progress, on_row, should_stop):
        rows = _loop(on_row)
        from engine.training.callbacks import RunLog

        return RunLog(label="loop", rows=rows, status="cancelled")

    result = tracking.tracked_work(work, "ch03", "one", {"lr": 0.1}, on_done=outcomes.append)(
        lambda f, m: None, None, lambda: False
    )
    assert result.status == "cancelled"
    (run,) = tracking.list_runs("ch03")
    assert run.status == "KILLED" and outcomes[0].status == "KILLED" and outcomes[0].children == {}
    assert run.metrics == {"loss": 0.25, "eval_accuracy": 0.75}  # an evaluation row's numbers as eval_<key>
    (curve,) = tracking.metric_curves([run.run_id], ["eval_accuracy"])
    assert curve.steps == [4]


def test_tracked_work_failure_and_cancel_are_marked_and_reported(store):
    from engine.core.progress import Cancelled

    outcomes = []

    def cancelled(progress, on_row, should_stop):
        on_row({"step": 1, "loss": 1.0})
        raise Cancelled("stopped")

    with pytest.raises(Cancelled):
        tracking.tracked_work(cancelled, "ch05", "stop", on_done=outcomes.append)(lambda f, m: None, None, None)
    (run,) = tracking.list_runs("ch05")
    assert run.status == "KILLED" and run.metrics == {"loss": 1.0} and outcomes[0].run_id == run.run_id
    assert outcomes[0].status == "KILLED"


def test_tracked_work_off_is_the_work_itself_and_a_bad_chapter_is_refused():
    assert tracking.tracked_work(_two_runs, "ch04", "x", enabled=False) is _two_runs
    with pytest.raises(InputError):
        tracking.tracked_work(_two_runs, "chapter 4", "x")


@pytest.mark.parametrize(
    ("kind", "code"), [("not_sqlite", "llmops.tracking.unwritable"), ("closed_port", "llmops.tracking.unreachable")]
)
def test_tracked_work_on_a_broken_store_trains_and_warns(kind, code, tmp_path, monkeypatch):
    uri = _broken(kind, tmp_path)
    monkeypatch.setenv("LLMLAB_TRACKING_URI", uri)
    seen, outcomes, made = [], [], []

    def data():
        made.append(1)
        return tracking.dataset_version("d", [1])

    work = tracking.tracked_work(
        _two_runs, "ch04", "race", {"steps": 3}, dataset=data, by="run", on_done=outcomes.append
    )
    logs = work(lambda f, m: None, seen.append, lambda: False)
    assert [round(r["loss"], 4) for r in seen] == [2.0, 1.0, 0.6667, 1.0, 0.5, 0.3333]  # the training is whole
    assert logs["a"].status == "finished" and len(logs["a"].rows) == 3
    (done,) = outcomes
    assert done.run_id is None and done.warning == code and done.warning_fmt["uri"] == uri
    assert made == []  # nothing is hashed for a store that records nothing
    assert str(UserError(code, **done.warning_fmt))  # the message has every value it needs


@pytest.mark.slow  # imports peft (and transformers through it): 14-25 s on the busy machine
def test_log_adapter_saves_a_peft_adapter_into_the_current_run(store):
    import torch
    from peft import LoraConfig, get_peft_model

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.lin(x)

    torch.manual_seed(0)
    model = get_peft_model(Tiny(), LoraConfig(r=2, lora_alpha=4, target_modules=["lin"]))
    assert tracking.log_adapter(model) is None and tracking.current_run() is None  # outside a tracked work

    def work(progress, on_row, should_stop):
        assert tracking.current_run() is not None
        uris = [tracking.log_adapter(model, label="lora"), tracking.log_adapter(torch.nn.Linear(2, 2))]
        return uris

    uris = tracking.tracked_work(work, "ch05", "modes", by="mode")(lambda f, m: None, None, lambda: False)
    assert uris[1] is None and tracking.current_run() is None  # a model without an adapter is not copied
    runs = {r.name: r for r in tracking.list_runs("ch05")}
    assert uris[0] == f"runs:/{runs['lora'].run_id}/adapter" and runs["lora"].parent_run_id == runs["modes"].run_id
    names = {a.path for a in _mlflow(store).list_artifacts(runs["lora"].run_id, "adapter")}
    assert {"adapter/adapter_config.json", "adapter/adapter_model.safetensors"} <= names


def test_tracked_toy_dpo_demo(store):
    from engine.llmops.demo import toy_preferences, tracked_toy_dpo

    rows, outcomes = [], []
    result = tracked_toy_dpo(0.1, 4, on_row=rows.append, on_done=outcomes.append)
    assert result.status == "finished" and [r["step"] for r in rows] == [1, 2, 3, 4]
    (run,) = tracking.list_runs("ch04")
    assert run.run_id == outcomes[0].run_id and run.name == "toy dpo" and run.status == "FINISHED"
    assert run.params == {"method": "dpo", "beta": "0.1", "steps": "4", "seed": "0"}
    assert run.datasets[0].digest == toy_preferences(0).digest and run.datasets[0].name == "toy-preferences"
    (curve,) = tracking.metric_curves([run.run_id], ["loss"])
    assert curve.steps == [1, 2, 3, 4] and curve.values == [r["loss"] for r in rows]
    assert [a.path for a in _mlflow(store).list_artifacts(run.run_id, "policy")] == ["policy/policy.pt"]


@pytest.mark.slow  # loads and trains the tiny Llama twice (20-60 s)
def test_chapter5_page_run_one_child_per_mode_with_its_adapter(store):
    """The ch.5 page's run: train_modes' rows by mode, the dummy batch's version, each mode's status, the LoRA
    adapter saved into its mode's child while the model exists."""
    from engine.llmops.run_records import modes_batch_version
    from engine.training import LoraSpec, QuantSpec, mode_statuses, train_modes

    rows, outcomes = [], []

    def work(progress, on_row, should_stop):
        keep = lambda mode, model: tracking.log_adapter(model, label=mode)  # noqa: E731
        return train_modes(
            "tiny", 2, 1e-3, LoraSpec(), QuantSpec(), progress, should_stop, ("full", "lora"), on_row, keep
        )

    work = tracking.tracked_work(
        work,
        "ch05",
        "train modes",
        {"model": "tiny", "steps": 2},
        dataset=lambda: modes_batch_version("tiny"),
        by="mode",
        status=mode_statuses,
        on_done=outcomes.append,
    )
    logs = work(lambda f, m: None, rows.append, lambda: False)
    assert [(r["mode"], r["step"]) for r in rows] == [("full", 1), ("full", 2), ("lora", 1), ("lora", 2)]
    assert set(outcomes[0].children) == {"full", "lora"} and outcomes[0].warning is None
    runs = {r.name: r for r in tracking.list_runs("ch05")}
    assert set(runs) == {"train modes", "full", "lora"}
    for mode in ("full", "lora"):
        (curve,) = tracking.metric_curves([runs[mode].run_id], ["loss"])
        assert curve.steps == [1, 2] and curve.values == logs[mode].losses
        assert runs[mode].status == "FINISHED" and runs[mode].datasets[0].name == "dummy-batch"
    assert runs["full"].datasets[0].digest == modes_batch_version("tiny").digest
    client = _mlflow(store)
    assert client.list_artifacts(runs["full"].run_id) == []  # a full model is never copied
    names = {a.path for a in client.list_artifacts(runs["lora"].run_id, "adapter")}
    assert "adapter/adapter_config.json" in names


def test_mnr_page_run_records_pairs_losses_and_dev_figures(store):
    """ch.11's page run: the work versions the pairs it made (log_mnr_pairs), finish logs the trainer's losses at
    their steps and the dev hit rates before (step 0) and after (the last step)."""
    from types import SimpleNamespace

    from engine.llmops.run_records import log_mnr_pairs, mnr_pairs, mnr_record
    from engine.retrieval.embedding_training import FinetuneResult

    docs = [SimpleNamespace(doc_id="제1조"), SimpleNamespace(doc_id="제2조")]
    pairs = [("국호는?", 0), ("주권은?", 1)]
    log_mnr_pairs(docs, pairs)  # outside a tracked run: nothing, no error

    def work(progress, on_row, should_stop):
        log_mnr_pairs(docs, pairs)
        losses = [{"step": 2, "loss": 1.5}, {"step": 4, "loss": 0.5}]
        return FinetuneResult({"hit@1": 0.25}, {"hit@1": 0.75}, losses, steps=4, pairs=2)

    tracking.tracked_work(work, "ch11", "mnr-train", {"pairs": 2}, finish=mnr_record)(lambda f, m: None, None, None)
    (run,) = tracking.list_runs("ch11")
    assert run.metrics == {"loss": 0.5, "dev_hit_1_before": 0.25, "dev_hit_1": 0.75}  # MLflow keys: @ -> _
    (curve,) = tracking.metric_curves([run.run_id], ["loss"])
    assert (curve.steps, curve.values) == ([2, 4], [1.5, 0.5])
    assert run.datasets[0].digest == mnr_pairs(docs, pairs).digest
    assert run.datasets[0].digest == tracking.dataset_version("x", [["국호는?", "제1조"], ["주권은?", "제2조"]]).digest
    assert [a.path for a in _mlflow(store).list_artifacts(run.run_id)] == ["summary.json"]
