"""Chapter 7: the KV cache — what it saves (time, measured) and what it costs (memory, measured and by formula).

Without a cache, every new token runs the model over the whole text again; with it, only the new token goes
through and attention reads the keys/values stored for the earlier ones. The stored tensors are real
(`past_key_values`), so their size can be summed byte by byte and compared with
2 · layers · kv_heads · head_dim · tokens · bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache

import torch
import yaml

from engine.core.assets import asset
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError, clean_text, parse_numbers
from engine.models.loading import LoadedLM

ASSET = asset("kv_cache_models.yaml")
BENCH_PROMPT = "Explain in a few paragraphs why the sky is blue and why sunsets are red."
MAX_BENCH_TOKENS = 1024
DTYPE_BYTES = {"fp32": 4, "fp16/bf16": 2, "int8": 1, "int4": 0.5}


# --- the formula ----------------------------------------------------------------------------------------------


def kv_bytes_formula(
    layers: int, kv_heads: int, head_dim: int, tokens: int, bytes_per_value: float, batch: int = 1
) -> float:
    """2 (a key and a value) · layers · kv_heads · head_dim · tokens · bytes per value · batch."""
    return 2 * layers * kv_heads * head_dim * tokens * bytes_per_value * batch


@dataclass(frozen=True)
class AttentionShape:
    name: str
    layers: int
    heads: int  # query heads
    kv_heads: int  # key/value heads: = heads (MHA), 1 (MQA), in between (GQA)
    head_dim: int
    context: int
    source: str = ""
    note: str | dict = ""  # {ko, en} from the asset (a page shows its language), or ""

    @property
    def kind(self) -> str:
        if self.kv_heads == self.heads:
            return "MHA"
        return "MQA" if self.kv_heads == 1 else "GQA"

    def bytes_per_token(self, bytes_per_value: float = 2) -> float:
        return kv_bytes_formula(self.layers, self.kv_heads, self.head_dim, 1, bytes_per_value)


def shape_of(model, name: str = "") -> AttentionShape:
    """The attention shape of a loaded transformers model, from its config."""
    c = model.config
    heads = c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    kv_heads = getattr(c, "num_key_value_heads", None) or heads
    ctx = getattr(c, "max_position_embeddings", 0)
    return AttentionShape(name or c.model_type, c.num_hidden_layers, heads, kv_heads, head_dim, ctx, "config.json")


@lru_cache(maxsize=1)
def reference_models() -> tuple[AttentionShape, ...]:
    raw = yaml.safe_load(ASSET.read_text(encoding="utf-8"))["models"]
    return tuple(AttentionShape(**m) for m in raw)


def kv_calculator(
    tokens: int, batch: int = 1, bytes_per_value: float = 2, models: Iterable[AttentionShape] | None = None
) -> list[dict]:
    """Cache size of each reference model at `tokens` × `batch`, next to what MHA (kv_heads = heads) would need."""
    if not 1 <= tokens <= 10_000_000:
        raise InputError("input.out_of_range", name="tokens", low=1, high=10_000_000, value=tokens)
    if not 1 <= batch <= 100_000:
        raise InputError("input.out_of_range", name="batch", low=1, high=100_000, value=batch)
    rows = []
    for m in models if models is not None else reference_models():
        size = kv_bytes_formula(m.layers, m.kv_heads, m.head_dim, tokens, bytes_per_value, batch)
        mha = kv_bytes_formula(m.layers, m.heads, m.head_dim, tokens, bytes_per_value, batch)
        rows.append(
            {
                "model": m.name,
                "attention": m.kind,
                "layers": m.layers,
                "heads": m.heads,
                "kv_heads": m.kv_heads,
                "head_dim": m.head_dim,
                "kv_bytes_per_token": m.bytes_per_token(bytes_per_value),
                "kv_gib": size / 2**30,
                "mha_gib": mha / 2**30,
                "saving_vs_mha": 1 - size / mha,
                "context": m.context,
                "note": m.note,
                "source": m.source,
            }
        )
    return rows


# --- measuring a real cache -----------------------------------------------------------------------------------


def cache_layers(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, values) per layer, for transformers' Cache objects (5.x `.layers`) and legacy tuples."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return [(k, v) for k, v in cache]


def measure_cache_bytes(cache) -> int:
    """Bytes actually held by the cache tensors: Σ numel · element size over every layer's keys and values."""
    return sum(t.numel() * t.element_size() for kv in cache_layers(cache) for t in kv)


def cache_tokens(cache) -> int:
    keys, _ = cache_layers(cache)[0]
    return int(keys.shape[-2])  # (batch, kv_heads, tokens, head_dim)


@dataclass
class CacheSize:
    tokens: int
    measured_bytes: int
    formula_bytes: int
    shape: AttentionShape
    dtype: str
    tensor_shape: tuple[int, ...]  # one layer's key tensor: (batch, kv_heads, tokens, head_dim)


@torch.no_grad()
def prefill_cache_size(lm: LoadedLM, prompt: str) -> CacheSize:
    """One forward pass over the prompt; the cache it leaves behind, measured and by formula."""
    text = clean_text(prompt, max_chars=20_000).text
    ids = lm.tokenizer(text, add_special_tokens=True)["input_ids"][:MAX_BENCH_TOKENS]
    out = lm.model(torch.tensor([ids], device=lm.device), use_cache=True)
    return _size(lm, out.past_key_values)


