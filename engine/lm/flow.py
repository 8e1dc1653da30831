"""Chapter 2: one sentence through the whole transformer, computed from the weights of the packaged `chat` model.

SmolLM2-135M-Instruct is a Llama: tokens → embedding rows E[id] → 30 blocks of
    h = h + Attn(RMSNorm(h))    (grouped-query attention, RoPE rotating q and k inside it)
    h = h + MLP(RMSNorm(h))     (SwiGLU: down(silu(gate(x)) · up(x)))
→ a final RMSNorm → the tied lm_head (the same matrix E, transposed) → logits → the next token.

Nothing here calls `model.forward`: every step is written out with the layer's own weight tensors, so a page can show
what happens to one token at each stage; tests/engine/test_flow.py checks the numbers equal transformers' hidden
states, attention weights and logits. Three calls, so a page recomputes only what a control changed:

    flow_pass(lm, text)                  all layers once: tokens, embeddings, the residual stream, next-token guesses
    flow_layer(lm, fp, layer, head)      one block in detail: RoPE, attention weights, the MLP's hidden units
    logit_lens(lm, fp, position)         what the model would predict for one token if it stopped after each layer
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from engine.core.textinput import clean_text
from engine.lm.language_model import visible
from engine.lm.positions import apply_rope, rope_frequencies, rope_rotation_angles
from engine.lm.token_display import REPLACEMENT, group_tokens
from engine.models.loading import LoadedLM
from engine.training import training_threads

MAX_TOKENS = 48  # a 48x48 attention map still has readable cells, and every view fits one screen
MAX_CHARS = 2_000
TOP_K = 10
TOP_NEURONS = 12
N_DIMS = 16  # embedding columns shown (of 576)
LENS_K = 3
MAX_FINISH = 4  # a Hangul syllable is 3 bytes: the first guess plus at most 3 more tokens finish any character


@dataclass(frozen=True)
class FlowToken:
    position: int
    id: int
    label: str  # what a learner reads: whitespace visible ("␣cat"), byte pieces as their character ("고 (1/3)")
    raw: str  # the vocabulary entry ("Ġcat", "ê³")
    hex: str  # raw bytes of a byte piece's group ("EA B3 A0"); "" for a token that is text by itself
    group_start: int  # position of the first token of the character group this token belongs to
    char: str  # what the group writes ("고", "␣cat")
    part: int  # this token is piece `part` of `parts` of that group (1 of 1 for a whole token)
    parts: int


@dataclass(frozen=True)
class Guess:
    id: int
    label: str  # the token made visible; a byte piece as ⟨hex⟩, plus "→ 고" when it completes the pending character
    prob: float
    logit: float


@dataclass
class FlowPass:
    """One input through every layer (no layer chosen yet)."""

    model: str  # "SmolLM2-135M-Instruct"
    tokens: list[FlowToken]  # (T,)
    truncated_tokens: int  # tokens cut from the end of a longer text
    truncated_chars: bool  # the text itself was cut to MAX_CHARS first
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden: int  # C
    intermediate: int  # the MLP's hidden width
    vocab: int  # V
    rope_theta: float
    embed_norms: list[float]  # (T,) ‖E[id]‖ of each token's row
    embed_dims: list[list[float]]  # (T, N_DIMS) the first columns of each row
    stream_norms: list[list[float]]  # (L+1, T) ‖h‖: row 0 = embeddings, row l = after block l-1, row L = last block
    next_tokens: list[list[Guess]]  # (T, TOP_K) the model's guesses for the token after each position
    continuation: list[int]  # the first guess after the last token, plus greedy tokens until it is a character
    continuation_text: str  # what they write, whitespace visible (with the input's unfinished bytes, if any)
    stream: Tensor = field(repr=False)  # (L+1, T, C) the residual stream itself, for flow_layer and logit_lens


@dataclass
class FlowLayer:
    """One block, step by step, for every token (a page picks the selected token's row)."""

    layer: int
    head: int | None  # None = mean over the query heads
    kv_head: int | None  # the key/value head the chosen query head shares (GQA: 9 query heads, 3 K/V heads)
    attention: list[list[float]]  # (T, T) softmax weights, row = query, column = key; 0 above the diagonal
    scores_plain: list[list[float]]  # ragged: row i has i+1 entries, q_i·k_j/√D without any rotation
    scores_rope: list[list[float]]  # ragged: the same after RoPE rotated q_i and k_j (what the softmax sees)
    rope_angles: list[list[float]]  # (T, D/2) radians by which RoPE turns pair p at position t: t·θ^(-2p/D)
    stream_in: list[float]  # (T,) ‖h‖ entering the block
    attn_out: list[float]  # (T,) ‖what attention adds‖
    stream_mid: list[float]  # (T,) ‖h‖ after the attention residual
    mlp_out: list[float]  # (T,) ‖what the MLP adds‖
    stream_out: list[float]  # (T,) ‖h‖ leaving the block
    top_neurons: list[list[int]]  # (T, TOP_NEURONS) SwiGLU hidden units with the largest |silu(gate)·up|
    top_values: list[list[float]]  # (T, TOP_NEURONS) their values silu(gate)·up (signed)
    active_share: list[float]  # (T,) share of the hidden units with |value| > 0.1 · the largest


@dataclass(frozen=True)
class LensRow:
    layer: int  # 0 = embeddings only, L = the full model
    guesses: list[Guess]  # (LENS_K,) top tokens if the model stopped here (final norm + lm_head on this h)
    final_prob: float  # probability given here to the full model's first choice


@dataclass
class LogitLens:
    position: int
    final_id: int  # the full model's first choice after this position
    rows: list[LensRow]  # (L+1,)


# ---------------------------------------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------------------------------------


def _readable(group) -> str:
    """A group's text with whitespace made visible; bytes that never became a character stay as ⟨EC 95⟩."""
    return group.text if group.text == f"⟨{group.hex}⟩" else visible(group.text)


def _token_rows(tokenizer, ids: list[int]) -> list[FlowToken]:
    """Readable labels: group_tokens joins byte pieces into their character; whitespace is made visible
    before "(1/3)" is appended, so the space in that suffix is not turned into ␣."""
    raw = tokenizer.convert_ids_to_tokens(ids)
    rows: list[FlowToken] = []
    for g in group_tokens(tokenizer, ids):
        text = _readable(g)
        n = len(g.positions)
        for k, pos in enumerate(g.positions):
            label = text if n == 1 else f"{text} ({k + 1}/{n})"
            rows.append(FlowToken(pos, ids[pos], label, raw[pos], g.hex, g.positions[0], text, k + 1, n))
    return rows


def _pending(tokenizer, tokens: list[FlowToken], position: int) -> list[int]:
    """The byte pieces up to `position` that do not make a character yet: a guess for the next token may finish
    it ("⟨A0⟩ → 고"). Empty when the text up to `position` ends with a whole character."""
    piece = [t.id for t in tokens[tokens[position].group_start : position + 1]]
    return piece if REPLACEMENT in tokenizer.decode(piece, clean_up_tokenization_spaces=False) else []


def _guess_label(tokenizer, token_id: int, pending: list[int]) -> str:
    label = _readable(group_tokens(tokenizer, [token_id])[0])
    if pending:
        done = tokenizer.decode([*pending, token_id], clean_up_tokenization_spaces=False)
        if REPLACEMENT not in done:
            label += f" → {visible(done)}"
    return label


def _guesses(tokenizer, logits: Tensor, k: int, pending: list[int]) -> list[Guess]:
    probs = torch.softmax(logits.float(), dim=-1)
    top = torch.topk(probs, k)
    return [
        Guess(int(i), _guess_label(tokenizer, int(i), pending), float(p), float(logits[i]))
        for p, i in zip(top.values, top.indices, strict=True)
    ]


# ---------------------------------------------------------------------------------------------------------
# the computation
# ---------------------------------------------------------------------------------------------------------


def _rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """x / RMS(x) · weight: Llama's norm (no mean subtracted, no bias)."""
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def _config(lm: LoadedLM):
    cfg = lm.model.config
    theta = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta") or getattr(cfg, "rope_theta", 10000.0)
    return cfg, float(theta)


def _attention_parts(
    lm: LoadedLM, layer: int, h: Tensor, past: tuple[Tensor, Tensor] | None = None
) -> dict[str, Tensor]:
    """RMSNorm → q, k, v → RoPE → causal softmax, for all heads; h is the (T, C) stream entering `layer`.

    `past` is this layer's (rotated keys, values) of the tokens before h: a KV cache, used to add a token to an
    input without recomputing it. The returned "kv" is the cache including h's tokens."""
    cfg, theta = _config(lm)
    block = lm.model.model.layers[layer]
    T, start = h.shape[0], 0 if past is None else past[0].shape[1]
    H, Hkv, D = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    x = _rms_norm(h, block.input_layernorm.weight, cfg.rms_norm_eps)  # (T, C)
    att = block.self_attn
    q = (x @ att.q_proj.weight.T).view(T, H, D).transpose(0, 1)  # (H, T, D)
    k = (x @ att.k_proj.weight.T).view(T, Hkv, D).transpose(0, 1)  # (Hkv, T, D)
    v = (x @ att.v_proj.weight.T).view(T, Hkv, D).transpose(0, 1)  # (Hkv, T, D)
    cos, sin = rope_frequencies(D, start + T, theta, dtype=h.dtype)  # (start+T, D)
    cos, sin = cos[start:], sin[start:]  # the angles of h's own positions
    q_rot, k_rot = apply_rope(q[None], cos, sin)[0], apply_rope(k[None], cos, sin)[0]
    if past is not None:
        k_rot, v = torch.cat((past[0], k_rot), dim=1), torch.cat((past[1], v), dim=1)  # (Hkv, start+T, D)
    # GQA: query head j reads key/value head j // (H / Hkv); repeat_interleave makes that explicit
    group = H // Hkv
    k_rot_h, v_h = k_rot.repeat_interleave(group, dim=0), v.repeat_interleave(group, dim=0)  # (H, start+T, D)
    scale = 1.0 / math.sqrt(D)
    scores = (q_rot @ k_rot_h.transpose(1, 2)) * scale  # (H, T, start+T)
    future = torch.ones(T, start + T, dtype=torch.bool, device=h.device).triu(start + 1)
    weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)  # (H, T, start+T)
    mixed = (weights @ v_h).transpose(0, 1).reshape(T, H * D)  # (T, H·D)
    parts = {"scores": scores, "weights": weights, "out": mixed @ att.o_proj.weight.T, "kv": (k_rot, v)}
    if past is None:  # the same scores without rotation, to show what RoPE changes
        parts["plain"] = (q @ k.repeat_interleave(group, dim=0).transpose(1, 2)) * scale  # (H, T, T)
    return parts


