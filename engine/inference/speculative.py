"""Speculative decoding from scratch: a cheap drafter guesses k tokens, the target model checks them in one pass.

Leviathan, Kalman & Matias, "Fast Inference from Transformers via Speculative Decoding" (ICML 2023,
arXiv:2211.17192) and Chen et al., "Accelerating Large Language Model Decoding with Speculative Sampling"
(arXiv:2302.01318) give the same accept/reject rule. For each drafted token x with draft probability q(x) and
target probability p(x):

    accept x with probability min(1, p(x) / q(x));
    on the first rejection, sample instead from the residual  norm(max(0, p - q))  and stop;
    if all k drafts are accepted, sample one bonus token from the target's next distribution.

The output is distributed *exactly* as sampling from the target alone (the tests check it with a chi-square
test), and with greedy decoding the output is token-for-token the target's greedy output. The speedup comes
only from the target checking k + 1 positions in one forward pass: it is real when drafts are cheap and
usually right, and a slowdown when they are not.

    accept_reject            the rule above on explicit distributions (numpy)
    toy_experiment           many samples from small explicit p and q: empirical vs target frequencies
    PromptLookupDrafter      drafts by copying what followed the last n-gram earlier in the text (no model)
    EarlyExitDrafter         the first n layers of the target + its final norm and LM head (same vocabulary)
    generate                 plain or speculative generation with a KV cache, timed, with acceptance stats
    compare_methods          plain vs prompt lookup vs early exit on the same prompt, measured in one run
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError

__all__ = [
    "EarlyExitDrafter",
    "GenerationResult",
    "PromptLookupDrafter",
    "accept_reject",
    "compare_methods",
    "expected_tokens_per_step",
    "generate",
    "toy_experiment",
]


# ---------------------------------------------------------------------------------------------------------
# The accept/reject rule on explicit distributions
# ---------------------------------------------------------------------------------------------------------


def _sample(probs: np.ndarray, rng: np.random.Generator) -> int:
    return int(rng.choice(len(probs), p=probs / probs.sum()))


def accept_reject(p: np.ndarray, q: np.ndarray, draft: list[int], rng: np.random.Generator) -> tuple[list[int], int]:
    """Verify `draft` (k tokens sampled from q) against the target p.

    p: (k + 1, V) target distributions — row i is the target's next-token distribution given the prefix plus
       draft[:i]; row k is the bonus distribution after all drafts.
    q: (k, V) draft distributions the drafts were sampled from (a one-hot row for a deterministic drafter).
    Returns (emitted tokens, number of drafts accepted); exactly accepted + 1 tokens are emitted.
    """
    k = len(draft)
    if p.shape[0] != k + 1 or q.shape[0] != k:
        raise ValueError("p needs k + 1 rows and q k rows")
    out: list[int] = []
    for i, x in enumerate(draft):
        px, qx = float(p[i, x]), float(q[i, x])
        if qx <= 0:
            raise ValueError("a drafted token must have q(x) > 0")
        if rng.random() < min(1.0, px / qx):
            out.append(x)
            continue
        residual = np.maximum(p[i] - q[i], 0.0)
        if residual.sum() <= 0:  # p == q exactly: cannot happen after a rejection, but stay safe
            residual = p[i].copy()
        out.append(_sample(residual, rng))
        return out, i
    out.append(_sample(p[k], rng))
    return out, k


def expected_tokens_per_step(alpha: float, k: int) -> float:
    """Leviathan et al., eq. (1): E[tokens per target call] = (1 - α^(k+1)) / (1 - α) for acceptance rate α."""
    if not 0 <= alpha <= 1 or k < 0:
        raise InputError("speculative.bad_alpha", alpha=alpha, k=k)
    return float(k + 1) if alpha == 1 else (1 - alpha ** (k + 1)) / (1 - alpha)


def toy_experiment(p: list[float], q: list[float], n_samples: int = 20_000, k: int = 1, seed: int = 0) -> dict:
    """Draw n_samples first tokens with speculative sampling from fixed distributions p (target) and q (draft).

    The same p and q are used at every position (a context-free toy), so every emitted token — accepted draft,
    residual sample or bonus — should follow p. Returns per-token frequencies, the acceptance rate measured and
    predicted (α = Σ min(p, q) = 1 − total variation distance) and a chi-square test of the emitted first
    tokens against p (a large p-value means "no evidence the distribution changed").
    """
    from scipy.stats import chisquare

    pa, qa = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if pa.shape != qa.shape or pa.ndim != 1 or len(pa) < 2 or len(pa) > 64:
        raise InputError("speculative.bad_lengths")
    if (pa < 0).any() or (qa < 0).any() or pa.sum() <= 0 or qa.sum() <= 0:
        raise InputError("speculative.bad_probabilities")
    if not 100 <= n_samples <= 1_000_000 or not 1 <= k <= 16:
        raise InputError("speculative.bad_samples", n_samples=n_samples, k=k)
    pa, qa = pa / pa.sum(), qa / qa.sum()
    rng = np.random.default_rng(seed)
    V = len(pa)
    first = np.zeros(V, dtype=np.int64)
    draft_only = np.zeros(V, dtype=np.int64)
    accepted = verified = emitted = 0
    P, Q = np.tile(pa, (k + 1, 1)), np.tile(qa, (k, 1))
    for _ in range(n_samples):
        draft = [int(rng.choice(V, p=qa)) for _ in range(k)]
        out, acc = accept_reject(P, Q, draft, rng)
        first[out[0]] += 1
        draft_only[draft[0]] += 1
        accepted += acc
        verified += acc + (1 if acc < k else 0)  # drafts after the first rejection are never judged
        emitted += len(out)
    expected = pa * n_samples
    support = expected > 0
    if (first[~support] > 0).any():  # a token with p = 0 was emitted: the distribution is certainly wrong
        chi2, pvalue = float("inf"), 0.0
    else:
        chi2, pvalue = chisquare(first[support], expected[support])
    alpha = float(np.minimum(pa, qa).sum())
    return {
        "tokens": list(range(V)),
        "target": pa.tolist(),
        "draft": qa.tolist(),
        "speculative_freq": (first / n_samples).tolist(),
        "draft_freq": (draft_only / n_samples).tolist(),
        "acceptance_measured": accepted / verified,
        "acceptance_predicted": alpha,
        "tokens_per_step_measured": emitted / n_samples,
        "tokens_per_step_predicted": expected_tokens_per_step(alpha, k),
        "chi2": float(chi2),
        "p_value": float(pvalue),
        "n_samples": n_samples,
        "k": k,
        "seed": seed,
    }


# ---------------------------------------------------------------------------------------------------------
# Drafters for a real model
# ---------------------------------------------------------------------------------------------------------


class PromptLookupDrafter:
    """Prompt lookup decoding (Saxena, 2023; `prompt_lookup_num_tokens` in transformers): find the latest
    earlier occurrence of the last n tokens (n = max_ngram down to 1) and propose the k tokens that followed it.
    Costs no model call; shines when the answer copies from the prompt (editing, extraction, code)."""

    name = "prompt lookup"

    def __init__(self, max_ngram: int = 3):
        if not 1 <= max_ngram <= 8:
            raise InputError("speculative.bad_max_ngram", value=max_ngram)
        self.max_ngram = max_ngram

    def reset(self) -> None:
        pass

    def propose(self, tokens: list[int], k: int, temperature: float, rng) -> tuple[list[int], np.ndarray | None]:
        n_tok = len(tokens)
        for n in range(min(self.max_ngram, n_tok - 1), 0, -1):
            tail = tokens[-n:]
            for start in range(n_tok - n - 1, -1, -1):  # latest match first, never the tail itself
                if tokens[start : start + n] == tail:
                    follow = tokens[start + n : start + n + k]
                    if follow:
                        return follow, None  # None: deterministic draft (q is one-hot)
        return [], None


class EarlyExitDrafter:
    """Self-speculative drafting: run only the first `n_layers` decoder layers of the target, then its final
    norm and LM head. Same weights, same vocabulary, no training — but the exit was never trained to predict,
    so acceptance is modest. Keeps its own KV cache and crops it back after a rejection."""

    def __init__(self, lm, n_layers: int = 8):
        total = lm.model.config.num_hidden_layers
        if not 1 <= n_layers < total:
            raise InputError("speculative.bad_exit_layers", limit=total - 1, value=n_layers)
        self.lm, self.n_layers = lm, n_layers
        self.name = f"early exit ({n_layers}/{total} layers)"
        self.reset()

    def reset(self) -> None:
        from transformers import DynamicCache

        self.cache = DynamicCache(config=self.lm.model.config)
        self.cached: list[int] = []

    def _forward(self, ids: list[int]) -> torch.Tensor:
        """Logits (V,) after feeding `ids` on top of the cache: embed -> first n layers -> norm -> lm_head."""
        from transformers.masking_utils import create_causal_mask

        model = self.lm.model
        inner = model.model
        x = torch.tensor([ids])
        past = self.cache.get_seq_length()
        pos = torch.arange(past, past + len(ids))[None]
        h = inner.embed_tokens(x)
        mask = create_causal_mask(
            config=inner.config, inputs_embeds=h, attention_mask=None, past_key_values=self.cache, position_ids=pos
        )
        pe = inner.rotary_emb(h, position_ids=pos)
        for layer in inner.layers[: self.n_layers]:
            h = layer(
                h,
                attention_mask=mask,
                position_embeddings=pe,
                position_ids=pos,
                past_key_values=self.cache,
                use_cache=True,
            )
            h = h[0] if isinstance(h, tuple) else h
        self.cached.extend(ids)
        return model.lm_head(inner.norm(h[:, -1]))[0]

    def propose(self, tokens: list[int], k: int, temperature: float, rng) -> tuple[list[int], np.ndarray | None]:
        common = 0
        for a, b in zip(self.cached, tokens, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(tokens) - 1)  # always re-feed at least the last token to get its logits
        if common < len(self.cached):
            _crop_to(self.cache, common)
            self.cached = self.cached[:common]
        draft: list[int] = []
        rows = []
        with torch.no_grad():
            logits = self._forward(tokens[common:])
            for i in range(k):
                probs = _probs(logits, temperature)
                x = int(probs.argmax()) if temperature == 0 else _sample(probs, rng)
                draft.append(x)
                rows.append(probs)
                if i < k - 1:
                    logits = self._forward([x])
        return draft, np.stack(rows)


def _crop_to(cache, length: int) -> None:
    """Keep the first `length` positions of a DynamicCache (crop(-n) removes n; works across versions)."""
    remove = cache.get_seq_length() - length
    if remove > 0:
        cache.crop(-remove)


def _probs(logits: torch.Tensor, temperature: float) -> np.ndarray:
    """float64 next-token distribution; temperature 0 means greedy (a one-hot on the argmax)."""
    if temperature == 0:
        out = np.zeros(logits.shape[-1])
        out[int(logits.argmax())] = 1.0
        return out
    return torch.softmax(logits.double() / temperature, dim=-1).numpy()


# ---------------------------------------------------------------------------------------------------------
# Generation: plain and speculative, one code path
# ---------------------------------------------------------------------------------------------------------


@dataclass
class GenerationResult:
    method: str
    tokens: list[int]  # new tokens only
    text: str
    seconds: float
    target_calls: int  # forward passes of the target model after the prompt
    drafted: int = 0  # draft tokens proposed
    accepted: int = 0
    verified: int = 0  # draft tokens the target actually judged (those after a rejection are never looked at)
    k: int = 0
    accepted_per_step: list[int] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return len(self.tokens) / self.seconds if self.seconds > 0 else 0.0

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted / judged drafts: an estimate of the per-token acceptance α of Leviathan et al."""
        return self.accepted / self.verified if self.verified else None

    def row(self, baseline_s: float | None = None) -> dict:
        return {
            "method": self.method,
            "k": self.k,
            "new_tokens": len(self.tokens),
            "seconds": self.seconds,
            "tokens_per_s": self.tokens_per_s,
            "target_calls": self.target_calls,
            "tokens_per_call": len(self.tokens) / max(1, self.target_calls),
            "drafted": self.drafted,
            "accepted": self.accepted,
            "acceptance_rate": self.acceptance_rate,
            "speedup": (baseline_s / self.seconds) if baseline_s and self.seconds > 0 else None,
        }


