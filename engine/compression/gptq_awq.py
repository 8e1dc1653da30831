"""Chapter 7: the core ideas of GPTQ and AWQ, run on one real linear layer of `chat`.

All three methods store the same thing — b-bit integers plus a scale and zero point per row (or per group of
columns) — and differ only in *which* integers they choose:

- RTN (round to nearest): round every weight on its own.
- GPTQ (Frantar et al. 2023, arXiv:2210.17323): quantize one input column at a time and push the rounding error
  onto the columns not yet quantized, weighted by the inverse Hessian H = 2·XᵀX of the layer's calibration inputs,
  so the *output* XWᵀ changes as little as possible.
- AWQ (Lin et al. 2024, arXiv:2306.00978): input channels that carry large activations matter most; scale those
  weight columns up by s = mean|x|^α before rounding (and the inputs down by s), searching α on calibration data.

The score is the layer's output error on held-out tokens: ‖X Wᵀ − X Ŵᵀ‖² / ‖X Wᵀ‖².
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.models.loading import LoadedLM

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
AWQ_GRID = 20  # α ∈ {0, 0.05, …, 0.95}, as in the AWQ reference implementation


# --- the shared quantizer: b-bit asymmetric min-max per row ---------------------------------------------------


def minmax_params(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point per row of w (rows, cols), covering [min(w, 0), max(w, 0)] with 2^bits levels."""
    maxq = 2**bits - 1
    lo = w.min(dim=1, keepdim=True).values.clamp(max=0)
    hi = w.max(dim=1, keepdim=True).values.clamp(min=0)
    scale = ((hi - lo) / maxq).clamp(min=1e-8)
    zero = torch.round(-lo / scale)
    return scale, zero  # (rows, 1) each