def _blocks(lm: LoadedLM, h: Tensor, cache: list | None = None) -> tuple[list[Tensor], list]:
    """Every block on the (T, C) embeddings h: h + Attn(RMSNorm(h)), then h + MLP(RMSNorm(h)). Returns the stream
    after each block and the per-layer KV cache (extended in place of `cache` when given)."""
    stream, kv = [], []
    for layer in range(lm.model.config.num_hidden_layers):
        att = _attention_parts(lm, layer, h, None if cache is None else cache[layer])
        h = h + att["out"]
        h = h + _mlp_parts(lm, layer, h)["out"]
        stream.append(h)
        kv.append(att["kv"])
    return stream, kv


def _mlp_parts(lm: LoadedLM, layer: int, h: Tensor) -> dict[str, Tensor]:
    """RMSNorm → SwiGLU: down(silu(gate(x)) · up(x)); h is the (T, C) stream after the attention residual."""
    cfg, _ = _config(lm)
    block = lm.model.model.layers[layer]
    x = _rms_norm(h, block.post_attention_layernorm.weight, cfg.rms_norm_eps)  # (T, C)
    mlp = block.mlp
    hidden = torch.nn.functional.silu(x @ mlp.gate_proj.weight.T) * (x @ mlp.up_proj.weight.T)  # (T, 1536)
    return {"hidden": hidden, "out": hidden @ mlp.down_proj.weight.T}  # out: (T, C)