def _size(lm: LoadedLM, cache) -> CacheSize:
    shape = shape_of(lm.model, lm.role)
    keys, _ = cache_layers(cache)[0]
    tokens = cache_tokens(cache)
    formula = kv_bytes_formula(
        shape.layers, shape.kv_heads, shape.head_dim, tokens, keys.element_size(), batch=keys.shape[0]
    )
    return CacheSize(
        tokens,
        measure_cache_bytes(cache),
        int(formula),
        shape,
        str(keys.dtype).replace("torch.", ""),
        tuple(keys.shape),
    )


# --- with vs without the cache, timed -------------------------------------------------------------------------


@torch.no_grad()
def cached_step(model, step_input: torch.Tensor, cache):
    """One step with the cache: only `step_input` (the newest token, or the prompt at first) goes through."""
    # logits_to_keep=1: only the last position's logits are needed, in both kinds of step (a fair comparison)
    out = model(step_input, past_key_values=cache, use_cache=True, logits_to_keep=1)
    return int(out.logits[0, -1].argmax()), out.past_key_values  # the cache grew by one position per layer


@torch.no_grad()
def plain_step(model, seq: list[int]) -> int:
    """One step without a cache: the whole text so far goes through the model again."""
    device = next(model.parameters()).device
    logits = model(torch.tensor([seq], device=device), use_cache=False, logits_to_keep=1).logits
    return int(logits[0, -1].argmax())


def greedy_with_cache(model, ids: list[int], new_tokens: int, on_token: Callable[[], None] = lambda: None):
    """Greedy decoding that feeds only the newest token and keeps the keys/values of the earlier ones."""
    device = next(model.parameters()).device
    step_input, cache, out_ids = torch.tensor([ids], device=device), None, []
    for _ in range(new_tokens):
        next_id, cache = cached_step(model, step_input, cache)
        out_ids.append(next_id)
        step_input = torch.tensor([[next_id]], device=device)
        on_token()
    return out_ids, cache


def greedy_without_cache(model, ids: list[int], new_tokens: int, on_token: Callable[[], None] = lambda: None):
    """Greedy decoding that runs the model over the whole text again for every new token."""
    seq, out_ids = list(ids), []
    for _ in range(new_tokens):
        next_id = plain_step(model, seq)
        out_ids.append(next_id)
        seq.append(next_id)
        on_token()
    return out_ids


def timed_pair(model, ids: list[int], new_tokens: int, on_token: Callable[[], None] = lambda: None):
    """Both decoders in lock-step, each step timed on its own: a cached step, then the same step without the
    cache. Interleaving makes the ratio fair on a shared machine whose load drifts during a long run.
    Returns (with-cache seconds, without-cache seconds, with-cache tokens, plain tokens, the cache)."""
    device = next(model.parameters()).device
    step_input, cache, seq = torch.tensor([ids], device=device), None, list(ids)
    with_s = without_s = 0.0
    cached_ids, plain_ids = [], []
    for _ in range(new_tokens):
        start = time.perf_counter()
        next_id, cache = cached_step(model, step_input, cache)
        with_s += time.perf_counter() - start
        cached_ids.append(next_id)
        step_input = torch.tensor([[next_id]], device=device)
        start = time.perf_counter()
        plain_id = plain_step(model, seq)
        without_s += time.perf_counter() - start
        plain_ids.append(plain_id)
        seq.append(plain_id)
        on_token()
    return with_s, without_s, cached_ids, plain_ids, cache


@dataclass
class KVRun:
    new_tokens: int
    with_cache_s: float
    without_cache_s: float
    speedup: float
    kv_bytes_measured: int
    kv_bytes_formula: int
    cache_tokens: int  # prompt + new tokens - 1: the last token's keys/values are never needed
    prompt_tokens: int
    same_tokens: bool  # both loops chose the same tokens

    def as_dict(self) -> dict:
        return asdict(self)


def parse_counts(text: str | Iterable[int]) -> list[int]:
    """'64,256' -> [64, 256], with learner-readable errors for zero, huge or non-numbers."""
    return parse_numbers(text, int, name="new tokens", min_value=1, max_value=MAX_BENCH_TOKENS)


def kv_bench(
    lm: LoadedLM,
    new_tokens: Iterable[int] = (64, 256),
    prompt: str = BENCH_PROMPT,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
    on_result: Callable[[KVRun], None] | None = None,
) -> list[KVRun]:
    """Time greedy generation with and without the cache for each count (in lock-step, see timed_pair). A
    cancelled run returns the finished counts (the one in progress is dropped); `on_result` sees each row as
    soon as it is measured."""
    counts = parse_counts(new_tokens)
    ids = lm.tokenizer(clean_text(prompt).text, add_special_tokens=True)["input_ids"]
    limit = getattr(lm.model.config, "max_position_embeddings", 2048)
    if len(ids) + max(counts) > limit:
        raise InputError("kv.context_overflow", prompt_tokens=len(ids), new_tokens=max(counts), context_window=limit)
    total = sum(counts)
    done = 0
    rows: list[KVRun] = []

    def on_token():
        nonlocal done
        done += 1
        if should_stop is not None and should_stop():
            raise Cancelled("kv bench")
        progress(done / total, f"{done}/{total} tokens generated, each with and without the cache")

    try:
        greedy_with_cache(lm.model, ids, 2)  # warm-up: first-call allocations are not part of either timing
        for n in counts:
            with_s, without_s, cached_ids, plain_ids, cache = timed_pair(lm.model, ids, n, on_token)
            size = _size(lm, cache)
            rows.append(
                KVRun(
                    n,
                    round(with_s, 4),
                    round(without_s, 4),
                    round(without_s / with_s, 3),
                    size.measured_bytes,
                    size.formula_bytes,
                    size.tokens,
                    len(ids),
                    cached_ids == plain_ids,
                )
            )
            if on_result is not None:
                on_result(rows[-1])
    except Cancelled:
        pass
    return rows