def quantize(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """Round to the grid and map back to floats (what the matmul will effectively use)."""
    q = torch.clamp(torch.round(w / scale) + zero, 0, 2**bits - 1)
    return scale * (q - zero)


def _groups(cols: int, group_size: int) -> list[tuple[int, int]]:
    g = cols if group_size <= 0 else group_size
    return [(i, min(i + g, cols)) for i in range(0, cols, g)]


def rtn(weight: torch.Tensor, bits: int, group_size: int = 0) -> torch.Tensor:
    """Round to nearest: each weight independently, min-max grid per row (per group of columns if given)."""
    w = weight.float()
    out = torch.empty_like(w)
    for a, b in _groups(w.shape[1], group_size):
        scale, zero = minmax_params(w[:, a:b], bits)
        out[:, a:b] = quantize(w[:, a:b], scale, zero, bits)
    return out


# --- GPTQ ------------------------------------------------------------------------------------------------------


def hessian(x: torch.Tensor) -> torch.Tensor:
    """H = 2/n · XᵀX for inputs x (n, in): the curvature of the layer's squared output error in its weights."""
    x = x.double()
    return 2.0 / x.shape[0] * x.T @ x


def gptq(
    weight: torch.Tensor,
    h: torch.Tensor,
    bits: int,
    group_size: int = 0,
    damp: float = 0.01,
    should_stop: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """GPTQ without its speed tricks (no lazy block updates): one column at a time, error pushed forward.

    With U the upper Cholesky factor of H⁻¹, quantizing column i with error e = (w_i − q_i) / U[i, i] is
    compensated by w_j −= e · U[i, j] for all later columns j — the Optimal Brain Surgeon update.
    """
    w = weight.double().clone()  # (rows, cols)
    cols = w.shape[1]
    h = h.double().clone()
    dead = torch.diag(h) == 0  # inputs that are always zero: their weights do not matter
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += damp * torch.mean(torch.diag(h)) * torch.eye(cols, dtype=h.dtype)  # dampening keeps H invertible
    u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)  # chol(H⁻¹)ᵀ
    q_out = torch.zeros_like(w)
    scale = zero = None
    starts = {a for a, _ in _groups(cols, group_size)}
    for i in range(cols):
        if i in starts:  # grid for this group, from the weights as they are *now* (already error-corrected)
            end = cols if group_size <= 0 else min(i + group_size, cols)
            scale, zero = minmax_params(w[:, i:end], bits)
        q = quantize(w[:, i : i + 1], scale, zero, bits)  # (rows, 1)
        q_out[:, i : i + 1] = q
        err = (w[:, i : i + 1] - q) / u[i, i]
        w[:, i + 1 :] -= err @ u[i : i + 1, i + 1 :]  # compensate with the columns still to come
        if should_stop is not None and i % 64 == 0 and should_stop():
            raise Cancelled("gptq")
    return q_out.to(weight.dtype)


# --- AWQ -------------------------------------------------------------------------------------------------------


def awq(
    weight: torch.Tensor, x_calib: torch.Tensor, bits: int, group_size: int = 0, grid: int = AWQ_GRID
) -> tuple[torch.Tensor, float, list[tuple[float, float]]]:
    """Activation-aware scaling: Ŵ = Q(W · diag(s)) · diag(s)⁻¹ with s = mean|x|^α, α chosen on calibration data.

    Returns the effective weight, the chosen α and the (α, calibration error) curve. α = 0 is plain RTN.
    """
    w = weight.float()
    x = x_calib.float()
    act = x.abs().mean(dim=0)  # (in,): how big each input channel usually is
    ref = x @ w.T
    curve = []
    best = (float("inf"), 0.0, None)
    for k in range(grid):
        alpha = k / grid
        s = act.pow(alpha).clamp(min=1e-4)
        s = s / (s.max() * s.min()).sqrt()  # keep the scales centred around 1
        w_eff = rtn(w * s, bits, group_size) / s  # in the model, 1/s is folded into the previous op (a norm)
        err = float(((x @ w_eff.T - ref) ** 2).mean())
        curve.append((alpha, err / float((ref**2).mean())))
        if err < best[0]:
            best = (err, alpha, w_eff)
    return best[2].to(weight.dtype), best[1], curve


# --- the demo on a real layer ----------------------------------------------------------------------------------


def calibration_texts() -> list[str]:
    """English and Korean calibration text (about 5,000 tokens: enough samples for a 576- or 1536-wide Hessian)."""
    from engine.compression.quantization import eval_texts

    t = eval_texts()
    return [t["perplexity_en"]["text"], t["perplexity_ko"]["text"], t["calibration_ko"]["text"]]


def heldout_texts() -> list[str]:
    """Different English and Korean text, never seen during calibration: the score is measured here."""
    from engine.compression.quantization import eval_texts

    t = eval_texts()
    return [t["heldout_en"]["text"], t["heldout_ko"]["text"]]


def relative_output_error(weight: torch.Tensor, w_hat: torch.Tensor, x: torch.Tensor) -> float:
    """‖X Wᵀ − X Ŵᵀ‖² / ‖X Wᵀ‖² on inputs x (n, in)."""
    ref = x.float() @ weight.float().T
    return float(((x.float() @ w_hat.float().T - ref) ** 2).sum() / (ref**2).sum())


class _Captured(Exception):
    """Raised by the hook once the layer's input is recorded: the layers above it need not run."""


def _projection(lm: LoadedLM, layer: int, projection: str):
    if projection not in PROJECTIONS:
        raise InputError("compression.unknown_projection", value=projection, choices=", ".join(PROJECTIONS))
    layers = lm.model.model.layers
    if not 0 <= layer < len(layers):
        raise InputError("compression.bad_layer", limit=len(layers) - 1, value=layer)
    block = layers[layer]
    return getattr(block.self_attn if projection in PROJECTIONS[:4] else block.mlp, projection)


@torch.no_grad()
def layer_inputs(
    lm: LoadedLM, layer: int, projection: str, texts: list[str], max_tokens: int = 4096, chunk: int = 512
) -> torch.Tensor:
    """The real inputs of one linear layer while `lm` reads `texts` (forward hook), stacked (n_tokens, in)."""
    module = _projection(lm, layer, projection)
    seen: list[torch.Tensor] = []

    def hook(_module, inp):
        seen.append(inp[0].reshape(-1, inp[0].shape[-1]).float().cpu())
        raise _Captured

    handle = module.register_forward_pre_hook(hook)
    try:
        for text in texts:
            ids = lm.tokenizer(text, add_special_tokens=True)["input_ids"][:max_tokens]
            for start in range(0, len(ids), chunk):
                with contextlib.suppress(_Captured):
                    lm.model(torch.tensor([ids[start : start + chunk]], device=lm.device), use_cache=False)
    finally:
        handle.remove()
    return torch.cat(seen)


@dataclass
class LayerQuantResult:
    layer: int
    projection: str
    bits: int
    group_size: int
    shape: tuple[int, int]  # (out, in)
    calib_tokens: int
    eval_tokens: int
    errors: dict[str, float]  # method -> relative output error on held-out tokens
    calib_errors: dict[str, float]  # method -> the same on the calibration tokens
    weight_errors: dict[str, float]  # method -> ‖W − Ŵ‖² / ‖W‖² (what RTN minimizes; not what matters)
    awq_alpha: float
    awq_curve: list[tuple[float, float]] = field(default_factory=list)
    channel_scale: list[float] = field(default_factory=list)  # mean |x| per input channel (why AWQ works)


def compare_methods(
    lm: LoadedLM,
    calib_texts: list[str],
    eval_texts: list[str],
    layer: int = 5,
    projection: str = "q_proj",
    bits: int = 4,
    group_size: int = 0,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
) -> LayerQuantResult:
    """RTN vs GPTQ vs AWQ on one layer: calibrate on `calib_texts`, score on `eval_texts` (different tokens)."""
    if bits not in (2, 3, 4, 8):
        raise InputError("compression.bad_bits", value=bits)
    if group_size not in (0, 32, 64, 128):
        raise InputError("compression.bad_group_size", value=group_size)
    progress(0.05, "collecting calibration activations")
    x_cal = layer_inputs(lm, layer, projection, calib_texts)
    x_eval = layer_inputs(lm, layer, projection, eval_texts)
    w = _projection(lm, layer, projection).weight.detach().float().cpu()
    progress(0.3, "round to nearest")
    w_hat = {"RTN": rtn(w, bits, group_size)}
    progress(0.4, "GPTQ")
    w_hat["GPTQ"] = gptq(w, hessian(x_cal), bits, group_size, should_stop=should_stop)
    progress(0.7, "AWQ scale search")
    w_hat["AWQ"], alpha, curve = awq(w, x_cal, bits, group_size)
    progress(1.0, "done")
    norm = float((w**2).sum())
    return LayerQuantResult(
        layer,
        projection,
        bits,
        group_size,
        tuple(w.shape),
        x_cal.shape[0],
        x_eval.shape[0],
        errors={k: relative_output_error(w, v, x_eval) for k, v in w_hat.items()},
        calib_errors={k: relative_output_error(w, v, x_cal) for k, v in w_hat.items()},
        weight_errors={k: float(((w - v) ** 2).sum()) / norm for k, v in w_hat.items()},
        awq_alpha=alpha,
        awq_curve=curve,
        channel_scale=x_cal.abs().mean(dim=0).tolist(),
    )
