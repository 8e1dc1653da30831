"""engine.lm.flow: one sentence through SmolLM2 written out from the weights equals transformers' own forward."""

from __future__ import annotations

import pytest
import torch

from engine.core.textinput import InputError
from engine.lm.flow import MAX_CHARS, MAX_TOKENS, TOP_K, flow_layer, flow_pass, logit_lens, token_flow

TEXT = "한국의 수도는 서울, the capital"  # byte-piece Hangul and whole English tokens in one input
TOL = {"atol": 1e-4, "rtol": 1e-5}  # logits, MLP units: float32, summed in another order than transformers
# The residual stream reaches ~3e4 (the first token's "massive activations"); float32 sums over 30 blocks in another
# order differ by ~1e-8 of that, which is up to 3e-4 in absolute terms in the late layers.
STREAM_TOL = {"atol": 5e-4, "rtol": 1e-5}


@pytest.fixture(scope="module")
def fp(chat_lm):
    return flow_pass(chat_lm, TEXT)


@pytest.fixture(scope="module")
def reference(chat_lm, fp):
    """transformers' eager forward on the same ids, with the MLP's hidden units captured at layer 7."""
    captured = {}
    down = chat_lm.model.model.layers[7].mlp.down_proj

    def grab(module, args, output) -> None:  # returns None: the forward is left unchanged
        captured["hidden"] = args[0][0].detach()

    hook = down.register_forward_hook(grab)
    try:
        with torch.no_grad():
            out = chat_lm.model(
                torch.tensor([[t.id for t in fp.tokens]]), output_hidden_states=True, output_attentions=True
            )
    finally:
        hook.remove()
    return out, captured["hidden"]


def test_tokens_are_readable(fp):
    labels = [t.label for t in fp.tokens]
    assert labels[:5] == ["한 (1/2)", "한 (2/2)", "국 (1/3)", "국 (2/3)", "국 (3/3)"]
    assert labels[-3:] == [",", "␣the", "␣capital"]
    assert fp.tokens[0].hex == "ED 95 9C" and fp.tokens[1].group_start == 0
    assert len(fp.tokens) == 25 and (fp.truncated_tokens, fp.truncated_chars) == (0, False)
    guesses = [g.label for row in fp.next_tokens for g in row]
    assert not any("\ufffd" in s for s in labels + guesses + [fp.continuation_text])
    shape = (fp.n_layers, fp.n_heads, fp.n_kv_heads, fp.head_dim, fp.hidden, fp.intermediate, fp.vocab)
    assert shape == (30, 9, 3, 64, 576, 1536, 49152) and fp.rope_theta == 100000.0


def test_residual_stream_equals_transformers_hidden_states(chat_lm, fp, reference):
    out, _ = reference
    assert fp.stream.shape == (31, 25, 576)
    for layer in range(fp.n_layers):  # hidden_states[l] is the stream entering block l
        torch.testing.assert_close(fp.stream[layer], out.hidden_states[layer][0], **STREAM_TOL)
    # transformers' last hidden state is after the final RMSNorm
    final = chat_lm.model.model.norm(fp.stream[-1])
    torch.testing.assert_close(final, out.hidden_states[-1][0], **TOL)
    norms = torch.tensor(fp.stream_norms)
    torch.testing.assert_close(norms, fp.stream.norm(dim=-1), atol=1e-3, rtol=1e-6)
    torch.testing.assert_close(torch.tensor(fp.embed_norms), norms[0])


@pytest.mark.parametrize("layer", [0, 7, 29])
def test_attention_equals_transformers_eager_attentions(chat_lm, fp, reference, layer):
    out, _ = reference
    hf = out.attentions[layer][0]  # (H, T, T)
    for head in range(fp.n_heads):
        block = flow_layer(chat_lm, fp, layer, head)
        torch.testing.assert_close(torch.tensor(block.attention), hf[head], atol=1e-5, rtol=0)
        assert block.kv_head == head // 3  # GQA: heads 0-2 share K/V head 0, ...
    mean = flow_layer(chat_lm, fp, layer, None)
    torch.testing.assert_close(torch.tensor(mean.attention), hf.mean(dim=0), atol=1e-5, rtol=0)


def test_rope_scores_and_softmax(chat_lm, fp):
    block = flow_layer(chat_lm, fp, 7, 4)
    T = len(fp.tokens)
    assert [len(r) for r in block.scores_rope] == list(range(1, T + 1))  # row i sees keys 0..i
    for i in range(T):
        row = torch.tensor(block.scores_rope[i])
        torch.testing.assert_close(
            torch.softmax(row, dim=0), torch.tensor(block.attention[i][: i + 1]), atol=1e-6, rtol=0
        )
        # a query and a key at the same position are turned by the same angle: their dot product is unchanged
        assert block.scores_rope[i][i] == pytest.approx(block.scores_plain[i][i], abs=1e-3)
    assert block.scores_rope[5][0] != pytest.approx(block.scores_plain[5][0], abs=1e-3)  # offset 5: it is not
    angles = torch.tensor(block.rope_angles)  # (T, D/2): t · θ^(-2p/D)
    assert angles.shape == (T, 32) and angles[3, 0] == pytest.approx(3.0) and angles[0].abs().max() == 0
    assert angles[1, 1] == pytest.approx(100000.0 ** (-2 / 64))


