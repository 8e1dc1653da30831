"""Chapter 1: a language model is a next-token distribution. Look at it, pick from it, append, repeat."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from engine.core.textinput import InputError, clean_text
from engine.lm.token_display import REPLACEMENT, raw_bytes, token_labels
from engine.models.loading import LoadedLM

MAX_PROMPT_TOKENS = 512  # keeps one forward pass well under a second on 2 cores
MAX_TOP_K = 50


@dataclass(frozen=True)
class Candidate:
    token_id: int
    text: str  # decoded piece, exactly as it would be appended
    label: str  # the piece made visible for charts: spaces as ␣, newlines as ↵, byte pieces as ⟨EC⟩
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
    ids: list[int] = field(default_factory=list)  # the prompt's token ids the distribution was computed from


def visible(piece: str) -> str:
    """Make whitespace visible so ' the' and 'the' do not look identical on a chart."""
    return piece.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "∅"


def piece_label(tokenizer, token_id: int) -> str:
    """A candidate as a learner reads it. A whole piece shows its text; a byte piece (part of a character, which
    decodes alone to `�`) shows the text it starts with and its bytes: " ì" of SmolLM2 -> "␣⟨EC⟩" (the first of
    the three UTF-8 bytes of a Hangul syllable)."""
    piece = tokenizer.decode([token_id])
    if REPLACEMENT not in piece:
        return visible(piece)
    data = raw_bytes(tokenizer.convert_ids_to_tokens(token_id))
    if data is None:
        return visible(piece.replace(REPLACEMENT, "⟨?⟩"))
    cut = len(data)  # the longest start that is whole characters; the rest are bytes of an unfinished one
    while cut > 0:
        try:
            head = data[:cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            cut -= 1
    else:
        head = ""
    return (visible(head) if head else "") + "⟨" + data[cut:].hex(" ").upper() + "⟩"


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
        candidates.append(Candidate(idx, piece, piece_label(lm.tokenizer, idx), float(probs[idx]), float(logits[idx])))
    return NextToken(candidates, entropy, len(ids), dropped, temperature, notes, list(ids))


@dataclass(frozen=True)
class Appendable:
    text: str  # what is appended to the prompt: whole characters only
    label: str  # the same, made visible
    extra_tokens: int  # greedy tokens added after the chosen one to finish its character (0 for a whole piece)


MAX_CHARACTER_TOKENS = 4  # a character is at most 4 UTF-8 bytes, so at most 3 more byte pieces finish it


@torch.no_grad()
def appendable(lm: LoadedLM, dist: NextToken, choice: Candidate) -> Appendable:
    """The text to append for `choice`. A prompt is text, and a byte piece alone is no text (it would be
    appended as `�`), so a byte piece is completed greedily (the most likely next byte, as greedy decoding would)
    until the bytes form a character; one forward pass per added token, only for byte pieces."""
    if REPLACEMENT not in choice.text:
        return Appendable(choice.text, choice.label, 0)
    tail = [choice.token_id]
    while len(tail) < MAX_CHARACTER_TOKENS:
        logits = lm.model(torch.tensor([[*dist.ids, *tail]], device=lm.device)).logits[0, -1]
        tail.append(int(logits.argmax()))
        text = lm.tokenizer.decode(tail)
        if REPLACEMENT not in text:
            return Appendable(text, visible(text), len(tail) - 1)
    return Appendable("", choice.label, 0)  # bytes that form no character: nothing readable to append


def choose_token(dist: NextToken, strategy: str = "greedy", seed: int | None = 0) -> Candidate:
    """Greedy takes the most likely candidate; 'sample' draws among the shown top-k, renormalized.

    Sampling only among the top-k is exactly top-k sampling, so what the learner sees is what is drawn from.
    """
    if strategy == "greedy" or dist.temperature == 0.0:
        return dist.candidates[0]
    if strategy != "sample":
        raise InputError("decoding.unknown_lm_strategy", value=strategy)
    gen = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % (2**31))
    weights = torch.tensor([c.prob for c in dist.candidates])
    if not math.isfinite(float(weights.sum())) or float(weights.sum()) <= 0:
        return dist.candidates[0]
    pick = int(torch.multinomial(weights / weights.sum(), 1, generator=gen))
    return dist.candidates[pick]


@dataclass(frozen=True)
class StepRow:
    step: int
    token: str  # the chosen token; a byte piece shows the character its group forms, "서 (1/2)"
    prob: float  # rounded to 4 decimals
    top3: str  # the three likeliest candidates with their probabilities


def steps_view(lm: LoadedLM, steps: list[tuple[NextToken, Candidate]]) -> tuple[str, list[StepRow]]:
    """The continuation generated by `generate_steps` (decoded as a whole, so byte pieces join into characters)
    and one row per step."""
    ids = [c.token_id for _, c in steps]
    labels = [visible(x) for x in token_labels(lm.tokenizer, ids)]
    rows = [
        StepRow(i + 1, labels[i], round(c.prob, 4), " | ".join(f"{x.label} {x.prob:.0%}" for x in d.candidates[:3]))
        for i, (d, c) in enumerate(steps)
    ]
    return lm.tokenizer.decode(ids, skip_special_tokens=True), rows


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