def _final_logits(lm: LoadedLM, h: Tensor) -> Tensor:
    """Final RMSNorm, then the lm_head (tied: the embedding matrix E, transposed): (..., C) → (..., V)."""
    cfg, _ = _config(lm)
    return _rms_norm(h, lm.model.model.norm.weight, cfg.rms_norm_eps) @ lm.model.lm_head.weight.T


def _finish_character(lm: LoadedLM, cache: list, pending: list[int], first: int) -> tuple[list[int], str]:
    """A byte-piece guess is no character yet (⟨20 EC⟩): keep choosing the most likely token (greedy) until the
    bytes make one, so a page can say what the model is starting. Each step runs the blocks on the new token only,
    reading the earlier tokens' keys and values from the KV cache `flow_pass` built."""
    extra = [first]
    table = lm.model.get_input_embeddings().weight

    def text() -> str:
        return lm.tokenizer.decode([*pending, *extra], clean_up_tokenization_spaces=False)

    while REPLACEMENT in text() and len(extra) < MAX_FINISH:
        stream, cache = _blocks(lm, table[extra[-1]].float()[None], cache)  # (1, C) through every block
        extra.append(int(_final_logits(lm, stream[-1][0]).argmax()))
    done = text()
    return extra, (visible(done) if REPLACEMENT not in done else _readable(group_tokens(lm.tokenizer, extra)[-1]))


