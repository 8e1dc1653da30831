"""Chapter 1: a language model is a next-token distribution. Look at it, pick from it, append, repeat."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from engine.core.textinput import InputError, clean_text
from engine.models.loading import LoadedLM

MAX_PROMPT_TOKENS = 512  # keeps one forward pass well under a second on 2 cores
MAX_TOP_K = 50


@dataclass(frozen=True)
class Candidate:
    token_id: int
    text: str  # decoded piece, exactly as it would be appended
    label: str  # the piece made visible for charts: spaces as ␣, newlines as ↵
    prob: float  # after temperature
    logit: float


@dataclass
class NextToken:
    candidates: list[Candidate]  # top-k, most likely first
    entropy_bits: float  # of the full distribution after temperature
    prompt_tokens: int
    truncated_tokens: int  # tokens dropped from the start of a long prompt
    temperature: float
    notes: list[str] = field(default_factory=list)


def visible(piece: str) -> str:
    """Make whitespace visible so ' the' and 'the' do not look identical on a chart."""
    return piece.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "∅"


def encode_prompt(lm: LoadedLM, text: str, use_chat_template: bool = False) -> list[int]:
    tok = lm.tokenizer
    if use_chat_template and getattr(tok, "chat_template", None):
        ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
    ids = tok(text, add_special_tokens=True)["input_ids"]
    return list(ids)


@torch.no_grad()
def next_token_distribution(
    lm: LoadedLM,
    text: str,
    *,
    temperature: float = 1.0,
    top_k: int = 10,
    use_chat_template: bool = False,
    ids: list[int] | None = None,
) -> NextToken:
    """One forward pass: the probability of every possible next token, of which the top-k are returned.

    temperature 0 is treated as the greedy limit (all mass on the arg-max) instead of dividing by zero.
    """
    top_k = max(1, min(int(top_k), MAX_TOP_K))
    temperature = max(0.0, min(float(temperature), 5.0))
    notes = []
    if ids is None:
        cleaned = clean_text(text, max_chars=20_000)
        if cleaned.note:
            notes.append(cleaned.note)
        ids = encode_prompt(lm, cleaned.text, use_chat_template)
    dropped = max(0, len(ids) - MAX_PROMPT_TOKENS)
    if dropped:
        ids = ids[-MAX_PROMPT_TOKENS:]  # the next token depends most on the end of the text: keep that
        notes.append(f"prompt cut to its last {MAX_PROMPT_TOKENS} tokens ({dropped} dropped)")
    input_ids = torch.tensor([ids], device=lm.device)  # (1, T)
    logits = lm.model(input_ids).logits[0, -1].float()  # (V,)
    if temperature == 0.0:
        probs = torch.zeros_like(logits)
        probs[logits.argmax()] = 1.0
    else:
        probs = torch.softmax(logits / temperature, dim=-1)  # (V,)
    nz = probs[probs > 0]
    entropy = float(-(nz * nz.log2()).sum())
    top = torch.topk(probs if temperature > 0 else logits, top_k)
    candidates = []
    for idx in top.indices.tolist():
        piece = lm.tokenizer.decode([idx])
        candidates.append(Candidate(idx, piece, visible(piece), float(probs[idx]), float(logits[idx])))
    return NextToken(candidates, entropy, len(ids), dropped, temperature, notes)


def choose_token(dist: NextToken, strategy: str = "greedy", seed: int | None = 0) -> Candidate:
    """Greedy takes the most likely candidate; 'sample' draws among the shown top-k, renormalized.

    Sampling only among the top-k is exactly top-k sampling, so what the learner sees is what is drawn from.
    """
    if strategy == "greedy" or dist.temperature == 0.0:
        return dist.candidates[0]
    if strategy != "sample":
        raise InputError(f"unknown strategy {strategy!r}: use 'greedy' or 'sample'")
    gen = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % (2**31))
    weights = torch.tensor([c.prob for c in dist.candidates])
    if not math.isfinite(float(weights.sum())) or float(weights.sum()) <= 0:
        return dist.candidates[0]
    pick = int(torch.multinomial(weights / weights.sum(), 1, generator=gen))
    return dist.candidates[pick]


def generate_steps(
    lm: LoadedLM,
    text: str,
    steps: int,
    *,
    strategy: str = "greedy",
    temperature: float = 1.0,
    top_k: int = 10,
    seed: int = 0,
    use_chat_template: bool = False,
) -> list[tuple[NextToken, Candidate]]:
    """Repeat (distribution -> choice -> append) `steps` times; each step's distribution is kept for display."""
    steps = max(1, min(int(steps), 64))
    cleaned = clean_text(text, max_chars=20_000)
    ids = encode_prompt(lm, cleaned.text, use_chat_template)
    out = []
    for i in range(steps):
        dist = next_token_distribution(lm, "", temperature=temperature, top_k=top_k, ids=ids)
        choice = choose_token(dist, strategy, seed + i)
        out.append((dist, choice))
        ids = [*ids, choice.token_id]
        if choice.token_id == lm.tokenizer.eos_token_id:
            break
    return out
