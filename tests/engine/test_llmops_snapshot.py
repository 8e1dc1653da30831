"""The shipped runs and registry of page 13 (assets/precomputed/ch13_runs.json, `python -m engine runs-precompute`):
real tracked runs read back through the page's readers, the judge's favourite promoted with who and why."""

from __future__ import annotations

import pytest

from engine.core import load_precomputed
from engine.llmops.snapshot import BETAS, runs_snapshot


def _check(data: dict, betas) -> None:
    runs = data["runs"]
    assert sorted(float(r["params"]["beta"]) for r in runs) == sorted(betas)
    assert all(r["status"] == "FINISHED" and r["datasets"][0]["name"] == "toy-preferences" for r in runs)
    assert {c["key"] for c in data["curves"]} >= {"judge_mean", "loss"}
    assert data["params"]["varying"] == ["beta"] and data["params"]["metric"] == "judge_mean"
    by_alias = {p["alias"]: p for p in data["registry"]["promotions"]}
    champion = max(runs, key=lambda r: r["metrics"]["judge_mean"])
    version = {v["version"]: v for v in data["registry"]["versions"]}[by_alias["champion"]["version"]]
    assert version["run_id"] == champion["run_id"] and "champion" in version["aliases"]
    assert by_alias["champion"]["who"] and "judge" in by_alias["champion"]["why"]


def test_shipped_snapshot_is_a_real_sweep():
    pre = load_precomputed("ch13_runs")
    assert pre is not None and pre.command == "python -m engine runs-precompute --save-precomputed"
    _check(pre.data, BETAS)


@pytest.mark.slow
def test_snapshot_is_made_in_a_temporary_store(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_TRACKING_URI", f"sqlite:///{(tmp_path / 'mine.db').as_posix()}")
    data = runs_snapshot(betas=(0.1, 1.0), steps=3)
    _check(data, (0.1, 1.0))
    import os

    assert os.environ["LLMLAB_TRACKING_URI"].endswith("mine.db")  # the learner's store is put back
    assert not (tmp_path / "mine.db").exists()  # and nothing was written to it