def _encode(lm: LoadedLM, text: str) -> tuple[list[int], int, bool]:
    cleaned = clean_text(text, max_chars=MAX_CHARS)  # empty text raises InputError("input.empty")
    ids = list(lm.tokenizer(cleaned.text, add_special_tokens=True)["input_ids"])
    dropped = max(0, len(ids) - MAX_TOKENS)
    return ids[:MAX_TOKENS], dropped, cleaned.truncated


def flow_pass(lm: LoadedLM, text: str) -> FlowPass:
    """Tokens → embeddings → every block → logits, from the weights; keeps the residual stream for the details.

    On one CPU thread (LLMLAB_TRAIN_THREADS, as the small training runs): ≤ 48 tokens make small matrices, and on
    a busy 2-core machine a pass measured 0.9 s on one thread against 8.5 s on two (OpenMP threads spin-waiting)."""
    with training_threads(), torch.no_grad():
        return _flow_pass(lm, text)


def _flow_pass(lm: LoadedLM, text: str) -> FlowPass:
    cfg, theta = _config(lm)
    ids, dropped, cut = _encode(lm, text)
    table = lm.model.get_input_embeddings().weight  # (V, C)
    h = table[torch.tensor(ids, dtype=torch.long, device=table.device)].float()  # (T, C): the lookup
    stream, cache = _blocks(lm, h)
    stack = torch.stack([h, *stream])  # (L+1, T, C)
    logits = _final_logits(lm, stack[-1])  # (T, V)
    tokens = _token_rows(lm.tokenizer, ids)
    guesses = [_guesses(lm.tokenizer, logits[t], TOP_K, _pending(lm.tokenizer, tokens, t)) for t in range(len(ids))]
    emb = stack[0]
    finish, finish_text = _finish_character(lm, cache, _pending(lm.tokenizer, tokens, len(ids) - 1), guesses[-1][0].id)
    return FlowPass(
        model=lm.resolved.spec.hub_id.rsplit("/", 1)[-1],
        tokens=tokens,
        truncated_tokens=dropped,
        truncated_chars=cut,
        n_layers=cfg.num_hidden_layers,
        n_heads=cfg.num_attention_heads,
        n_kv_heads=cfg.num_key_value_heads,
        head_dim=cfg.head_dim,
        hidden=cfg.hidden_size,
        intermediate=cfg.intermediate_size,
        vocab=table.shape[0],
        rope_theta=theta,
        embed_norms=emb.norm(dim=-1).tolist(),
        embed_dims=emb[:, :N_DIMS].tolist(),
        stream_norms=stack.norm(dim=-1).tolist(),
        next_tokens=guesses,
        continuation=finish,
        continuation_text=finish_text,
        stream=stack.cpu(),
    )


