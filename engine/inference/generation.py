"""Chapter 7: decoding strategies from scratch — greedy, temperature, top-k, top-p, repetition penalty, beam search.

Every step keeps the candidate distribution (raw and after processing) so the page can show *why* a token was
picked. The filters are tested equal to transformers' logits processors, and greedy/beam search equal
`model.generate(do_sample=False, num_beams=...)` token for token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError, clean_text
from engine.lm.language_model import piece_label, visible
from engine.lm.token_display import group_tokens, token_labels
from engine.models.loading import LoadedLM

STRATEGIES = ("greedy", "sample", "beam")
MAX_NEW_TOKENS = 256  # a lab bound: 256 tokens take 20-40 s on 2 cores
MAX_BEAMS = 8
MAX_TOP_K = 1000
SHOWN_CANDIDATES = 10  # candidates kept per step for the chart


@dataclass(frozen=True)
class DecodingConfig:
    strategy: str = "greedy"  # greedy | sample | beam
    max_new_tokens: int = 16
    temperature: float = 1.0  # sample only; must be > 0 (0 *is* greedy: choose that strategy)
    top_k: int = 0  # sample only; 0 = off
    top_p: float = 1.0  # sample only; in (0, 1], 1 = off
    repetition_penalty: float = 1.0  # all strategies; 1 = off, > 1 discourages tokens already in the text
    num_beams: int = 3  # beam only
    length_penalty: float = 1.0  # beam only: finished score = sum log p / length ** length_penalty
    seed: int = 0  # sample only


def validate(cfg: DecodingConfig, prompt_tokens: int, context_window: int) -> None:
    """Reject settings that cannot work, with a message a learner can act on (InputError is a ValueError)."""
    if cfg.strategy not in STRATEGIES:
        raise InputError("input.unknown_choice", name="strategy", value=cfg.strategy, choices=", ".join(STRATEGIES))
    n = cfg.max_new_tokens
    if not isinstance(n, int) or n < 1:
        raise InputError("input.too_small", name="max new tokens", limit=1, value=n)
    if n > MAX_NEW_TOKENS:
        raise InputError("input.too_large", name="max new tokens", limit=MAX_NEW_TOKENS, value=n)
    if prompt_tokens + n > context_window:
        raise InputError(
            "input.context_overflow", prompt_tokens=prompt_tokens, new_tokens=n, context_window=context_window
        )
    if cfg.strategy == "sample":
        if not cfg.temperature > 0:
            raise InputError("input.temperature_zero", value=cfg.temperature)
        if cfg.temperature > 5:
            raise InputError("input.too_large", name="temperature", limit=5, value=cfg.temperature)
        if not 0 < cfg.top_p <= 1:
            raise InputError("decoding.bad_top_p", value=cfg.top_p)
        if not 0 <= cfg.top_k <= MAX_TOP_K:
            raise InputError("input.out_of_range", name="top-k", low=0, high=MAX_TOP_K, value=cfg.top_k)
    if not 0 < cfg.repetition_penalty <= 10:
        raise InputError("decoding.bad_repetition_penalty", value=cfg.repetition_penalty)
    if cfg.strategy == "beam" and not 1 <= cfg.num_beams <= MAX_BEAMS:
        raise InputError("input.out_of_range", name="number of beams", low=1, high=MAX_BEAMS, value=cfg.num_beams)


# --- logits processors (each a pure function of the logits, tested equal to transformers') -------------------


def apply_repetition_penalty(scores: torch.Tensor, previous_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty (Keskar et al. 2019): a token already in the text gets its score divided by `penalty`
    if positive, multiplied if negative — either way it becomes less likely. scores (B, V), previous_ids (B, T)."""
    if penalty == 1.0:
        return scores
    seen = torch.gather(scores, 1, previous_ids)  # (B, T)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter(1, previous_ids, seen)


