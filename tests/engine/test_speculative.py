"""engine.inference.speculative: the accept/reject rule preserves the target distribution (chi-square, fixed seeds), and
greedy speculative decoding on the real `chat` model equals plain greedy decoding token for token."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.inference.speculative import (
    EarlyExitDrafter,
    PromptLookupDrafter,
    accept_reject,
    compare_methods,
    expected_tokens_per_step,
    generate,
    toy_experiment,
)

CASES = [
    ([0.5, 0.2, 0.2, 0.1], [0.1, 0.4, 0.3, 0.2]),  # draft disagrees
    ([0.7, 0.3, 0.0], [0.2, 0.3, 0.5]),  # draft proposes a token the target never emits
    ([0.25, 0.25, 0.25, 0.25], [0.97, 0.01, 0.01, 0.01]),  # draft nearly deterministic and wrong
    ([0.1] * 10, [0.1] * 10),  # identical: everything accepted
]


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize(("p", "q"), CASES)
def test_speculative_sampling_preserves_the_target_distribution(p, q, k):
    r = toy_experiment(p, q, n_samples=20_000, k=k, seed=1234)
    assert r["p_value"] > 0.001, r  # chi-square: no evidence the first emitted token differs from p
    emitted = np.array(r["speculative_freq"])
    assert emitted[np.array(p) == 0].sum() == 0  # a token with p = 0 never comes out
    assert r["acceptance_measured"] == pytest.approx(r["acceptance_predicted"], abs=0.02)
    assert r["tokens_per_step_measured"] == pytest.approx(r["tokens_per_step_predicted"], rel=0.03)


def test_the_draft_alone_would_fail_the_same_test():
    # sanity check of the test itself: sampling from q instead of p is detected
    from scipy.stats import chisquare

    r = toy_experiment(*CASES[0], n_samples=20_000, k=1, seed=0)
    counts = np.array(r["draft_freq"]) * r["n_samples"]
    assert chisquare(counts, np.array(r["target"]) * r["n_samples"]).pvalue < 1e-6


def test_second_position_is_also_the_target():
    # with k = 2 and position-dependent distributions, the second emitted token follows p[1] (when reached)
    rng = np.random.default_rng(7)
    p = np.array([[0.6, 0.4, 0.0], [0.1, 0.2, 0.7], [1 / 3, 1 / 3, 1 / 3]])
    q = np.array([[0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
    second = np.zeros(3)
    for _ in range(20_000):
        draft = [int(rng.choice(3, p=q[i])) for i in range(2)]
        out, acc = accept_reject(p, q, draft, rng)
        if acc >= 1:  # the first draft was accepted, so the second token was drawn at position 1
            second[out[1]] += 1
    from scipy.stats import chisquare

    assert chisquare(second, p[1] * second.sum()).pvalue > 0.001


def test_greedy_rule_is_exact_match():
    rng = np.random.default_rng(0)
    V = 5
    p = np.zeros((3, V))
    p[0, 2] = p[1, 4] = p[2, 1] = 1.0  # the target's greedy choices: 2, 4, then 1
    q = np.zeros((2, V))
    q[0, 2] = q[1, 3] = 1.0  # draft guesses 2 (right) then 3 (wrong)
    out, acc = accept_reject(p, q, [2, 3], rng)
    assert (out, acc) == ([2, 4], 1)
    q[1, 3], q[1, 4] = 0.0, 1.0
    out, acc = accept_reject(p, q, [2, 4], rng)
    assert (out, acc) == ([2, 4, 1], 2)  # all accepted + the bonus token


def test_expected_tokens_per_step():
    assert expected_tokens_per_step(0.0, 4) == 1.0
    assert expected_tokens_per_step(1.0, 4) == 5.0
    assert expected_tokens_per_step(0.5, 1) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        expected_tokens_per_step(1.5, 2)


def test_prompt_lookup_copies_what_followed():
    d = PromptLookupDrafter(max_ngram=2)
    draft, q = d.propose([5, 6, 7, 8, 9, 1, 6, 7], k=3, temperature=0.0, rng=None)
    assert draft == [8, 9, 1] and q is None  # "6 7" was followed by 8 9 1
    assert d.propose([1, 2, 3], k=3, temperature=0.0, rng=None) == ([], None)  # nothing to copy


def test_toy_bad_input():
    with pytest.raises(ValueError):
        toy_experiment([0.5, 0.5], [1.0])
    with pytest.raises(ValueError):
        toy_experiment([-1, 2], [0.5, 0.5])
    with pytest.raises(ValueError):
        toy_experiment([0.5, 0.5], [0.5, 0.5], n_samples=10)


PROMPT = "Repeat exactly: the quick brown fox jumps over the lazy dog, the quick brown fox jumps over the lazy dog."


def _hf_greedy(lm, prompt: str, n: int) -> list[int]:
    ids = lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = lm.model.generate(**ids, max_new_tokens=n, do_sample=False, pad_token_id=lm.tokenizer.eos_token_id)
    return out[0, ids["input_ids"].shape[1] :].tolist()


def test_greedy_speculative_equals_greedy_prompt_lookup(chat_lm):
    n = 12
    plain = generate(chat_lm, PROMPT, n)
    assert plain.tokens == _hf_greedy(chat_lm, PROMPT, n)[: len(plain.tokens)]  # our loop is the real greedy
    spec = generate(chat_lm, PROMPT, n, PromptLookupDrafter(), k=4)
    assert spec.tokens == plain.tokens
    assert spec.accepted > 0 and spec.target_calls < plain.target_calls  # copying pays off here


@pytest.mark.slow
def test_greedy_speculative_equals_greedy_early_exit(chat_lm):
    n = 10
    plain = generate(chat_lm, "Explain in one sentence why the sky is blue.", n)
    spec = generate(chat_lm, "Explain in one sentence why the sky is blue.", n, EarlyExitDrafter(chat_lm, 24), k=3)
    assert spec.tokens == plain.tokens
    assert spec.verified >= spec.accepted and 0 <= spec.acceptance_rate <= 1


@pytest.mark.slow
def test_sampling_speculative_runs_and_reports(chat_lm):
    r = generate(chat_lm, PROMPT, 8, PromptLookupDrafter(), k=3, temperature=0.8, seed=3)
    assert 1 <= len(r.tokens) <= 8 and r.target_calls <= 8
    rows = compare_methods(chat_lm, PROMPT, max_new_tokens=8, k=3, exit_layers=20)
    assert [r["method"] for r in rows] == ["plain", "prompt lookup", "early exit (20/30 layers)"]
    assert all(r["same_as_plain"] for r in rows)
    assert rows[0]["speedup"] == pytest.approx(1.0)


def test_generate_bad_input(chat_lm):
    with pytest.raises(ValueError):
        generate(chat_lm, "hi", 0)
    with pytest.raises(ValueError):
        generate(chat_lm, "hi", 10_000)
    with pytest.raises(ValueError):
        generate(chat_lm, "   ", 4)
    with pytest.raises(ValueError):
        generate(chat_lm, "hi", 4, PromptLookupDrafter(), k=0)
    with pytest.raises(ValueError):
        EarlyExitDrafter(chat_lm, 30)