def flow_layer(lm: LoadedLM, fp: FlowPass, layer: int, head: int | None = None) -> FlowLayer:
    """Block `layer` (clamped to the model) in detail, from the stream `flow_pass` kept; head None = mean of heads."""
    with training_threads(), torch.no_grad():
        return _flow_layer(lm, fp, layer, head)


def _flow_layer(lm: LoadedLM, fp: FlowPass, layer: int, head: int | None) -> FlowLayer:
    layer = max(0, min(int(layer), fp.n_layers - 1))
    if head is not None:
        head = max(0, min(int(head), fp.n_heads - 1))
    h = fp.stream[layer].to(lm.device)  # (T, C)
    att = _attention_parts(lm, layer, h)
    mid = h + att["out"]
    mlp = _mlp_parts(lm, layer, mid)
    out = mid + mlp["out"]

    def pick(t: Tensor) -> Tensor:  # (H, T, T) -> (T, T): one head, or the mean over heads
        return t.mean(dim=0) if head is None else t[head]

    T = h.shape[0]
    plain, rope = pick(att["plain"]), pick(att["scores"])
    hidden = mlp["hidden"]  # (T, I)
    k = min(TOP_NEURONS, hidden.shape[1])
    top = hidden.abs().topk(k, dim=-1).indices  # (T, k)
    peak = hidden.abs().amax(dim=-1, keepdim=True).clamp_min(1e-12)
    return FlowLayer(
        layer=layer,
        head=head,
        kv_head=None if head is None else head // (fp.n_heads // fp.n_kv_heads),
        attention=pick(att["weights"]).tolist(),
        scores_plain=[plain[i, : i + 1].tolist() for i in range(T)],
        scores_rope=[rope[i, : i + 1].tolist() for i in range(T)],
        rope_angles=rope_rotation_angles(fp.head_dim, T, fp.rope_theta).tolist(),
        stream_in=h.norm(dim=-1).tolist(),
        attn_out=att["out"].norm(dim=-1).tolist(),
        stream_mid=mid.norm(dim=-1).tolist(),
        mlp_out=mlp["out"].norm(dim=-1).tolist(),
        stream_out=out.norm(dim=-1).tolist(),
        top_neurons=top.tolist(),
        top_values=hidden.gather(1, top).tolist(),
        active_share=((hidden.abs() > 0.1 * peak).float().mean(dim=-1)).tolist(),
    )


def logit_lens(lm: LoadedLM, fp: FlowPass, position: int) -> LogitLens:
    """For one token: the final norm and lm_head applied to its stream after every layer (the "logit lens")."""
    with training_threads(), torch.no_grad():
        return _logit_lens(lm, fp, position)


def _logit_lens(lm: LoadedLM, fp: FlowPass, position: int) -> LogitLens:
    position = max(0, min(int(position), len(fp.tokens) - 1))
    pending = _pending(lm.tokenizer, fp.tokens, position)
    logits = _final_logits(lm, fp.stream[:, position].to(lm.device))  # (L+1, V)
    final_id = int(logits[-1].argmax())
    probs = torch.softmax(logits.float(), dim=-1)  # (L+1, V)
    rows = [
        LensRow(layer, _guesses(lm.tokenizer, logits[layer], LENS_K, pending), float(probs[layer, final_id]))
        for layer in range(logits.shape[0])
    ]
    return LogitLens(position, final_id, rows)


@dataclass
class TokenFlow:
    """flow_pass + flow_layer + logit_lens in one value (the CLI and the tests)."""

    passed: FlowPass
    block: FlowLayer
    lens: LogitLens


def token_flow(lm: LoadedLM, text: str, layer: int = 0, head: int | None = None, position: int = -1) -> TokenFlow:
    fp = flow_pass(lm, text)
    pos = len(fp.tokens) - 1 if position < 0 else position
    return TokenFlow(fp, flow_layer(lm, fp, layer, head), logit_lens(lm, fp, pos))
