"""engine.lm.attention_maps.model_attention: attention weights of a real model."""

from __future__ import annotations

import pytest
import torch

from engine.core.progress import Cancelled
from engine.lm.attention_maps import MAX_TOKENS, model_attention, model_attentions

TEXT = "the cat sat on the mat"


def _check_causal_rows(matrix):
    m = torch.tensor(matrix)
    t = m.shape[0]
    assert m.shape == (t, t)
    torch.testing.assert_close(m.sum(dim=1), torch.ones(t), atol=1e-4, rtol=0)
    assert bool((m.triu(diagonal=1) == 0).all())  # causal: no position attends to a later one
    assert bool((m >= 0).all())
    return m


@pytest.fixture(scope="module")
def chat_map(chat_lm):
    return model_attention(chat_lm, TEXT, layer=3, head=2)


def test_labels_and_shape(chat_map):
    assert chat_map.tokens == ["the", "␣cat", "␣sat", "␣on", "␣the", "␣mat"]
    assert (chat_map.n_layers, chat_map.n_heads) == (30, 9)  # SmolLM2-135M
    assert (chat_map.layer, chat_map.head, chat_map.truncated_tokens) == (3, 2, 0)
    assert len(chat_map.matrix) == len(chat_map.tokens)


def test_rows_sum_to_one_and_are_causal(chat_map):
    m = _check_causal_rows(chat_map.matrix)
    assert float(m[0, 0]) == pytest.approx(1.0)  # the first token can only attend to itself


def test_head_none_is_the_mean_of_heads(chat_lm):
    per_head = [torch.tensor(model_attention(chat_lm, TEXT, layer=5, head=h).matrix) for h in range(9)]
    mean = model_attention(chat_lm, TEXT, layer=5, head=None)
    assert mean.head is None
    _check_causal_rows(mean.matrix)
    torch.testing.assert_close(torch.tensor(mean.matrix), torch.stack(per_head).mean(dim=0), atol=1e-6, rtol=1e-5)


def test_out_of_range_layer_and_head_are_clamped(chat_lm):
    high = model_attention(chat_lm, TEXT, layer=99, head=99)
    assert (high.layer, high.head) == (29, 8)
    assert high.matrix == model_attention(chat_lm, TEXT, layer=29, head=8).matrix
    low = model_attention(chat_lm, TEXT, layer=-3, head=-1)
    assert (low.layer, low.head) == (0, 0)
    assert low.matrix == model_attention(chat_lm, TEXT, layer=0, head=0).matrix


def test_long_text_truncated_to_max_tokens(chat_lm):
    text = "word " * 300
    n = len(chat_lm.tokenizer(text, add_special_tokens=True)["input_ids"])
    am = model_attention(chat_lm, text, layer=0, head=None)
    assert len(am.tokens) == MAX_TOKENS
    assert am.truncated_tokens == n - MAX_TOKENS > 0
    _check_causal_rows(am.matrix)


def test_base_ko_attention_is_causal(base_ko_lm):
    am = model_attention(base_ko_lm, "고양이가 매트 위에 앉았다", layer=1, head=None)
    assert am.tokens[0] == "<bos>"  # Gemma prepends its begin-of-sequence token
    assert am.n_layers == 18
    _check_causal_rows(am.matrix)


def _our_hooks(lm) -> list:
    """Progress hooks left on the layers (transformers keeps output-capturing hooks of its own: not counted)."""
    hooks = [h for layer in lm.model.get_decoder().layers for h in layer._forward_hooks.values()]
    return [h for h in hooks if h.__qualname__.startswith("model_attentions")]


def test_one_forward_pass_keeps_every_layer(chat_lm):
    calls = []
    stack = model_attentions(chat_lm, TEXT, progress=lambda f, m: calls.append((round(f, 4), m)))
    assert tuple(stack.weights.shape) == (30, 9, 6, 6)  # (layers, heads, T, T)
    assert calls[0] == (round(1 / 30, 4), "1/30") and calls[-1] == (1.0, "30/30") and len(calls) == 30
    assert stack.pick(3, 2).matrix == model_attention(chat_lm, TEXT, layer=3, head=2).matrix
    assert stack.pick(5, None).head is None
    assert not _our_hooks(chat_lm)


def test_stop_is_honoured_between_layers(chat_lm):
    seen = []
    with pytest.raises(Cancelled):
        model_attentions(chat_lm, TEXT, progress=lambda f, m: seen.append(m), should_stop=lambda: len(seen) >= 2)
    assert seen == ["1/30", "2/30"]
    assert not _our_hooks(chat_lm)


def test_hangul_byte_pieces_are_labelled_as_characters(chat_lm):
    am = model_attention(chat_lm, "안녕", layer=0, head=None)
    assert all("\ufffd" not in x for x in am.tokens)
    assert am.tokens[:3] == ["안 (1/3)", "안 (2/3)", "안 (3/3)"]
