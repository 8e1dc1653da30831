"""Chapter 7: bitsandbytes quantization of `chat` (int8, NF4, FP4) next to fp32, measured.

Memory (bytes actually held), decoding speed, perplexity on a fixed Korean and English text, and the answer each
precision gives to the same prompt. bitsandbytes ≥ 0.45 runs these kernels on CPU too (checked here: 0.50.2).
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import torch
import yaml

from engine.core.assets import asset
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.inference.kv_cache import greedy_with_cache
from engine.models.loading import converted_dir, load_tokenizer

PRECISIONS = ("fp32", "int8", "nf4", "fp4")
TEXTS = asset("lighter_models_texts.yaml")
ANSWER_PROMPT = "What is the capital of France? Answer in one sentence."
SPEED_TOKENS = 24


@lru_cache(maxsize=1)
def eval_texts() -> dict[str, dict[str, str]]:
    """{name: {text, source}} — the fixed texts shipped in assets/lighter_models_texts.yaml."""
    return yaml.safe_load(TEXTS.read_text(encoding="utf-8"))


def quantization_config(precision: str):
    """The BitsAndBytesConfig for a precision (None for fp32)."""
    from transformers import BitsAndBytesConfig

    if precision == "fp32":
        return None
    if precision == "int8":
        # LLM.int8(): per-row absmax int8 weights; outlier input features stay in 16-bit (Dettmers et al. 2022)
        return BitsAndBytesConfig(load_in_8bit=True)
    if precision in ("nf4", "fp4"):
        # 4-bit blocks of 64 weights with one absmax each; NF4 places its 16 levels at normal quantiles
        return BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=precision, bnb_4bit_compute_dtype=torch.float32
        )
    raise InputError("compression.unknown_precision", value=precision, choices=", ".join(PRECISIONS))


def load_precision(precision: str, role: str = "chat"):
    """`role`'s model at the given precision, quantized on load from the converted safetensors directory."""
    from transformers import AutoModelForCausalLM

    config = quantization_config(precision)
    if precision == "int8":  # bitsandbytes logs "inputs will be cast to float16" on every forward pass on CPU
        logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)
    source = converted_dir(role)
    if not (source / "config.json").exists():
        from engine.models.loading import load_causal_lm

        load_causal_lm(role)  # builds the safetensors cache once
    kwargs = {"quantization_config": config, "device_map": "cpu"} if config is not None else {}
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kwargs)
    if config is not None and precision != "int8":
        from engine.training.lora import guard_bnb_cpu_packing

        guard_bnb_cpu_packing(model)
    return model.eval()


def _quant_state_bytes(module) -> int:
    """Bytes of the scales bitsandbytes keeps outside parameters (4-bit absmax blocks, int8 row scales)."""
    total = 0
    weight = getattr(module, "weight", None)
    state = getattr(weight, "quant_state", None)
    if state is not None:  # Linear4bit
        for name in ("absmax", "code", "offset"):
            t = getattr(state, name, None)
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
        nested = getattr(state, "state2", None)
        if nested is not None:
            for name in ("absmax", "code"):
                t = getattr(nested, name, None)
                if isinstance(t, torch.Tensor):
                    total += t.numel() * t.element_size()
    scb = getattr(weight, "SCB", None)
    if isinstance(scb, torch.Tensor) and not isinstance(scb, torch.nn.Parameter):  # Linear8bitLt row scales
        total += scb.numel() * scb.element_size()
    return total


def model_bytes(model) -> dict[str, int]:
    """Memory held by the weights: parameters + buffers (as get_memory_footprint) plus quantization scales."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    scales = sum(_quant_state_bytes(m) for m in model.modules())
    return {
        "params_buffers": params + buffers,
        "quant_scales": scales,
        "total": params + buffers + scales,
        "get_memory_footprint": int(model.get_memory_footprint()),
    }


@torch.no_grad()
def perplexity(model, tokenizer, text: str, max_tokens: int = 1024) -> float:
    """exp(mean negative log-likelihood of each token given the ones before it) — lower is better."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"][:max_tokens]
    if len(ids) < 2:
        raise InputError("compression.perplexity_short")
    input_ids = torch.tensor([ids])
    loss = model(input_ids, labels=input_ids).loss
    return float(math.exp(float(loss)))


