"""engine.lm.language_model: the next-token distribution of a real model, choosing from it, and repeating."""

from __future__ import annotations

import pytest
import torch

from engine.core.textinput import InputError
from engine.lm.language_model import (
    MAX_PROMPT_TOKENS,
    MAX_TOP_K,
    Appendable,
    appendable,
    choose_token,
    encode_prompt,
    generate_steps,
    next_token_distribution,
    piece_label,
    steps_view,
    visible,
)

PROMPT = "The capital of France is"


# References computed with transformers directly: what these tests check is that the engine reads the model
# correctly, never what a 135M model happens to know.
@torch.no_grad()
def reference_probs(lm, ids: list[int]) -> torch.Tensor:
    logits = lm.model(torch.tensor([ids], device=lm.device)).logits[0, -1].float()  # (V,)
    return torch.softmax(logits, dim=-1)


@torch.no_grad()
def reference_greedy(lm, ids: list[int], steps: int) -> list[int]:
    prompt = torch.tensor([ids], device=lm.device)
    out = lm.model.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=steps,
        do_sample=False,
        eos_token_id=lm.tokenizer.eos_token_id,
        pad_token_id=lm.tokenizer.eos_token_id,
    )
    return out[0, len(ids) :].tolist()


def test_visible_makes_whitespace_visible():
    assert visible(" the\n\t") == "␣the↵⇥"
    assert visible("") == "∅"


def test_distribution_sorted_and_sums_at_most_one(chat_lm):
    d = next_token_distribution(chat_lm, PROMPT, temperature=1.0, top_k=10)
    probs = [c.prob for c in d.candidates]
    assert len(probs) == 10
    assert probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1.0 + 1e-6
    assert all(0 <= p <= 1 for p in probs)
    probs_ref = reference_probs(chat_lm, encode_prompt(chat_lm, PROMPT))
    assert d.candidates[0].token_id == int(probs_ref.argmax())
    assert d.candidates[0].prob == pytest.approx(float(probs_ref.max()), abs=1e-5)
    assert d.candidates[0].text == chat_lm.tokenizer.decode([d.candidates[0].token_id])
    assert d.candidates[0].label == visible(d.candidates[0].text)
    assert 0 < d.entropy_bits < 10
    assert d.prompt_tokens == 5 and d.truncated_tokens == 0 and d.notes == []


def test_temperature_reshapes_the_distribution(chat_lm):
    cold = next_token_distribution(chat_lm, PROMPT, temperature=0.1)
    warm = next_token_distribution(chat_lm, PROMPT, temperature=2.0)
    assert cold.entropy_bits < warm.entropy_bits
    assert cold.candidates[0].prob > warm.candidates[0].prob
    assert cold.candidates[0].logit == warm.candidates[0].logit  # logits themselves do not change


def test_temperature_zero_puts_all_mass_on_argmax(chat_lm):
    d = next_token_distribution(chat_lm, PROMPT, temperature=0.0, top_k=5)
    assert d.temperature == 0.0
    assert d.candidates[0].prob == 1.0
    assert all(c.prob == 0.0 for c in d.candidates[1:])
    logits = [c.logit for c in d.candidates]
    assert logits == sorted(logits, reverse=True)  # still ranked by logit
    assert d.entropy_bits == 0.0
    assert d.candidates[0].token_id == int(reference_probs(chat_lm, encode_prompt(chat_lm, PROMPT)).argmax())


def test_top_k_and_temperature_are_clamped(chat_lm):
    d = next_token_distribution(chat_lm, PROMPT, top_k=10_000, temperature=99)
    assert len(d.candidates) == MAX_TOP_K and d.temperature == 5.0
    assert len(next_token_distribution(chat_lm, PROMPT, top_k=0).candidates) == 1


def test_greedy_choice_is_the_first_candidate(chat_lm):
    d = next_token_distribution(chat_lm, PROMPT, temperature=1.0)
    assert choose_token(d, "greedy") == d.candidates[0]
    zero = next_token_distribution(chat_lm, PROMPT, temperature=0.0)
    assert choose_token(zero, "sample", seed=3) == zero.candidates[0]  # temperature 0 is greedy
    with pytest.raises(ValueError, match="unknown strategy"):
        choose_token(d, "beam")


def test_sampling_is_deterministic_with_a_seed(chat_lm):
    d = next_token_distribution(chat_lm, PROMPT, temperature=2.0, top_k=20)
    picks = [choose_token(d, "sample", seed=s).token_id for s in range(20)]
    assert picks == [choose_token(d, "sample", seed=s).token_id for s in range(20)]
    assert len(set(picks)) > 1  # a hot distribution does not always give the top token
    assert set(picks) <= {c.token_id for c in d.candidates}  # top-k sampling draws only among the shown


