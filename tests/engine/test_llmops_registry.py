"""engine.llmops.registry: real tiny LoRA runs registered as versions in a real MLflow store (SQLite under
tmp_path), lineage to run and data, champion/challenger promotions with who and why, and chapter 6 loading
`models:/…@champion`."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import pytest

from engine.core import InputError, UserError
from engine.llmops import registry, tracking

NAME = "tiny-lora"


@pytest.fixture(autouse=True)
def _fresh():
    tracking.reset()
    yield
    tracking.reset()


def _tiny_lora_run(uri: str, lr: float) -> str:
    """Two real LoRA steps of chapter 5's tiny Llama, tracked like `finetune --track`: the adapter is an artifact."""
    from engine.training.finetune import dummy_batch, load_training_model, train_steps

    model = load_training_model("tiny", "lora")
    batch = dummy_batch(model.config.vocab_size, 2, 16, seed=0)
    with tracking.track_run("ch05", f"lora lr={lr}", {"lr": lr, "steps": 2}) as run:
        run.log_dataset(tracking.dataset_version("dummy-batch", batch["input_ids"], "dummy_batch(2, 16, seed=0)"))
        log = train_steps(
            model,
            batch,
            2,
            lr,
            mode="lora",
            on_step=lambda log: run.log_row({"step": log.finished_steps, "loss": log.losses[-1]}),
        )
        assert log.finished_steps == 2
        with tempfile.TemporaryDirectory() as out:
            model.save_pretrained(out)
            run.log_artifacts(out, "adapter")
    assert run.warning is None, run.warning_message
    return run.run_id


@pytest.fixture(scope="module")
def _trained(tmp_path_factory) -> tuple[Path, list[str]]:
    """A store with two tracked tiny LoRA runs (made once: loading and training take a few seconds each)."""
    import os

    db = tmp_path_factory.mktemp("trained") / "mlflow.db"
    uri = f"sqlite:///{db.as_posix()}"
    old = os.environ.get("LLMLAB_TRACKING_URI")
    os.environ["LLMLAB_TRACKING_URI"] = uri
    try:
        runs = [_tiny_lora_run(uri, 1e-3), _tiny_lora_run(uri, 1e-2)]
    finally:
        if old is None:
            os.environ.pop("LLMLAB_TRACKING_URI")
        else:
            os.environ["LLMLAB_TRACKING_URI"] = old
        tracking.reset()
    return db, runs


@pytest.fixture
def store(_trained, tmp_path, monkeypatch) -> tuple[str, list[str]]:
    """A copy of the trained store (its runs' artifacts stay where the module's store wrote them)."""
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(_trained[0], db)
    uri = f"sqlite:///{db.as_posix()}"
    monkeypatch.setenv("LLMLAB_TRACKING_URI", uri)
    monkeypatch.setattr(registry, "_cache_root", lambda: tmp_path / "downloads")  # models stay in the usual cache
    return uri, _trained[1]


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.name in ("adapter_config.json", "adapter_model.safetensors")
    }


def _artifact_dir(uri: str, run_id: str) -> Path:
    from mlflow import MlflowClient
    from mlflow.utils.file_utils import local_file_uri_to_path

    return Path(local_file_uri_to_path(MlflowClient(tracking_uri=uri).get_run(run_id).info.artifact_uri)) / "adapter"


def test_register_promote_and_load(store):
    uri, (run1, run2) = store
    v1 = registry.register_model(NAME, run1, "adapter", "lr 1e-3")
    v2 = registry.register_model(NAME, run2)
    assert (v1.version, v2.version) == (1, 2) and (v1.run_id, v2.run_id) == (run1, run2)
    run = tracking.get_run(run1)
    assert v1.dataset == tracking.DatasetVersion("dummy-batch", run.datasets[0].digest, 2, "dummy_batch(2, 16, seed=0)")
    assert v1.description == "lr 1e-3" and v1.tags["llmlab.run_name"] == "lora lr=0.001"

    first = registry.promote(NAME, 1, "champion", who="kim", why="the first adapter")
    registry.promote(NAME, 2, "challenger", who="lee", why="lr 1e-2: lower loss")
    second = registry.promote(NAME, 2, "champion", who="kim", why="beat v1 on the dev batch")
    assert (first.replaced, second.replaced) == (None, 1)

    versions = registry.model_versions(NAME)
    assert [(v.version, v.aliases) for v in versions] == [(2, ("challenger", "champion")), (1, ())]
    history = registry.promotions(NAME)
    assert [(p.version, p.alias, p.who, p.why, p.replaced) for p in history] == [
        (1, "champion", "kim", "the first adapter", None),
        (2, "challenger", "lee", "lr 1e-2: lower loss", None),
        (2, "champion", "kim", "beat v1 on the dev batch", 1),
    ]
    from mlflow import MlflowClient

    tags = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(NAME, "2").tags
    assert tags["llmlab.promoted.champion.by"] == "kim" and tags["llmlab.promoted.champion.replaced"] == "1"
    assert tags["llmlab.promoted.champion.why"] == "beat v1 on the dev batch"

    # the alias loads what it points at now: the files of run 2's adapter, and a real PEFT model from them
    champion = registry.model_path(f"models:/{NAME}@champion")
    assert _hashes(champion) == _hashes(_artifact_dir(uri, run2)) and len(_hashes(champion)) == 2
    assert registry.model_path(f"models:/{NAME}@champion") == champion  # a version is downloaded once
    assert _hashes(registry.model_path(f"models:/{NAME}/1")) == _hashes(_artifact_dir(uri, run1))
    assert registry.resolve(f"models:/{NAME}@challenger").version == 2
    from peft import PeftModel

    from engine.training.finetune import load_training_model

    loaded = PeftModel.from_pretrained(load_training_model("tiny", "full"), str(champion))
    assert any("lora_A" in name for name, _ in loaded.named_parameters())

    assert registry.registered_models() == [
        {"name": NAME, "latest_version": 2, "aliases": {"challenger": 2, "champion": 2}}
    ]


