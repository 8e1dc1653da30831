"""Estimated memory: weights, gradients, optimizer states and activations from the model's shape alone.

Weights, gradients and optimizer states are exact bookkeeping: Ψ parameters cost Ψ·bytes each for the weights,
trainable·bytes for the gradients and, for AdamW, two fp32 states (exp_avg, exp_avg_sq) per trainable parameter
plus a 4-byte `step` counter per parameter tensor. 4-bit weights cost half a byte per weight plus one fp32 scale
per block of 64 (and a 16-entry code book per matrix).

Activations follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models"),
who count, per layer, every tensor that autograd saves for the backward pass: sbh·(34 + 5as/h) bytes for a GPT
layer in fp16 with dropout. The same counting, redone for a Llama-style layer (RMSNorm, RoPE, grouped-query
attention, SwiGLU MLP, no dropout) in fp32 with eager attention — b = batch, s = sequence, h = hidden size,
a = query heads, d = head size (a·d = attention width), I = MLP width — gives, in elements:

    RMSNorm (x2)        input x, 1/rms (b·s), normalised x, output      2·(3bsh + bs)
    attention           q after RoPE, k and v repeated to a heads,
                        attention output                                 4·b·s·a·d
                        softmax probabilities                            b·a·s²
    SwiGLU MLP          gate, silu(gate), up, silu(gate)·up              4·b·s·I

times 4 bytes, per layer; plus the model's ends: token ids (int64) for the embedding, the final RMSNorm, the
log-softmax over the vocabulary (b·s·V: for a small model with a large vocabulary this is the biggest single
activation) and the loss's targets. The `lesson` explains each term; `tests/engine/test_memory_estimate.py` checks
the formula equals the saved-tensor measurement exactly on small models.

LoRA changes what is saved, because PyTorch saves an input only when some gradient needs it: a frozen Linear
saves nothing for its weight's gradient, and a layer before the first adapter saves nothing at all. The estimator
walks the layer with a "requires grad" flag per tensor and applies the same rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.core.textinput import InputError
from engine.training.lora import LLAMA_LINEARS, LoraSpec, QuantSpec

MODES = ("full", "lora", "qlora")
COMPONENTS = ("weights", "gradients", "optimizer", "activations")
LLAMA_LIKE = {"llama", "mistral"}  # same layer; Qwen2 adds q/k/v biases, SmolLM3 drops RoPE in some layers
FP32 = 4
INT64 = 8


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a Llama-style decoder that memory depends on."""

    vocab: int
    hidden: int  # h
    layers: int  # L
    heads: int  # a (query heads)
    kv_heads: int  # grouped-query attention: k and v have fewer heads
    head_dim: int  # d
    intermediate: int  # I, the SwiGLU MLP width
    tied: bool = True  # lm_head shares the embedding matrix
    name: str = ""

    @classmethod
    def from_config(cls, config, name: str = "") -> ModelShape:
        kind = getattr(config, "model_type", "")
        if kind not in LLAMA_LIKE:
            raise InputError("memory.not_llama", kind=kind)
        if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
            raise InputError("memory.linear_bias")
        heads = config.num_attention_heads
        return cls(
            vocab=config.vocab_size,
            hidden=config.hidden_size,
            layers=config.num_hidden_layers,
            heads=heads,
            kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
            intermediate=config.intermediate_size,
            tied=bool(getattr(config, "tie_word_embeddings", False)),
            name=name or getattr(config, "_name_or_path", "") or kind,
        )

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each Linear in one decoder layer."""
        h, q, kv, i = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.intermediate
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }


def count_parameters(shape: ModelShape) -> dict[str, int]:
    """Parameter count by part, and the number of parameter tensors (AdamW keeps a `step` per tensor)."""
    per_layer_linear = sum(i * o for i, o in shape.linear_shapes().values())
    per_layer_norm = 2 * shape.hidden
    embed = shape.vocab * shape.hidden
    parts = {
        "embedding": embed,
        "layers_linear": shape.layers * per_layer_linear,
        "norms": shape.layers * per_layer_norm + shape.hidden,
        "lm_head": 0 if shape.tied else embed,
    }
    parts["total"] = sum(parts.values())
    parts["tensors"] = 1 + shape.layers * (len(LLAMA_LINEARS) + 2) + 1 + (0 if shape.tied else 1)
    return parts


def lora_parameter_count(shape: ModelShape, lora: LoraSpec) -> dict[str, int]:
    """r·(in + out) per adapted Linear: A is r x in, B is out x r."""
    linears = shape.linear_shapes()
    per_layer = sum(lora.r * (linears[t][0] + linears[t][1]) for t in lora.targets)
    return {"trainable": shape.layers * per_layer, "tensors": shape.layers * 2 * len(lora.targets)}


def four_bit_bytes(numel: int, quant: QuantSpec) -> int:
    """Bytes of one bitsandbytes 4-bit matrix: packed data, per-block scales and the quantization code book."""
    blocks = math.ceil(numel / quant.blocksize)
    packed = math.ceil(numel / 2)
    code = 16 * FP32  # the 16 NF4/FP4 levels, one copy per matrix
    if not quant.double_quant:
        return packed + blocks * FP32 + code
    # double quantization: 8-bit scales, themselves scaled per 256 blocks, with a 256-entry code and an offset
    return packed + blocks + math.ceil(blocks / 256) * FP32 + 256 * FP32 + code + FP32


def weight_bytes(
    shape: ModelShape, mode: str, lora: LoraSpec | None = None, quant: QuantSpec | None = None, dtype_bytes: int = FP32
) -> int:
    counts = count_parameters(shape)
    lora = lora or LoraSpec()
    adapters = lora_parameter_count(shape, lora)["trainable"] * FP32 if mode in ("lora", "qlora") else 0
    if mode != "qlora":
        return counts["total"] * dtype_bytes + adapters
    quant = quant or QuantSpec()
    linear = shape.layers * sum(four_bit_bytes(i * o, quant) for i, o in shape.linear_shapes().values())
    # embeddings, norms (and an untied lm_head, which bitsandbytes skips) stay in full precision
    rest = (counts["embedding"] + counts["norms"] + counts["lm_head"]) * dtype_bytes
    return linear + rest + adapters


def trainable_parameters(shape: ModelShape, mode: str, lora: LoraSpec | None = None) -> tuple[int, int]:
    """(trainable parameters, trainable tensors) for a mode."""
    if mode == "full":
        counts = count_parameters(shape)
        return counts["total"], counts["tensors"]
    n = lora_parameter_count(shape, lora or LoraSpec())
    return n["trainable"], n["tensors"]


def adamw_state_bytes(trainable: int, tensors: int, state_bytes: int = FP32) -> int:
    """AdamW: exp_avg and exp_avg_sq per trainable parameter, plus a scalar fp32 `step` per parameter tensor."""
    return 2 * trainable * state_bytes + tensors * FP32


@dataclass
class ActivationEstimate:
    total: int
    parts: dict[str, int] = field(default_factory=dict)  # bytes by where they are saved
    recompute_layer: int = 0  # with checkpointing: one layer's activations, rebuilt during backward


def activation_bytes(
    shape: ModelShape,
    batch: int,
    seq_len: int,
    mode: str = "full",
    lora: LoraSpec | None = None,
    checkpointing: bool = False,
    input_requires_grad: bool = False,
    device: str = "cpu",
) -> ActivationEstimate:
    """Bytes autograd saves for backward in one training forward pass (fp32, eager attention, no dropout).

    `input_requires_grad`: peft's `prepare_model_for_kbit_training(use_gradient_checkpointing=True)` marks the
    embedding output as requiring grad (`enable_input_require_grads`), which makes every layer save more.
    With `checkpointing`, each layer keeps only its input; its other activations are rebuilt during backward, one
    layer at a time (`recompute_layer` bytes on top, transiently). `device` matters only for LoRA dropout: the
    CPU keeps the dropout mask as a float tensor of the input's dtype, CUDA's fused kernel as one byte per element.
    """
    b, s, h, v = batch, seq_len, shape.hidden, shape.vocab
    a, d, inter = shape.heads, shape.head_dim, shape.intermediate
    full = mode == "full"
    lora = lora or LoraSpec()
    adapted = set() if full else set(lora.targets)
    linears = shape.linear_shapes()
    bs = b * s
    mask_bytes = FP32 if device == "cpu" else 1

    def linear(saved: list[int], name: str, in_rg: bool) -> tuple[bool, bool]:
        """(does it keep its input tensor, does its output require grad); adds adapter-private tensors."""
        has_lora = name in adapted
        keeps_input = full or (has_lora and lora.dropout == 0.0)
        if has_lora:
            fan_in = linears[name][0]
            if lora.dropout > 0.0:  # dropout output (kept by lora_A) and, when the input needs grad, its mask
                saved.append(bs * fan_in * FP32)
                if in_rg:
                    saved.append(bs * fan_in * mask_bytes)
            saved.append(bs * lora.r * FP32)  # A·x, kept by lora_B
        return keeps_input, in_rg or full or has_lora

    def rms_norm(saved: list[int], x_rg: bool) -> bool:
        if x_rg:
            saved.append((bs * h + bs) * FP32)  # x and 1/rms
        if full:
            saved.append(bs * h * FP32)  # x / rms, for the weight's gradient
        return x_rg or full

    def decoder_layer(x_rg: bool) -> tuple[list[int], bool, bool]:
        """Saved tensor sizes of one layer, whether its output requires grad, whether RoPE's cos/sin are kept."""
        saved: list[int] = []
        # attention block
        y_rg = rms_norm(saved, x_rg)
        keeps, rg = [], {}
        for name in ("q_proj", "k_proj", "v_proj"):
            k, rg[name] = linear(saved, name, y_rg)
            keeps.append(k)
        if any(keeps):
            saved.append(bs * h * FP32)  # the norm's output, shared by q, k and v
        q_rg, k_rg, v_rg = rg["q_proj"], rg["k_proj"], rg["v_proj"]
        if k_rg:
            saved.append(bs * a * d * FP32)  # q after RoPE, for the gradient of k
        if q_rg:
            saved.append(bs * a * d * FP32)  # k repeated to a heads, for the gradient of q
        scores_rg = q_rg or k_rg
        if scores_rg or v_rg:
            saved.append(b * a * s * s * FP32)  # softmax output (softmax's and probs·v's backward)
        if scores_rg:
            saved.append(bs * a * d * FP32)  # v repeated to a heads
        keeps_o, o_rg = linear(saved, "o_proj", scores_rg or v_rg)
        if keeps_o:
            saved.append(bs * a * d * FP32)  # attention output, made contiguous for o_proj
        h1_rg = x_rg or o_rg
        # MLP block
        y2_rg = rms_norm(saved, h1_rg)
        keeps_g, g_rg = linear(saved, "gate_proj", y2_rg)
        keeps_u, u_rg = linear(saved, "up_proj", y2_rg)
        if keeps_g or keeps_u:
            saved.append(bs * h * FP32)
        if g_rg:
            saved.append(bs * inter * FP32)  # silu's input
        if u_rg:
            saved.append(bs * inter * FP32)  # silu(gate), for the gradient of up
        if g_rg:
            saved.append(bs * inter * FP32)  # up, for the gradient of silu(gate)
        keeps_d, d_rg = linear(saved, "down_proj", g_rg or u_rg)
        if keeps_d:
            saved.append(bs * inter * FP32)  # silu(gate)·up
        return saved, h1_rg or d_rg, q_rg or k_rg

    parts = {"embedding": 0, "layers": 0, "rope": 0, "head": 0}
    x_rg = full or input_requires_grad  # the embedding output
    if full:
        parts["embedding"] = bs * INT64  # token ids, for the embedding's gradient
    rope = False
    recompute = 0
    for _ in range(shape.layers):
        saved, out_rg, uses_rope = decoder_layer(x_rg)
        recompute = max(recompute, sum(saved))
        if checkpointing:
            parts["layers"] += bs * h * FP32  # only the layer input is kept; the rest is recomputed
        else:
            parts["layers"] += sum(saved)
            rope |= uses_rope
        x_rg = out_rg
    if rope:
        parts["rope"] = 2 * s * d * FP32  # cos and sin, computed once and shared by every layer
    # final norm, lm_head (tied to the embedding), loss
    head: list[int] = []
    yf_rg = rms_norm(head, x_rg)
    if full:
        head.append(bs * h * FP32)  # final norm output, kept by lm_head for the weight's gradient
    if yf_rg:
        # log-softmax output, targets, the loss's total weight. The targets are the labels shifted by one: padded
        # to s + 1 and sliced, which for a single sequence is already contiguous and keeps the padded storage.
        targets = b * s if b > 1 else s + 1
        head += [bs * v * FP32, targets * INT64, FP32]
    parts["head"] = sum(head)
    return ActivationEstimate(total=sum(parts.values()), parts=parts, recompute_layer=recompute if checkpointing else 0)