def test_greedy_generation_is_deterministic(chat_lm):
    first = generate_steps(chat_lm, PROMPT, 8, strategy="greedy")
    second = generate_steps(chat_lm, PROMPT, 8, strategy="greedy")
    ids = [c.token_id for _, c in first]
    assert ids == [c.token_id for _, c in second]
    assert ids == reference_greedy(chat_lm, encode_prompt(chat_lm, PROMPT), 8)  # == transformers' greedy generate
    assert [d.prompt_tokens for d, _ in first] == list(range(5, 13))  # each step appends one token


def test_seeded_sampling_generation_is_reproducible(chat_lm):
    kw = dict(strategy="sample", temperature=1.0, top_k=10, seed=7)
    a = generate_steps(chat_lm, "Once upon a time", 5, **kw)
    b = generate_steps(chat_lm, "Once upon a time", 5, **kw)
    assert [c.token_id for _, c in a] == [c.token_id for _, c in b]


def test_long_prompt_is_cut_to_max_prompt_tokens(chat_lm):
    text = "hello " * 3000
    n = len(encode_prompt(chat_lm, text))
    assert n > 2500
    d = next_token_distribution(chat_lm, text, top_k=3)
    assert d.prompt_tokens == MAX_PROMPT_TOKENS
    assert d.truncated_tokens == n - MAX_PROMPT_TOKENS
    assert d.notes == [f"prompt cut to its last {MAX_PROMPT_TOKENS} tokens ({n - MAX_PROMPT_TOKENS} dropped)"]


def test_empty_prompt_raises(chat_lm):
    with pytest.raises(InputError):
        next_token_distribution(chat_lm, "  ")


def test_chat_template_path(chat_lm):
    question = "What is the capital of France?"
    ids = encode_prompt(chat_lm, question, use_chat_template=True)
    assert all(isinstance(i, int) for i in ids)
    text = chat_lm.tokenizer.decode(ids)
    assert "<|im_start|>user\n" + question + "<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    assert len(ids) > len(encode_prompt(chat_lm, question))
    steps = generate_steps(chat_lm, question, 10, use_chat_template=True)
    got = [c.token_id for _, c in steps]
    assert got == reference_greedy(chat_lm, ids, 10)  # transformers' greedy generate, which also stops at <|im_end|>
    assert chat_lm.tokenizer.eos_token_id not in got[:-1]  # nothing is generated after the end of the turn


def test_base_ko_continues_korean(base_ko_lm):
    d = next_token_distribution(base_ko_lm, "대한민국의 수도는", temperature=0.0, top_k=5)
    assert d.candidates[0].prob == 1.0
    assert d.prompt_tokens == len(encode_prompt(base_ko_lm, "대한민국의 수도는"))
    ids = encode_prompt(base_ko_lm, "대한민국의 수도는")
    assert d.candidates[0].token_id == int(reference_probs(base_ko_lm, ids).argmax())


KOREAN = "대한민국의 수도는"


def test_byte_piece_candidates_show_their_bytes_not_a_replacement_mark(chat_lm):
    # SmolLM2's byte-level BPE: the likeliest next token after this Korean prompt is " " + the first byte of a
    # Hangul syllable (0xEC), which decodes alone to " �".
    d = next_token_distribution(chat_lm, KOREAN, top_k=20)
    assert all("\ufffd" not in c.label for c in d.candidates)
    top = d.candidates[0]
    assert top.text == " \ufffd" and top.label == "␣⟨EC⟩"
    assert piece_label(chat_lm.tokenizer, top.token_id) == "␣⟨EC⟩"
    assert d.ids == encode_prompt(chat_lm, KOREAN)
    whole = next(c for c in d.candidates if "\ufffd" not in c.text)
    assert whole.label == visible(whole.text)  # a whole piece is shown as it is


def test_a_byte_piece_is_appended_with_the_bytes_that_finish_its_character(chat_lm):
    d = next_token_distribution(chat_lm, KOREAN, top_k=5)
    top = d.candidates[0]
    add = appendable(chat_lm, d, top)
    assert 1 <= add.extra_tokens <= 3 and "\ufffd" not in add.text
    assert add.text[0] == " " and len(add.text) == 2 and "\uac00" <= add.text[1] <= "\ud7a3"  # one Hangul syllable
    more = reference_greedy(chat_lm, [*d.ids, top.token_id], add.extra_tokens)  # transformers' greedy continuation
    assert add.text == chat_lm.tokenizer.decode([top.token_id, *more]) and add.label == visible(add.text)


def test_a_whole_piece_is_appended_as_it_is(chat_lm):
    d = next_token_distribution(chat_lm, PROMPT, top_k=3)
    assert appendable(chat_lm, d, d.candidates[0]) == Appendable(d.candidates[0].text, d.candidates[0].label, 0)


def test_steps_view_joins_byte_pieces_into_characters(chat_lm):
    steps = generate_steps(chat_lm, KOREAN, 6)
    text, rows = steps_view(chat_lm, steps)
    ids = [c.token_id for _, c in steps]
    assert text == chat_lm.tokenizer.decode(ids, skip_special_tokens=True)
    assert [r.step for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all("\ufffd" not in r.token and "\ufffd" not in r.top3 for r in rows)
    assert rows[0].prob == round(steps[0][1].prob, 4)
