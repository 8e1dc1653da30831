"""LoRA and QLoRA with `peft` (chapter 5): low-rank adapters on a frozen (optionally 4-bit) base model.

LoRA (Hu et al. 2021) freezes a weight W (out x in) and learns ΔW = B·A with A: r x in, B: out x r, scaled by
alpha / r. Only A and B get gradients and optimizer states, so those two costs shrink from "every parameter" to
r·(in + out) per adapted matrix. After training, W + (alpha/r)·B·A can be merged back into W: the merged model
is an ordinary model with the same outputs and no extra inference cost.

QLoRA (Dettmers et al. 2023) additionally stores the frozen W in 4 bits (NF4) with bitsandbytes; the adapters stay
in full precision. bitsandbytes >= 0.45 runs this on a CPU too, which is what this app uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.core.textinput import InputError

# The seven Linear layers of a Llama-style decoder layer, in forward order.
LLAMA_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSpec:
    """What `peft.LoraConfig` needs; the defaults are the common 'attention q and v' recipe."""

    r: int = 8  # rank of A and B: the adapter's capacity
    alpha: int = 16  # ΔW is scaled by alpha / r, so changing r does not change the update's size much
    targets: tuple[str, ...] = ("q_proj", "v_proj")  # which Linear layers get adapters
    dropout: float = 0.0  # dropout on the adapter's input (the book uses 0.05)

    def __post_init__(self) -> None:
        if not 1 <= self.r <= 1024:
            raise InputError("training.lora_rank", value=self.r)
        if self.alpha <= 0:
            raise InputError("training.lora_alpha", value=self.alpha)
        if not self.targets:
            raise InputError("training.lora_no_targets")
        unknown = sorted(set(self.targets) - set(LLAMA_LINEARS))
        if unknown:
            raise InputError("training.lora_unknown_targets", value=unknown, choices=list(LLAMA_LINEARS))
        if not 0.0 <= self.dropout < 1.0:
            raise InputError("training.lora_dropout", value=self.dropout)

    @property
    def scaling(self) -> float:
        return self.alpha / self.r


@dataclass(frozen=True)
class QuantSpec:
    """What `transformers.BitsAndBytesConfig(load_in_4bit=True, ...)` needs."""

    quant_type: str = "nf4"  # "nf4" (normal-float, QLoRA's choice) or "fp4"
    double_quant: bool = False  # also quantize the per-block scales (the book turns this on)
    blocksize: int = 64  # bitsandbytes' 4-bit block size: one fp32 scale (absmax) per 64 weights

    def __post_init__(self) -> None:
        if self.quant_type not in ("nf4", "fp4"):
            raise InputError("training.quant_type", value=self.quant_type)


def lora_config(spec: LoraSpec, task_type: str = "CAUSAL_LM", layers: tuple[int, ...] | None = None):
    """`task_type="SEQ_CLS"` for a sequence classifier: peft then also trains (and saves) the new classification
    head (`score` / `classifier`) in full. `layers`: adapt only these decoder layers (None: every layer)."""
    from peft import LoraConfig

    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.targets),
        bias="none",
        task_type=task_type,
        layers_to_transform=None if layers is None else list(layers),
    )


def add_lora(model, spec: LoraSpec, task_type: str = "CAUSAL_LM", layers: tuple[int, ...] | None = None):
    """Freeze `model` and wrap the target layers with LoRA adapters (peft.get_peft_model)."""
    from peft import get_peft_model

    return get_peft_model(model, lora_config(spec, task_type, layers))


def bnb_config(quant: QuantSpec):
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant.quant_type,
        bnb_4bit_use_double_quant=quant.double_quant,
        bnb_4bit_compute_dtype=torch.float32,
    )


def parameter_counts(model) -> dict[str, int]:
    """Trainable and total parameter counts (4-bit weights counted by their real element count)."""
    trainable = total = 0
    for p in model.parameters():
        n = p.numel()
        qs = getattr(p, "quant_state", None)
        if qs is not None:  # packed: two 4-bit numbers per uint8 element
            n = int(qs.shape.numel())
        total += n
        if p.requires_grad:
            trainable += n
    return {"trainable": trainable, "total": total}


@dataclass
class MergeCheck:
    max_abs_diff: float  # merged vs unmerged logits
    max_abs_logit: float
    delta_norm: float  # how far the adapters moved the output from the frozen base (0 would test nothing)


def guard_bnb_cpu_packing(model, every_layer: bool = False) -> int:
    """Keep bitsandbytes' CPU 4-bit kernel off the layers it would crash on; returns how many were guarded.

    bitsandbytes 0.50 repacks a Linear4bit's weight for its AVX512-BF16 CPU kernel on the first no-grad forward
    in eval mode, and that repacking assumes in_features is a multiple of the 64-weight quantization block:
    otherwise `absmax.reshape(out, in // 64)` fails ("shape '[64, 2]' is invalid for input of size 160", seen on
    a 160-wide layer). SmolLM2's widths (576, 1536) are multiples of 64; a small or odd-sized model is not. Those
    layers keep the generic 4-bit matmul, which gives the same result without the repacked layout.

    `every_layer` turns the repacking off everywhere (and undoes it where it already happened): peft's merge
    de-quantizes `weight.data` as if it were in the standard layout, so merging into repacked weights would add
    the adapters to scrambled weights.
    """

    guarded = 0
    for module in model.modules():
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is None or not hasattr(module, "support_avx512bf16_for_cpu"):
            continue
        if every_layer or module.in_features % state.blocksize:
            if getattr(state, "packing_format_for_cpu", False):  # already repacked by an earlier forward
                from bitsandbytes import functional as bnb_functional

                module.weight.data, module.weight.quant_state = bnb_functional._convert_weight_packed_for_cpu_inverse(
                    module.weight.data, state
                )
            module.support_avx512bf16_for_cpu = False
            guarded += 1
    return guarded


def merge_check(peft_model, input_ids) -> MergeCheck:
    """Merge the adapters into the base weights and compare logits with the unmerged adapter model.

    The peft model is merged in place (its adapters are gone afterwards). Merging into 4-bit weights re-quantizes
    W + ΔW, so for QLoRA the two differ by rounding; a full-precision base merges exactly.

    The adapters are nudged first (B starts at zero, so an untrained adapter is a no-op and the check would be
    trivially true); the returned `delta_norm` shows the adapters really change the output.
    """
    import warnings

    import torch

    guard_bnb_cpu_packing(peft_model, every_layer=True)  # merge needs the standard 4-bit layout
    peft_model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft warns that merging into 4-bit weights rounds: we measure it instead
        base = _logits_without_adapters(peft_model, input_ids)
        unmerged = peft_model(input_ids=input_ids).logits
        merged_model = peft_model.merge_and_unload()
        merged = merged_model(input_ids=input_ids).logits
    return MergeCheck(
        max_abs_diff=float((merged - unmerged).abs().max()),
        max_abs_logit=float(unmerged.abs().max()),
        delta_norm=float((unmerged - base).norm()),
    )


def _logits_without_adapters(peft_model, input_ids):
    with peft_model.disable_adapter():
        return peft_model(input_ids=input_ids).logits


def randomize_adapters(peft_model, seed: int = 0, scale: float = 0.02) -> None:
    """Give every LoRA B a small random value (as a few training steps would), so ΔW = B·A is not zero."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)