def chat_ids(tokenizer, prompt: str) -> list[int]:
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
    )
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


@dataclass
class PrecisionResult:
    precision: str
    bytes: int  # parameters + buffers + quantization scales
    footprint_bytes: int  # transformers' model.get_memory_footprint() (parameters + buffers only)
    tokens_per_s: float
    perplexity_ko: float
    perplexity_en: float
    answer: str  # greedy answer to ANSWER_PROMPT, for the side-by-side view
    load_s: float
    linear_layers: dict[str, int] = field(default_factory=dict)  # e.g. {"Linear4bit": 210, "Embedding": 1}

    def as_dict(self) -> dict:
        return asdict(self)


def measure_precision(
    precision: str,
    tokenizer,
    role: str = "chat",
    speed_tokens: int = SPEED_TOKENS,
    progress: ProgressFn = null_progress,
) -> PrecisionResult:
    start = time.perf_counter()
    progress(0.0, f"{precision}: loading and quantizing")
    model = load_precision(precision, role)
    load_s = time.perf_counter() - start
    try:
        size = model_bytes(model)
        progress(0.4, f"{precision}: perplexity")
        texts = eval_texts()
        ppl_ko = perplexity(model, tokenizer, texts["perplexity_ko"]["text"])
        ppl_en = perplexity(model, tokenizer, texts["perplexity_en"]["text"])
        progress(0.7, f"{precision}: decoding speed")
        ids = chat_ids(tokenizer, ANSWER_PROMPT)
        greedy_with_cache(model, ids, 2)  # warm-up
        t0 = time.perf_counter()
        out_ids, _ = greedy_with_cache(model, ids, speed_tokens)
        tps = speed_tokens / (time.perf_counter() - t0)
        eos = tokenizer.eos_token_id
        answer_ids = out_ids[: out_ids.index(eos)] if eos in out_ids else out_ids
        kinds: dict[str, int] = {}
        for m in model.modules():
            name = type(m).__name__
            if name.startswith(("Linear", "Embedding")):
                kinds[name] = kinds.get(name, 0) + 1
        return PrecisionResult(
            precision,
            size["total"],
            size["get_memory_footprint"],
            round(tps, 3),
            round(ppl_ko, 4),
            round(ppl_en, 4),
            tokenizer.decode(answer_ids),
            round(load_s, 2),
            kinds,
        )
    finally:
        del model
        gc.collect()


def quant_bench(
    precisions: Iterable[str] = PRECISIONS,
    role: str = "chat",
    speed_tokens: int = SPEED_TOKENS,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
    on_result: Callable[[PrecisionResult], None] | None = None,
) -> list[PrecisionResult]:
    """Measure each precision in turn (one model in memory at a time); a cancelled run keeps the finished ones."""
    precisions = list(precisions)
    for p in precisions:
        quantization_config(p)  # validate names before the long part
    if not 1 <= speed_tokens <= 256:
        raise InputError("compression.speed_tokens", value=speed_tokens)
    tokenizer = load_tokenizer(role)
    results = []
    for i, p in enumerate(precisions):
        if should_stop is not None and should_stop():
            break

        def sub(fraction: float, message: str, i=i) -> None:
            progress((i + fraction) / len(precisions), message)

        results.append(measure_precision(p, tokenizer, role, speed_tokens, sub))
        if on_result is not None:
            on_result(results[-1])
    progress(1.0, "done")
    return results


def relative_to(results: list[PrecisionResult], base: str = "fp32") -> list[dict]:
    """Each precision as a fraction of the baseline: memory ratio, speed ratio, perplexity change (%)."""
    ref = next((r for r in results if r.precision == base), None)
    rows = []
    for r in results:
        row = {
            "precision": r.precision,
            "MB": r.bytes / 1e6,
            "tokens_per_s": r.tokens_per_s,
            "perplexity_ko": r.perplexity_ko,
            "perplexity_en": r.perplexity_en,
        }
        if ref is not None:
            row.update(
                memory_vs_fp32=r.bytes / ref.bytes,
                speed_vs_fp32=r.tokens_per_s / ref.tokens_per_s,
                ppl_ko_change_pct=100 * (r.perplexity_ko / ref.perplexity_ko - 1),
                ppl_en_change_pct=100 * (r.perplexity_en / ref.perplexity_en - 1),
            )
        rows.append(row)
    return rows
