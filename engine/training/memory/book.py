"""The book's T4 figures for polyglot-ko-1.3b (assets/ch05_book_t4_memory.yaml) next to this chapter's formulas.

The book prints `torch.cuda.memory_allocated()` right after the first optimizer step. At that moment the
activations of that step are already freed, so what it shows is mostly the training state the formulas count
exactly: weights + gradients + AdamW states. The activations decide whether the step fits at all (the peak); for
the book's GPT-NeoX model we use Korthikanti et al.'s per-layer estimate to see why batch 16 runs out of memory.
"""

from __future__ import annotations

from functools import lru_cache

import yaml

from engine.core.assets import asset
from engine.training.memory.estimate import adamw_state_bytes, korthikanti_activation_bytes

ASSET = asset("ch05_book_t4_memory.yaml")
GIB = 1024**3


@lru_cache(maxsize=1)
def book_reference() -> dict:
    return yaml.safe_load(ASSET.read_text(encoding="utf-8"))


def gpt_neox_parameters(vocab: int, hidden: int, layers: int, intermediate: int, tied: bool = False) -> dict:
    """Parameters of a GPT-NeoX model: fused QKV, dense, two MLP matrices (all with bias), two LayerNorms."""
    h, i = hidden, intermediate
    per_layer = (h * 3 * h + 3 * h) + (h * h + h) + (h * i + i) + (i * h + h) + 2 * (2 * h)
    embed = vocab * h
    total = embed * (1 if tied else 2) + layers * per_layer + 2 * h
    return {"total": total, "per_layer": per_layer, "tensors": 2 + layers * 12 + 2}


def book_comparison() -> list[dict]:
    """Each book row with our estimate of the training state (and the peak with activations) in GiB."""
    ref = book_reference()
    m = ref["model"]
    seq = ref["setup"]["seq_len"]
    dt = m["dtype_bytes"]
    params = gpt_neox_parameters(m["vocab"], m["hidden"], m["layers"], m["intermediate"], m["tied"])
    psi, tensors = params["total"], params["tensors"]
    lora_trainable = m["layers"] * 8 * (m["hidden"] + 3 * m["hidden"])  # r=8 on query_key_value (h -> 3h)
    lora_tensors = m["layers"] * 2
    linear = m["layers"] * (m["hidden"] * 3 * m["hidden"] + m["hidden"] ** 2 + 2 * m["hidden"] * m["intermediate"])
    rows = []
    for row in ref["rows"]:
        mode, batch = row["mode"], row["batch"]
        if mode == "load":
            state = psi * dt
        elif mode == "full":
            state = psi * dt * 2 + adamw_state_bytes(psi, tensors, state_bytes=dt)
        elif mode == "lora":  # peft keeps adapters in fp32 on an fp16 base
            state = psi * dt + lora_trainable * 4 * 2 + adamw_state_bytes(lora_trainable, lora_tensors)
        else:  # qlora: 4-bit linears (+ ~1/64 for double-quantized scales), the rest cast to fp32 by peft
            state = linear // 2 + linear // 64 + (psi - linear) * 4
            state += lora_trainable * 4 * 2 + adamw_state_bytes(lora_trainable, lora_tensors)
        acts = None
        if batch and mode == "full":
            acts = korthikanti_activation_bytes(seq, batch, m["hidden"], m["heads"], m["layers"])
        rows.append(
            {
                "id": row["id"],
                "mode": mode,
                "batch": batch,
                "example": row["example"],
                "note": row.get("note", ""),
                "book_gib": row.get("gib"),
                "book_oom": bool(row.get("oom")),
                "estimated_state_gib": state / GIB,
                "estimated_peak_gib": None if acts is None else (state + acts) / GIB,
                "fits_t4": None if acts is None else state + acts <= ref["gpu_bytes"],
            }
        )
    return rows
