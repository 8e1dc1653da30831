"""engine.inference.generation: from-scratch decoding equals transformers (filters on the same logits, greedy and beam
search token for token), and bad settings give learner-readable errors."""

from __future__ import annotations

import pytest
import torch
from transformers import RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from engine.core.textinput import InputError
from engine.inference.generation import (
    DecodingConfig,
    apply_repetition_penalty,
    apply_temperature,
    encode,
    generate,
    top_k_filter,
    top_p_filter,
    validate,
)

PROMPT = "Write one sentence about the sea."


@pytest.fixture(scope="module")
def real_logits(chat_lm):
    ids, _ = encode(chat_lm, PROMPT, True)
    with torch.no_grad():
        logits = chat_lm.model(torch.tensor([ids])).logits[:, -1, :].float()  # (1, V)
    noise = torch.randn(3, logits.shape[-1], generator=torch.Generator().manual_seed(0)) * 3
    return torch.cat([logits, noise]), torch.tensor([ids] * 4)  # (4, V) real + random rows, (4, T)


@pytest.mark.parametrize("k", [1, 2, 5, 40, 1000])
def test_top_k_equals_transformers(real_logits, k):
    logits, ids = real_logits
    assert torch.equal(top_k_filter(logits, k), TopKLogitsWarper(k)(ids, logits))


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.8, 0.9, 0.95, 0.999])
def test_top_p_equals_transformers(real_logits, p):
    logits, ids = real_logits
    for t in (0.7, 1.0, 1.5):  # the filter runs after temperature in practice
        scores = apply_temperature(logits, t)
        assert torch.equal(top_p_filter(scores, p), TopPLogitsWarper(p)(ids, scores))


def test_top_p_keeps_smallest_set_reaching_p(real_logits):
    logits, _ = real_logits
    kept = torch.isfinite(top_p_filter(logits[:1], 0.9))
    probs = logits[:1].softmax(-1)
    assert float(probs[kept].sum()) >= 0.9
    smallest_kept = probs[kept].min()
    assert float(probs[kept].sum() - smallest_kept) < 0.9  # without its least likely member the set falls short


def test_temperature_and_repetition_penalty_equal_transformers(real_logits):
    logits, ids = real_logits
    assert torch.equal(apply_temperature(logits, 0.7), TemperatureLogitsWarper(0.7)(ids, logits))
    for penalty in (0.8, 1.3, 2.0):
        expected = RepetitionPenaltyLogitsProcessor(penalty)(ids, logits.clone())
        assert torch.equal(apply_repetition_penalty(logits, ids, penalty), expected)


def _reference(lm, ids, **kwargs):
    x = torch.tensor([ids])
    out = lm.model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, **kwargs)
    return out[0, len(ids) :].tolist()


def test_greedy_equals_generate(chat_lm):
    ids, _ = encode(chat_lm, PROMPT, True)
    ours = generate(chat_lm, "", DecodingConfig("greedy", max_new_tokens=10), prompt_ids=ids)
    assert ours.new_ids == _reference(chat_lm, ids, max_new_tokens=10)
    assert ours.finish == "length" and len(ours.steps) == 10
    step = ours.steps[0]
    assert step.chosen_id == step.candidates[0].token_id  # greedy takes the most likely raw candidate
    assert step.kept == chat_lm.model.config.vocab_size


def test_greedy_with_repetition_penalty_equals_generate(chat_lm):
    ids, _ = encode(chat_lm, PROMPT, True)
    ours = generate(chat_lm, "", DecodingConfig("greedy", max_new_tokens=10, repetition_penalty=1.5), prompt_ids=ids)
    assert ours.new_ids == _reference(chat_lm, ids, max_new_tokens=10, repetition_penalty=1.5)


@pytest.mark.parametrize(("prompt", "beams", "n"), [(PROMPT, 3, 8), ("What is 2+2? Answer with a number.", 2, 12)])
def test_beam_search_equals_generate(chat_lm, prompt, beams, n):
    ids, _ = encode(chat_lm, prompt, True)
    ours = generate(chat_lm, "", DecodingConfig("beam", max_new_tokens=n, num_beams=beams), prompt_ids=ids)
    assert ours.new_ids == _reference(chat_lm, ids, max_new_tokens=n, num_beams=beams)
    assert ours.finished_beams and len(ours.steps[0].beams) == beams


def test_sampling_is_seeded_and_top_k_1_is_greedy(chat_lm):
    ids, _ = encode(chat_lm, PROMPT, True)
    cfg = DecodingConfig("sample", max_new_tokens=6, temperature=1.2, top_p=0.9, seed=3)
    a = generate(chat_lm, "", cfg, prompt_ids=ids)
    b = generate(chat_lm, "", cfg, prompt_ids=ids)
    assert a.new_ids == b.new_ids
    assert all(s.kept < chat_lm.model.config.vocab_size for s in a.steps)  # top-p removed the tail
    k1 = generate(chat_lm, "", DecodingConfig("sample", max_new_tokens=6, top_k=1, seed=5), prompt_ids=ids)
    greedy = generate(chat_lm, "", DecodingConfig("greedy", max_new_tokens=6), prompt_ids=ids)
    assert k1.new_ids == greedy.new_ids
    assert all(s.kept == 1 for s in k1.steps)


def test_cancel_returns_partial_result(chat_lm):
    calls = {"n": 0}

    def stop_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    r = generate(chat_lm, PROMPT, DecodingConfig("greedy", max_new_tokens=50), should_stop=stop_after_three)
    assert r.finish == "cancelled" and len(r.new_ids) == 3 and r.text


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (DecodingConfig(max_new_tokens=0), "at least 1"),
        (DecodingConfig(max_new_tokens=10**6), "at most"),
        (DecodingConfig("sample", temperature=0.0), "greedy"),
        (DecodingConfig("sample", top_p=0.0), "top-p"),
        (DecodingConfig("sample", top_p=1.5), "top-p"),
        (DecodingConfig("sample", top_k=-1), "top-k"),
        (DecodingConfig("beam", num_beams=0), "beams"),
        (DecodingConfig(repetition_penalty=0.0), "repetition"),
        (DecodingConfig("nucleus"), "strategy"),
    ],
)
def test_bad_settings_are_explained(cfg, message):
    with pytest.raises(InputError, match=message):
        validate(cfg, prompt_tokens=10, context_window=8192)


def test_prompt_longer_than_context_window(chat_lm):
    with pytest.raises(InputError, match="context window"):
        generate(chat_lm, "", DecodingConfig(max_new_tokens=8), prompt_ids=[1] * 8190)


def test_empty_prompt_is_refused(chat_lm):
    with pytest.raises(InputError):
        generate(chat_lm, "   ", DecodingConfig(), use_chat_template=False)
