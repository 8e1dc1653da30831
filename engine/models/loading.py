"""Loading models for in-process work (logits, attention, gradients).

GGUF weights are quantized; transformers dequantizes them on load, which takes 24 s (SmolLM2) to 64 s (Gemma)
on 2 cores. So the first load converts once to a safetensors directory under LLMLAB_CACHE and every later load
reads that (≈0.1–1 s). The conversion is written to a temporary directory and renamed, so a cancelled or
concurrent first load never leaves a half-written cache.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from transformers.utils import logging as hf_logging

from engine.core.config import get_settings
from engine.core.progress import ProgressFn, null_progress
from engine.models.registry import ROLES, SHA256, ModelUnavailable, ResolvedModel, resolve

# Loading shows our own progress (a callback); transformers' tqdm bars would only clutter CLI and logs.
hf_logging.disable_progress_bar()


@dataclass
class LoadedLM:
    role: str
    model: object  # transformers PreTrainedModel
    tokenizer: object  # transformers tokenizer
    resolved: ResolvedModel
    device: str
    load_seconds: float


def converted_dir(role: str) -> Path:
    return get_settings().cache_dir / "models" / f"{role}-{SHA256[role][:12]}"


def _convert_gguf(resolved: ResolvedModel, progress: ProgressFn) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = converted_dir(resolved.role)
    if (target / "config.json").exists():
        return target
    gguf = resolved.gguf_path()
    progress(0.05, f"dequantizing {gguf.name} once (about a minute on 2 cores)")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    # The weights are now plain float32 tensors; transformers still tags the model as "gguf-quantized" and
    # refuses to save it, so drop the tag: what we save is the dequantized model, which reloads exactly.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    progress(0.8, "saving the safetensors cache")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(1.0, "converted")
    return target


def load_causal_lm(role: str, progress: ProgressFn = null_progress, device: str | None = None) -> LoadedLM:
    """The role's model and tokenizer, ready for logits and attention (eager attention so weights are visible)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = resolve(role, progress)
    if resolved.spec.kind != "causal-lm":
        raise ModelUnavailable(f"role {role!r} is a {resolved.spec.kind}, not a causal language model")
    source = resolved.spec.hub_id if resolved.source == "online" else _convert_gguf(resolved, progress)
    device = device or get_settings().device
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(source)
    # eager attention: SDPA kernels do not return attention weights, and the lessons show them
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, attn_implementation="eager")
    model.to(device).eval()
    return LoadedLM(role, model, tokenizer, resolved, device, time.perf_counter() - start)


def load_tokenizer(role: str, progress: ProgressFn = null_progress):
    """Only the tokenizer (cheap), from the same source as the model."""
    from transformers import AutoTokenizer

    resolved = resolve(role, progress)
    if resolved.source == "online":
        return AutoTokenizer.from_pretrained(resolved.spec.hub_id)
    if resolved.spec.kind == "sentence-embedding":
        return AutoTokenizer.from_pretrained(resolved.path)
    return AutoTokenizer.from_pretrained(_convert_gguf(resolved, progress))


def load_sentence_embedder(role: str = "embed", progress: ProgressFn = null_progress, device: str | None = None):
    from sentence_transformers import SentenceTransformer

    resolved = resolve(role, progress)
    source = resolved.spec.hub_id if resolved.source == "online" else str(resolved.path)
    return SentenceTransformer(source, device=device or get_settings().device)


def load_seconds(role: str) -> float:
    """Wall time of a warm load (conversion cache already built), as `models --json` reports it."""
    start = time.perf_counter()
    if ROLES[role].kind == "sentence-embedding":
        load_sentence_embedder(role)
    else:
        load_causal_lm(role)
    return time.perf_counter() - start
