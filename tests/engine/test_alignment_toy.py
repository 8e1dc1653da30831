"""engine.alignment.toy and .runs: the toy world's rewards, sampling and KL; side-by-side runs, reward hacking,
the β sweep and best-of-n; divergence and cancellation keep partial results."""

from __future__ import annotations

import math

import pytest
import torch

from engine.alignment import runs, toy
from engine.training.callbacks import CANCELLED, DIVERGED, FINISHED


def test_proxy_is_gameable_and_the_judge_is_not():
    good = ["김치"]
    hacked = ["김치", *["최고!"] * 7]
    assert toy.proxy_reward("음식?", good) == 1.0
    assert toy.proxy_reward("음식?", hacked) == 4.5  # more cheer, more proxy reward: the loophole
    assert toy.judge_score("음식?", good, True) == 1.0
    assert toy.judge_score("음식?", hacked, False) < -2  # repetition, length, unfinished
    assert toy.judge_score("음식?", ["축구"], True) == -0.5  # wrong topic
    assert toy.proxy_reward("날씨?", ["축구", "정말"]) == 0.5


def test_words_and_tokenizer():
    ids = [toy.ID["김치"], toy.ID["정말"], toy.ID[toy.EOS], toy.ID[toy.PAD]]
    assert toy.words(ids) == (["김치", "정말"], True)
    assert toy.words(ids[:2]) == (["김치", "정말"], False)
    tok = toy.make_tokenizer()
    expected = [toy.ID[w] for w in ("<s>", "날씨?", "맑아요", "최고!", "</s>")]
    assert tok("<s> 날씨? 맑아요 최고!</s>")["input_ids"] == expected
    assert len(toy.VOCAB) == 20


def test_sample_pads_after_eos_and_kl_of_identical_models_is_zero():
    setup = toy.toy_setup()
    g = torch.Generator().manual_seed(0)
    prompts = toy.prompt_ids(["날씨?", "음식?"] * 8)
    resp, mask = toy.sample(setup.reference, prompts, setup.cfg.max_new, g)
    for ids, m in zip(resp.tolist(), mask.tolist(), strict=True):
        n = int(sum(m))
        if toy.ID[toy.EOS] in ids:
            assert ids.index(toy.ID[toy.EOS]) == n - 1 and all(i == toy.ID[toy.PAD] for i in ids[n:])
    _, logits = toy.response_logps(setup.reference, prompts, resp, with_logits=True)
    assert float(toy.kl_per_sequence(logits, logits, mask).abs().max()) < 1e-6


def test_setup_is_shared_and_reasonable():
    setup = toy.toy_setup()
    assert toy.toy_setup() is setup  # same config -> the same reference and data
    assert setup.sft_log.status == FINISHED
    assert setup.sft_log.train_rows()[-1]["loss"] < setup.sft_log.train_rows()[0]["loss"]
    assert len(setup.pairs) == setup.cfg.n_pairs
    assert 0.5 < setup.ref_stats["reward_mean"] < 1.3 and setup.ref_stats["judge_mean"] > 0.2
    chosen_better = sum(
        toy.proxy_reward(p["question"], [w for w in p["chosen"] if w != toy.EOS])
        > toy.proxy_reward(p["question"], [w for w in p["rejected"] if w != toy.EOS])
        for p in setup.pairs
    ) / len(setup.pairs)
    assert 0.6 < chosen_better < 0.98  # a noisy labeller: mostly right, sometimes not


def test_race_rows_follow_the_cli_contract():
    seen = []
    logs = runs.race(("ppo", "dpo"), steps=3, seed=0, on_row=seen.append)
    assert set(logs) == {"ppo", "dpo"} and all(log.status == FINISHED for log in logs.values())
    assert [r["method"] for r in seen] == ["ppo", "dpo"] * 3  # interleaved: both curves grow together
    for r in seen:
        assert {"method", "step", "reward_mean", "kl", "loss", "seconds"} <= set(r)
    summary = runs.summary(logs)
    assert {s["run"] for s in summary} == {"ppo", "dpo"} and all(s["seconds_per_step"] > 0 for s in summary)


def test_diverging_learning_rate_is_detected_and_stops_cleanly():
    logs = runs.race(("ppo", "dpo"), steps=6, seed=0, lr=1000.0)
    for log in logs.values():
        assert log.status == DIVERGED, log.message
        assert "learning rate" in log.message
        assert 1 <= len(log.train_rows()) < 6  # the finished steps are kept


def test_cancel_halfway_keeps_partial_results():
    n = {"rows": 0}

    def stop():
        n["rows"] += 1
        return n["rows"] >= 5

    logs = runs.race(("ppo", "dpo"), steps=10, seed=0, should_stop=stop)
    assert all(log.status == CANCELLED for log in logs.values())
    kept = sum(len(log.train_rows()) for log in logs.values())
    assert 4 <= kept <= 6 and all(math.isfinite(r["reward_mean"]) for log in logs.values() for r in log.rows)


def test_bad_methods_are_refused():
    with pytest.raises(ValueError, match="methods"):
        runs.race(("sgd",), steps=2)
    with pytest.raises(ValueError, match="steps"):
        runs.race(("ppo",), steps=0)


@pytest.mark.slow
def test_reward_hacking_without_kl_penalty():
    logs = runs.reward_hacking(steps=40, seed=0, kl_coefs=(0.0, 0.5))
    off, on = runs.summary(logs)
    assert off["reward_last"] > off["reward_first"] + 0.5  # the proxy reward goes up …
    assert off["judge_last"] < off["judge_first"] - 0.5  # … while the held-out judge goes down
    assert on["judge_last"] > off["judge_last"] + 1.0 and on["kl_last"] < off["kl_last"]


def test_beta_sweep_small_beta_drifts_further():
    points, log = runs.beta_sweep((0.03, 1.0), steps=30, seed=0, checkpoints=1)
    assert log.status == FINISHED and [p["beta"] for p in points] == [0.03, 1.0]
    small, large = points
    assert small["kl"] > large["kl"]
    with pytest.raises(ValueError):
        runs.beta_sweep((), steps=5)


def test_toy_best_of_n_raises_the_proxy_reward():
    rows = runs.best_of_n((1, 4, 16), prompts=64)
    assert [r["n"] for r in rows] == [1, 4, 16]
    assert rows[0]["reward_mean"] < rows[1]["reward_mean"] <= rows[2]["reward_mean"]
    assert rows[0]["kl_bound"] == 0.0 and rows[2]["kl_bound"] == pytest.approx(math.log(16) - 15 / 16)
    with pytest.raises(ValueError):
        runs.best_of_n((0,))