def _prompt_ids(lm, prompt: str, use_chat_template: bool) -> list[int]:
    tok = lm.tokenizer
    if use_chat_template and getattr(tok, "chat_template", None):
        ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        return [int(i) for i in ids]
    return [int(i) for i in tok(prompt).input_ids]


def generate(
    lm,
    prompt: str,
    max_new_tokens: int = 64,
    drafter=None,
    k: int = 4,
    temperature: float = 0.0,
    seed: int = 0,
    use_chat_template: bool = True,
    should_stop=lambda: False,
) -> GenerationResult:
    """Generate with the target `lm`, speculatively when a drafter is given (plain decoding otherwise).

    The target's KV cache always covers every token but the last; each step feeds [last] + draft (k + 1
    tokens) in ONE forward pass, reads the k + 1 next-token distributions, runs `accept_reject`, and crops
    the cache back to the accepted prefix. Stops at max_new_tokens or the end-of-sequence token.
    """
    from transformers import DynamicCache

    if not 1 <= max_new_tokens <= 512:
        raise InputError("speculative.bad_max_new_tokens", value=max_new_tokens)
    if not 0 <= temperature <= 2:
        raise InputError("serving.bad_temperature", value=temperature)
    if drafter is not None and not 1 <= k <= 16:
        raise InputError("speculative.bad_k", value=k)
    if not prompt.strip():
        raise InputError("speculative.empty_prompt")
    model, tok = lm.model, lm.tokenizer
    rng = np.random.default_rng(seed)
    tokens = _prompt_ids(lm, prompt, use_chat_template)[-1024:]
    n_prompt = len(tokens)
    eos = {tok.eos_token_id} if tok.eos_token_id is not None else set()
    res = GenerationResult(drafter.name if drafter else "plain", [], "", 0.0, 0, k=k if drafter else 0)
    if drafter is not None:
        drafter.reset()
    cache = DynamicCache(config=model.config)
    start = time.perf_counter()
    with torch.no_grad():
        if n_prompt > 1:
            model(torch.tensor([tokens[:-1]]), past_key_values=cache, use_cache=True)
        while len(tokens) - n_prompt < max_new_tokens:
            if should_stop():
                raise Cancelled("stopped")
            room = max_new_tokens - (len(tokens) - n_prompt)
            draft, q = ([], None)
            if drafter is not None and room > 1:
                draft, q = drafter.propose(tokens, min(k, room - 1), temperature, rng)
            logits = model(torch.tensor([[tokens[-1], *draft]]), past_key_values=cache, use_cache=True).logits[0]
            res.target_calls += 1
            p = np.stack([_probs(row, temperature) for row in logits])  # (len(draft) + 1, V)
            if q is None:  # deterministic draft: q is one-hot on each drafted token
                q = np.zeros((len(draft), p.shape[1]))
                q[np.arange(len(draft)), draft] = 1.0
            out, acc = accept_reject(p, q, draft, rng)
            res.drafted += len(draft)
            res.accepted += acc
            res.verified += acc + (1 if acc < len(draft) else 0)
            if draft:
                res.accepted_per_step.append(acc)
            # cache now covers tokens + [last] + draft; keep the prefix up to the last accepted draft
            _crop_to(cache, len(tokens) + acc)
            for x in out:
                tokens.append(x)
                if x in eos:
                    break
            if tokens[-1] in eos:
                break
    res.seconds = time.perf_counter() - start
    res.tokens = tokens[n_prompt : n_prompt + max_new_tokens]
    res.text = tok.decode(res.tokens, skip_special_tokens=True)
    return res