@dataclass
class Breakdown:
    """Bytes per component, the numbers `memory --json` prints under `estimated` (and `measured`)."""

    weights: int
    gradients: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

    def as_dict(self) -> dict[str, int]:
        return {c: int(getattr(self, c)) for c in COMPONENTS}


def estimate_breakdown(
    shape: ModelShape,
    mode: str,
    batch: int,
    seq_len: int,
    lora: LoraSpec | None = None,
    quant: QuantSpec | None = None,
    checkpointing: bool = False,
    input_requires_grad: bool = False,
    device: str = "cpu",
) -> Breakdown:
    """The four components for one training step of `shape` in `mode` ("full", "lora" or "qlora")."""
    if mode not in MODES:
        raise InputError("memory.unknown_mode", choices=MODES, value=mode)
    lora = lora or LoraSpec()
    trainable, tensors = trainable_parameters(shape, mode, lora)
    acts = activation_bytes(shape, batch, seq_len, mode, lora, checkpointing, input_requires_grad, device)
    return Breakdown(
        weights=weight_bytes(shape, mode, lora, quant),
        gradients=trainable * FP32,
        optimizer=adamw_state_bytes(trainable, tensors),
        activations=acts.total,
    )


def korthikanti_activation_bytes(seq_len: int, batch: int, hidden: int, heads: int, layers: int) -> int:
    """The paper's GPT-layer estimate in fp16 with dropout: s·b·h·(34 + 5·a·s/h) bytes per layer, times layers.

    Used for the book's GPT-NeoX model (polyglot-ko), whose layer is the paper's: LayerNorm, fused QKV, GeLU MLP.
    """
    return int(layers * seq_len * batch * hidden * (34 + 5 * heads * seq_len / hidden))
