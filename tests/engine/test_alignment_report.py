"""engine.alignment.report: chapter 4's results as records, and the page's runs (stand-ins, no training)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.alignment import report
from engine.training.callbacks import CANCELLED, FINISHED, RunLog


def _log(name, rewards, status=FINISHED, message=""):
    rows = [
        {
            "kind": "train",
            "step": i + 1,
            "reward_mean": r,
            "judge_mean": -r,
            "kl": 0.1 * i,
            "seconds": 0.5,
            "examples": [f"{name}{i}"],
        }
        for i, r in enumerate(rewards)
    ]
    return RunLog(name, rows, status, message)


def test_run_table_and_status():
    logs = {"a": _log("a", [0, 1, 2, 3, 4]), "b": _log("b", [], CANCELLED, "stopped")}
    table = report.run_table(logs)
    assert [(r.run, r.steps, r.reward_first, r.reward_last, r.seconds_per_step) for r in table] == [
        ("a", 5, 0.0, 4.0, 0.5),
        ("b", 0, None, None, None),
    ]
    assert report.overall_status(logs) == (CANCELLED, "stopped")
    assert report.overall_status({"a": logs["a"]}) == (FINISHED, "")
    assert report.RunSet(logs, 3).status == CANCELLED
    assert report.last_examples(logs) == [("a", ["a4"])]


def test_hacking_verdict():
    v = report.hacking_verdict({"off": _log("off", [0, 1, 2, 3, 4])})
    assert (v.reward_first, v.reward_last, v.judge_first, v.judge_last) == (0.0, 4.0, -0.0, -4.0)
    assert report.hacking_verdict({"off": _log("off", [])}) is None


def test_records():
    rows = [{"rank": 1, "reward": 0.12345, "best": True, "answer": "x"}]
    assert report.ranked_answers(rows) == [report.RankedAnswer(1, 0.123, True, "x")]
    assert report.eval_points([{"kind": "train"}, {"kind": "eval", "kl": 1}]) == [{"kind": "eval", "kl": 1}]
    res = SimpleNamespace(
        before={"q": "b"},
        after={"q": "a"},
        trainable_params=1,
        total_params=4,
        log=SimpleNamespace(seconds=2.0),
        model=SimpleNamespace(parameters=lambda: iter([SimpleNamespace(device="cpu")])),
    )
    sft = report.sft_report(res)
    assert (sft.percent, sft.device, sft.answers) == (25.0, "cpu", [report.SFTAnswer("q", "b", "a")])


def test_template_view():
    from engine.models.loading import load_tokenizer

    view = report.template_view(load_tokenizer("chat"), "Hi?", "Hello.")
    assert view.text.startswith("<|im_start|>") and view.total == len(view.tokens)
    assert view.trained == sum(x.trained for x in view.tokens) > 0
    assert "".join(g.text for g in view.groups if g.trained) == "Hello.<|im_end|>⏎"  # the answer and its end


def test_race_runs_keeps_dpo_beta_positive(monkeypatch):
    seen = {}

    def fake_race(methods, steps, seed, kl_coef, beta, **kw):
        seen.update(kl_coef=kl_coef, beta=beta)
        return {"ppo": _log("ppo", [1])}

    monkeypatch.setattr("engine.alignment.runs.race", fake_race)
    result = report.race_runs(("ppo",), 1, 7, 0.0)
    assert seen == {"kl_coef": 0.0, "beta": pytest.approx(1e-3)} and result.seed == 7 and result.status == FINISHED


def test_sweep_runs_sorts_betas(monkeypatch):
    def fake_sweep(betas, steps, seed, **kw):
        return [{"beta": b} for b in betas], RunLog("β sweep", [], FINISHED)

    monkeypatch.setattr("engine.alignment.runs.beta_sweep", fake_sweep)
    res = report.sweep_runs((1.0, 0.1), 5)
    assert [p["beta"] for p in res.points] == [0.1, 1.0] and res.status == FINISHED