def test_block_residuals_and_mlp_equal_transformers(chat_lm, fp, reference):
    _, hidden = reference  # (T, 1536) the SwiGLU hidden units silu(gate)·up at layer 7
    block = flow_layer(chat_lm, fp, 7, None)
    top = torch.tensor(block.top_neurons)
    torch.testing.assert_close(torch.tensor(block.top_values), hidden.gather(1, top), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(top[:, 0], hidden.abs().argmax(dim=1))
    torch.testing.assert_close(torch.tensor(block.stream_in), torch.tensor(fp.stream_norms[7]))
    torch.testing.assert_close(torch.tensor(block.stream_out), torch.tensor(fp.stream_norms[8]), atol=1e-3, rtol=1e-5)
    assert all(0 < s <= 1 for s in block.active_share)


def test_next_tokens_equal_transformers_logits(fp, reference):
    out, _ = reference
    logits = out.logits[0]  # (T, V)
    for t, row in enumerate(fp.next_tokens):
        assert len(row) == TOP_K
        ids = torch.tensor([g.id for g in row])
        torch.testing.assert_close(ids, logits[t].topk(TOP_K).indices)
        torch.testing.assert_close(torch.tensor([g.logit for g in row]), logits[t][ids], **TOL)
        probs = torch.softmax(logits[t], dim=-1)[ids]
        torch.testing.assert_close(torch.tensor([g.prob for g in row]), probs, atol=1e-5, rtol=0)
    assert fp.next_tokens[-1][0].label == "␣of"


def test_byte_piece_guesses_say_which_character_they_finish(fp):
    # after the first two bytes of "도" the model is sure of the third, and says which character it makes
    assert fp.tokens[11].label == "도 (2/3)"
    first = fp.next_tokens[11][0]
    assert first.label == "⟨84⟩ → 도" and first.prob > 0.95
    assert fp.next_tokens[4][0].label == "⟨EC⟩"  # after a whole character: a first byte alone, no character yet
    assert fp.continuation == [fp.next_tokens[-1][0].id] and fp.continuation_text == "␣of"


def test_korean_continuation_finishes_the_character(chat_lm):
    korean = flow_pass(chat_lm, "한국의 수도는")
    assert korean.next_tokens[-1][0].label == "⟨20 EC⟩"  # a space and the first byte of a syllable
    assert len(korean.continuation) == 3 and korean.continuation_text == "␣있"
    # the extra tokens (computed with the pass's own KV cache) are transformers' greedy choices
    seq = [t.id for t in korean.tokens] + korean.continuation[:1]
    with torch.no_grad():
        for expected in korean.continuation[1:]:
            assert int(chat_lm.model(torch.tensor([seq])).logits[0, -1].argmax()) == expected
            seq.append(expected)


def test_logit_lens_ends_at_the_model_prediction(chat_lm, fp):
    lens = logit_lens(chat_lm, fp, len(fp.tokens) - 1)
    assert len(lens.rows) == fp.n_layers + 1 and lens.final_id == fp.next_tokens[-1][0].id
    last = lens.rows[-1]
    assert last.guesses[0].id == lens.final_id
    assert last.final_prob == pytest.approx(fp.next_tokens[-1][0].prob, abs=1e-6)
    assert logit_lens(chat_lm, fp, 999).position == len(fp.tokens) - 1  # clamped


def test_deterministic_and_clamped(chat_lm, fp):
    again = flow_pass(chat_lm, TEXT)
    assert again.stream_norms == fp.stream_norms and again.next_tokens == fp.next_tokens
    high = flow_layer(chat_lm, fp, 99, 99)
    assert (high.layer, high.head, high.kv_head) == (29, 8, 2)


def test_empty_text_is_a_user_error(chat_lm):
    for text in ("", "   \n"):
        with pytest.raises(InputError) as err:
            flow_pass(chat_lm, text)
        assert err.value.code == "input.empty"


def test_long_text_is_cut_with_a_note(chat_lm):
    text = "word " * 80
    n = len(chat_lm.tokenizer(text)["input_ids"])
    long = flow_pass(chat_lm, text)
    assert len(long.tokens) == MAX_TOKENS and long.truncated_tokens == n - MAX_TOKENS > 0
    assert not long.truncated_chars
    assert flow_pass(chat_lm, "a" * (MAX_CHARS + 5)).truncated_chars


def test_token_flow_bundles_the_three(chat_lm):
    tf = token_flow(chat_lm, "The capital of Japan is", layer=3, head=1)
    assert tf.passed.continuation_text == "␣Tokyo"
    assert (tf.block.layer, tf.block.head, tf.lens.position) == (3, 1, len(tf.passed.tokens) - 1)