def test_promotion_needs_who_why_and_a_real_version(store):
    _, (run1, _) = store
    registry.register_model(NAME, run1)
    cases = [
        (lambda: registry.promote(NAME, 1, "production", "kim", "x"), "llmops.registry.bad_alias"),
        (lambda: registry.promote(NAME, 1, "champion", " ", "x"), "llmops.registry.no_who"),
        (lambda: registry.promote(NAME, 1, "champion", "kim", ""), "llmops.registry.no_why"),
        (lambda: registry.promote(NAME, 1, "champion", "kim", "x" * 501), "llmops.registry.no_why"),
        (lambda: registry.promote(NAME, 7, "champion", "kim", "x"), "llmops.registry.no_version"),
        (lambda: registry.promote("no-such", 1, "champion", "kim", "x"), "llmops.registry.no_version"),
        (lambda: registry.register_model("bad name!", run1), "llmops.registry.bad_name"),
        (lambda: registry.register_model(NAME, run1, "no-such-folder"), "llmops.registry.no_artifact"),
        (lambda: registry.register_model(NAME, "0" * 32), "llmops.tracking.no_run"),
        (lambda: registry.resolve(f"models:/{NAME}@champion"), "llmops.registry.no_alias"),
        (lambda: registry.resolve("models:/no-such/1"), "llmops.registry.no_version"),
        (lambda: registry.resolve("runs:/abc/adapter"), "llmops.registry.bad_uri"),
        (lambda: registry.model_versions("no-such"), "llmops.registry.no_model"),
    ]
    for call, code in cases:
        with pytest.raises(UserError) as err:
            call()
        assert err.value.code == code, (code, err.value.code, str(err.value))
    assert registry.promotions(NAME) == []  # nothing was recorded by a refused promotion
    with pytest.raises(InputError):  # a learner's bad input is the InputError kind (the page says how to fix it)
        registry.promote(NAME, 1, "x", "a", "b")


def test_promote_cli(store, capsys):
    from engine.__main__ import main

    _, (run1, _) = store
    assert main(["register-model", "--run", run1, "--name", NAME, "--json"]) == 0
    argv = f"promote --name {NAME} --version 1 --alias champion --who kim --why ok --json".split()
    assert main(argv) == 0
    assert main(["registered-models", "--name", NAME, "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    registered, promoted, version, history = lines
    assert registered["version"] == 1 and registered["run_id"] == run1
    assert promoted == promoted | {"alias": "champion", "who": "kim", "why": "ok", "uri": f"models:/{NAME}@champion"}
    assert version["kind"] == "version" and version["aliases"] == ["champion"]
    assert history["kind"] == "promotion" and history["who"] == "kim"
    assert main(["promote", "--name", NAME, "--version", "3", "--alias", "champion", "--why", "x"]) == 2
    assert "has no version 3" in capsys.readouterr().err


# --- chapter 6 loads the champion --------------------------------------------------------------------------------


def _register_shipped_text2sql(uri: str) -> str:
    """The shipped Text2SQL adapter (assets/text2sql/adapters/chat, trained by the chapter's LoRA run) logged by a
    ch06 run and registered as text2sql-chat v1, promoted to champion."""
    from engine.text2sql.finetune import shipped_adapter

    folder = shipped_adapter("chat")
    assert folder is not None
    with tracking.track_run("ch06", "text2sql-finetune chat (shipped)") as run:
        run.log_artifacts(folder, "adapter")
    registry.register_model("text2sql-chat", run.run_id)
    registry.promote("text2sql-chat", 1, "champion", who="test", why="the shipped adapter")
    return str(folder)


def test_text2sql_resolves_the_champion(store):
    from engine.text2sql import chinook
    from engine.text2sql.strategies import predict

    with pytest.raises(UserError) as err:  # predict goes through the registry before loading any model
        predict(chinook(), "고객은 모두 몇 명인가요?", "zero-shot", role="models:/text2sql-chat@champion")
    assert err.value.code in ("llmops.registry.no_alias", "llmops.registry.no_model")
    shipped = _register_shipped_text2sql(store[0])
    assert _hashes(registry.model_path("models:/text2sql-chat@champion")) == _hashes(Path(shipped))


@pytest.mark.slow  # generates SQL with SmolLM2-135M + the adapter, in-process, twice
def test_text2sql_answers_with_the_champion_like_with_its_folder(store):
    from engine.text2sql import chinook
    from engine.text2sql.strategies import predict

    shipped = _register_shipped_text2sql(store[0])
    question = "고객은 모두 몇 명인가요?"
    by_alias = predict(chinook(), question, "zero-shot", role="models:/text2sql-chat@champion")
    by_folder = predict(chinook(), question, "zero-shot", role=shipped)
    assert by_alias.sql == by_folder.sql and by_alias.sql  # greedy: the same adapter writes the same SQL