def apply_temperature(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide the logits: < 1 sharpens the distribution, > 1 flattens it."""
    return scores / temperature


def top_k_filter(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k highest scores (ties with the k-th are kept too); the rest become -inf. k = 0 is off."""
    if k <= 0 or k >= scores.shape[-1]:
        return scores
    kth_best = torch.topk(scores, k).values[..., -1, None]  # (B, 1)
    return scores.masked_fill(scores < kth_best, float("-inf"))


def top_p_filter(scores: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter (Holtzman et al. 2020): keep the smallest set of most likely tokens whose probability
    reaches p. Equivalently, drop least-likely tokens while their total mass stays ≤ 1 - p (always keep one)."""
    if p >= 1.0:
        return scores
    ascending, order = torch.sort(scores, descending=False)  # (B, V), least likely first
    tail_mass = ascending.softmax(dim=-1).cumsum(dim=-1)  # mass of this token and everything less likely
    drop_sorted = tail_mass <= (1 - p)
    drop_sorted[..., -1:] = False  # the most likely token always stays
    drop = drop_sorted.scatter(1, order, drop_sorted)  # back to vocabulary order
    return scores.masked_fill(drop, float("-inf"))


def process_logits(logits: torch.Tensor, previous_ids: torch.Tensor, cfg: DecodingConfig) -> torch.Tensor:
    """The order transformers uses: repetition penalty, then (sampling only) temperature, top-k, top-p."""
    scores = apply_repetition_penalty(logits, previous_ids, cfg.repetition_penalty)
    if cfg.strategy == "sample":
        scores = apply_temperature(scores, cfg.temperature)
        scores = top_k_filter(scores, cfg.top_k)
        scores = top_p_filter(scores, cfg.top_p)
    return scores


# --- results --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepCandidate:
    token_id: int
    label: str  # whitespace made visible
    prob_raw: float  # softmax of the model's logits
    prob_final: float  # after penalty/temperature/filters, renormalized (0 = filtered out)


@dataclass
class Step:
    index: int
    candidates: list[StepCandidate]  # the most likely raw candidates (plus the chosen one if it was not among them)
    chosen_id: int
    chosen_label: str
    kept: int  # how many tokens survived the filters (vocabulary size when nothing is filtered)
    beams: list[tuple[str, float]] = field(default_factory=list)  # beam search: running beams (text, log-prob)


@dataclass
class GenerationResult:
    strategy: str
    prompt_tokens: int
    new_ids: list[int]
    text: str
    steps: list[Step]
    finish: str  # "eos" | "length" | "cancelled"
    seconds: float
    notes: list[str] = field(default_factory=list)
    finished_beams: list[tuple[str, float]] = field(default_factory=list)  # beam: final hypotheses (text, score)


def encode(lm: LoadedLM, prompt: str, use_chat_template: bool) -> tuple[list[int], list[str]]:
    cleaned = clean_text(prompt, max_chars=50_000)
    tok = lm.tokenizer
    if use_chat_template and getattr(tok, "chat_template", None):
        ids = tok.apply_chat_template(
            [{"role": "user", "content": cleaned.text}], add_generation_prompt=True, tokenize=True
        )
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    else:
        ids = list(tok(cleaned.text, add_special_tokens=True)["input_ids"])
    return ids, [cleaned.note] if cleaned.note else []


def context_window(lm: LoadedLM) -> int:
    return int(getattr(lm.model.config, "max_position_embeddings", 2048))


def _step_record(index: int, raw_logits: torch.Tensor, final_scores: torch.Tensor, chosen: int, tok) -> Step:
    raw = raw_logits.float().softmax(-1)
    final = final_scores.float().softmax(-1)
    top = torch.topk(raw, SHOWN_CANDIDATES).indices.tolist()
    if chosen not in top:
        top.append(chosen)
    # piece_label: a byte piece (a third of a Hangul syllable) reads "⟨EB⟩", never "�"
    cands = [StepCandidate(i, piece_label(tok, i), float(raw[i]), float(final[i])) for i in top]
    kept = int(torch.isfinite(final_scores).sum())
    return Step(index, cands, chosen, piece_label(tok, chosen), kept)


def _label_in_context(steps: list[Step], tok, new_ids: list[int]) -> None:
    """Once the text is known, a chosen byte piece reads as the character it helps form, "바 (1/3)", instead of
    its bare byte "⟨EB⟩" (engine.lm.token_labels); the chosen candidate gets the same label."""
    for step, label in zip(steps, token_labels(tok, new_ids, mark=visible), strict=False):
        step.chosen_label = label
        step.candidates = [replace(c, label=label) if c.token_id == step.chosen_id else c for c in step.candidates]


def readable_text(tok, ids: list[int], skip_special: bool = True) -> str:
    """Generated ids as text, with a character cut off by the length limit shown as its bytes ("⟨EB 8B⟩"), not
    as "�" (engine.lm.group_tokens)."""
    special = set(tok.all_special_ids) if skip_special else set()
    return "".join(g.text for g in group_tokens(tok, [int(i) for i in ids if int(i) not in special]))


@torch.no_grad()
def generate(
    lm: LoadedLM,
    prompt: str,
    cfg: DecodingConfig,
    *,
    use_chat_template: bool = True,
    prompt_ids: list[int] | None = None,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
) -> GenerationResult:
    """Decode step by step with the chosen strategy; `should_stop()` ends the run early with what is done."""
    ids, notes = (list(prompt_ids), []) if prompt_ids is not None else encode(lm, prompt, use_chat_template)
    validate(cfg, len(ids), context_window(lm))
    if cfg.strategy == "beam":
        return _beam_search(lm, ids, cfg, notes, progress, should_stop)
    if cfg.strategy == "greedy" and (cfg.temperature != 1.0 or cfg.top_k or cfg.top_p < 1.0):
        notes.append("greedy decoding ignores temperature, top-k and top-p")
    start = time.perf_counter()
    model, tok, eos = lm.model, lm.tokenizer, lm.tokenizer.eos_token_id
    gen = torch.Generator().manual_seed(int(cfg.seed))
    seq = torch.tensor([ids], device=lm.device)  # (1, T)
    cache, step_input = None, seq
    steps: list[Step] = []
    finish = "length"
    for i in range(cfg.max_new_tokens):
        if should_stop is not None and should_stop():
            finish = "cancelled"
            break
        out = model(step_input, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        logits = out.logits[:, -1, :].float()  # (1, V)
        scores = process_logits(logits, seq, cfg)
        if cfg.strategy == "greedy":
            next_id = int(scores.argmax(-1))
        else:
            next_id = int(torch.multinomial(scores.softmax(-1).cpu(), 1, generator=gen))
        steps.append(_step_record(i, logits[0], scores[0], next_id, tok))
        step_input = torch.tensor([[next_id]], device=lm.device)
        seq = torch.cat([seq, step_input], dim=1)
        progress((i + 1) / cfg.max_new_tokens, f"token {i + 1}/{cfg.max_new_tokens}")
        if next_id == eos:
            finish = "eos"
            break
    new_ids = seq[0, len(ids) :].tolist()
    _label_in_context(steps, tok, new_ids)
    text = readable_text(tok, new_ids)
    return GenerationResult(cfg.strategy, len(ids), new_ids, text, steps, finish, time.perf_counter() - start, notes)


def _beam_search(lm, ids, cfg, notes, progress, should_stop) -> GenerationResult:
    """Beam search as transformers runs it (same candidate count, finishing rule and early-stop heuristic).

    Keep `num_beams` running hypotheses; each step extends every one with every token, and of all
    num_beams × V extensions keeps the 2·num_beams best by total log-probability. Extensions that end (EOS or the
    length limit) and rank among the first num_beams become finished hypotheses, scored sum log p / length^α;
    the best num_beams unfinished ones run on. Stop when no running beam can beat the worst finished one.
    """
    start = time.perf_counter()
    model, tok, eos = lm.model, lm.tokenizer, lm.tokenizer.eos_token_id
    nb, prompt_len = cfg.num_beams, len(ids)
    max_len = prompt_len + cfg.max_new_tokens
    keep = 2 * nb  # transformers: max(2, 1 + number of EOS ids) * num_beams
    alpha = cfg.length_penalty
    # every beam starts as the prompt; only beam 0 counts at first, so the first step does not pick nb copies
    running = [list(ids) for _ in range(nb)]
    running_scores = torch.full((nb,), -1e9)
    running_scores[0] = 0.0
    finished: list[tuple[float, list[int]]] = []  # (length-penalized score, full sequence)
    improvable = True
    cache = None
    step_input = torch.tensor(running, device=lm.device)  # (nb, T): prefill all beams, as transformers does
    steps: list[Step] = []
    finish = "length"
    cur_len = prompt_len
    while True:
        if should_stop is not None and should_stop():
            finish = "cancelled"
            break
        out = model(step_input, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        logits = out.logits[:, -1, :].float()  # (nb, V)
        log_probs = torch.log_softmax(logits, dim=-1)
        log_probs = apply_repetition_penalty(log_probs, torch.tensor(running, device=lm.device), cfg.repetition_penalty)
        total = (log_probs.cpu() + running_scores[:, None]).reshape(-1)  # (nb * V,)
        top_scores, top_idx = torch.topk(total, keep)
        vocab = logits.shape[-1]
        cands = [(float(s), int(i) // vocab, int(i) % vocab) for s, i in zip(top_scores, top_idx, strict=True)]
        ends = [tok_id == eos or cur_len + 1 >= max_len for _, _, tok_id in cands]
        # finished hypotheses: only among the first nb candidates, only while improvement is still possible
        if improvable:
            for rank, ((score, beam, tok_id), end) in enumerate(zip(cands, ends, strict=True)):
                if rank < nb and end:
                    finished.append((score / ((cur_len + 1 - prompt_len) ** alpha), [*running[beam], tok_id]))
            finished = sorted(finished, key=lambda f: -f[0])[:nb]
        # the best nb candidates that did not end carry on (ended ones rank last, as transformers' -1e9 does)
        order = sorted(range(keep), key=lambda r: (ends[r], -cands[r][0]))[:nb]
        beam_idx = [cands[r][1] for r in order]
        running = [[*running[cands[r][1]], cands[r][2]] for r in order]
        running_scores = torch.tensor([cands[r][0] + (-1e9 if ends[r] else 0.0) for r in order])
        best = cands[0]
        rec = _step_record(len(steps), logits[best[1]], log_probs[best[1]], best[2], tok)
        rec.beams = [
            (readable_text(tok, r[prompt_len:], skip_special=False), float(s))
            for r, s in zip(running, running_scores, strict=True)
        ]
        steps.append(rec)
        cache.reorder_cache(torch.tensor(beam_idx, device=lm.device))
        step_input = torch.tensor([[r[-1]] for r in running], device=lm.device)
        cur_len += 1
        progress(min(1.0, (cur_len - prompt_len) / cfg.max_new_tokens), f"step {cur_len - prompt_len}")
        if len(finished) == nb:  # early-stop heuristic (transformers' default early_stopping=False)
            best_possible = float(running_scores[0]) / ((cur_len - prompt_len) ** alpha)
            improvable = improvable and best_possible > min(f[0] for f in finished)
        if not improvable or all(ends):
            finish = "eos" if cur_len < max_len else "length"
            break
    if not finished:  # cancelled before anything finished: report the running beams
        pairs = zip(running, running_scores.tolist(), strict=True)
        finished = [(s / max(1, len(r) - prompt_len) ** alpha, r) for r, s in pairs if s > -1e8]
    best_seq = finished[0][1]
    new_ids = best_seq[prompt_len:]
    text = readable_text(tok, new_ids)
    result = GenerationResult("beam", prompt_len, new_ids, text, steps, finish, time.perf_counter() - start, notes)
    result.finished_beams = [(readable_text(tok, s[prompt_len:]), sc) for sc, s in finished]
    return result