COPY_PROMPT = (
    'Here is a short text:\n"The KV cache stores the keys and values of every previous token, so each new token '
    "only needs one forward pass. PagedAttention stores that cache in fixed-size blocks, like pages of virtual "
    'memory."\nRepeat the text above word for word.'
)


def compare_methods(
    lm,
    prompt: str = COPY_PROMPT,
    max_new_tokens: int = 48,
    k: int = 4,
    exit_layers: int = 8,
    temperature: float = 0.0,
    seed: int = 0,
    repeats: int = 1,
    progress: ProgressFn = null_progress,
    should_stop=lambda: False,
) -> list[dict]:
    """Plain, prompt-lookup and early-exit speculative generation of the same prompt, timed in one run.

    Runs are interleaved (plain, lookup, early exit, plain, ...) so a noisy neighbour slows them alike; each
    method's time is its fastest of `repeats` runs (noise on a shared CPU only ever adds time). Speedup = plain
    time / method time. With
    temperature 0 the three texts must be identical (the 'same_as_plain' column says whether they are).
    """
    if not 1 <= repeats <= 5:
        raise InputError("speculative.bad_repeats", value=repeats)
    methods = [("plain", None), ("lookup", PromptLookupDrafter()), ("early", EarlyExitDrafter(lm, exit_layers))]
    runs: dict[str, list[GenerationResult]] = {m: [] for m, _ in methods}
    total = repeats * len(methods)
    done = 0
    generate(lm, "Hello", max_new_tokens=2)  # warm-up: first calls pay for allocation
    for _ in range(repeats):
        for name, drafter in methods:
            progress(done / total, f"{name} ({done + 1}/{total})")
            runs[name].append(
                generate(lm, prompt, max_new_tokens, drafter, k, temperature, seed, should_stop=should_stop)
            )
            done += 1
    progress(1.0, "done")

    def fastest(rs: list[GenerationResult]) -> GenerationResult:
        return min(rs, key=lambda r: r.seconds)

    base = fastest(runs["plain"])
    rows = []
    for name, _ in methods:
        r = fastest(runs[name])
        row = r.row(base.seconds)
        row.update(text=r.text, same_as_plain=r.tokens == base.tokens, repeats=repeats, temperature=temperature)
        rows.append(row)
    return rows
