"""Every equality of chapter 16 in one report (`python -m engine ssm-check --json`).

- conv vs recurrent (S4): the convolution view (direct and FFT) equals the recurrent view, for a random stable SSM
  and for HiPPO-LegS, with zero-order hold and bilinear discretization.
- parallel vs sequential (selection): the associative scan equals the loop, outputs and gradients.
- vs transformers (Mamba): our MambaLM equals transformers' MambaModel / MambaForCausalLM with the same random
  weights (a tiny config, seed 0), outputs and the gradients of every parameter.

transformers and float64: its pure-PyTorch Mamba computes a few things in float32 even when the model is float64
(RMSNorm, the residual with residual_in_fp32, A/D/Δ-bias, and B and x inside the scan, and MambaForCausalLM returns
`.float()` logits). So in float64 we compare with `MambaSpec(hf_casts=True)`, which makes the same casts, on
MambaModel's hidden states and the tied head applied to them; the pure float64 model's difference (about 1e-7, the
size of one float32 rounding) is reported as `pure_float64_vs_transformers_max_diff`.
"""

from __future__ import annotations

import importlib.util
import inspect
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.core.textinput import InputError

__all__ = ["DTYPES", "SSMCheck", "hf_path", "mamba_vs_transformers", "s4_check", "scan_check", "ssm_check"]

DTYPES = {"float64": torch.float64, "float32": torch.float32}
# the tiny config every check uses: Δ initialized in [0.1, 1] so that the SSM part matters (the default [0.001, 0.1]
# keeps Ā ≈ 1 and the layer close to its skip connection D x, which would make the comparison less telling)
TINY = {"vocab_size": 64, "d_model": 16, "n_layer": 2, "d_state": 8, "d_conv": 4, "dt_min": 0.1, "dt_max": 1.0}
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}


def _dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise InputError("input.unknown_choice", name="dtype", value=name, choices=", ".join(DTYPES))
    return DTYPES[name]


def s4_check(dtype: torch.dtype = torch.float64) -> dict:
    """Max |recurrent - convolution| over: a random SSM (N=4, L=16, Δ=1/L, as the Annotated S4's test) and
    HiPPO-LegS (N=16, L=64), each with ZOH and bilinear, convolution done directly and with the FFT."""
    from engine.ssm.hippo import hippo_legs
    from engine.ssm.s4 import ContinuousSSM, cnn_vs_rnn

    A, B = hippo_legs(16)
    hippo = ContinuousSSM(A=A, B=B, C=torch.rand(1, 16, generator=torch.Generator().manual_seed(3), dtype=A.dtype))
    cases = {}
    for method in ("zoh", "bilinear"):
        cases[f"random_{method}"] = cnn_vs_rnn(length=16, method=method, dtype=dtype).max_diff
        cases[f"hippo_{method}"] = cnn_vs_rnn(hippo, length=64, step=0.05, method=method, dtype=dtype).max_diff
    return {"max_diff": max(cases.values()), "cases": cases}


def scan_check(dtype: torch.dtype = torch.float64, seed: int = 0) -> dict:
    """Parallel (Hillis–Steele) vs sequential selective scan on random inputs: outputs and input gradients."""
    from engine.ssm.selective_scan import selective_scan_parallel, selective_scan_sequential

    g = torch.Generator().manual_seed(seed)
    b, length, d, n = 2, 64, 8, 4
    x = torch.randn(b, length, d, generator=g, dtype=dtype)
    delta = F.softplus(torch.randn(b, length, d, generator=g, dtype=dtype))
    A = -torch.rand(d, n, generator=g, dtype=dtype) - 0.1
    Bm = torch.randn(b, length, n, generator=g, dtype=dtype)
    Cm = torch.randn(b, length, n, generator=g, dtype=dtype)
    Dk = torch.randn(d, generator=g, dtype=dtype)
    z = torch.randn(b, length, d, generator=g, dtype=dtype)
    w = torch.randn(b, length, d, generator=g, dtype=dtype)  # a fixed random read-out, so the loss uses every y
    out, grads = {}, {}
    for name, fn in (("parallel", selective_scan_parallel), ("sequential", selective_scan_sequential)):
        inputs = [t.clone().requires_grad_(True) for t in (x, delta, A, Bm, Cm, Dk, z)]
        y = fn(*inputs)
        (y * w).sum().backward()
        out[name] = y.detach()
        grads[name] = [t.grad for t in inputs]
    grad_diff = max(float((p - s).abs().max()) for p, s in zip(grads["parallel"], grads["sequential"], strict=True))
    return {
        "max_diff": float((out["parallel"] - out["sequential"]).abs().max()),
        "grad_max_diff": grad_diff,
        "shape": [b, length, d, n],
    }


def hf_path() -> dict:
    """Which transformers code runs: the pure-PyTorch fallbacks (no mamba_ssm / causal_conv1d / kernels), and in
    the scan the sequential loop (mambapy absent, associative_scan only under torch.compile)."""
    from transformers.models.mamba import modeling_mamba as mm
    from transformers.utils.import_utils import is_mambapy_available

    names = ("mamba_inner_fn", "mamba_selective_scan", "mamba_selective_state_update", "causal_conv1d_fn")
    fallback = {}
    for name in names:
        nonlocals = inspect.getclosurevars(getattr(mm, name)).nonlocals
        fallback[name] = nonlocals.get("is_new_implementation") is False
    return {
        "torch_fallback": all(fallback.values()),
        "functions": fallback,
        "mamba_ssm_installed": importlib.util.find_spec("mamba_ssm") is not None,
        "causal_conv1d_installed": importlib.util.find_spec("causal_conv1d") is not None,
        "kernels_installed": importlib.util.find_spec("kernels") is not None,
        "scan_branch": "mambapy" if is_mambapy_available() else "sequential loop",
    }


def _tiny_pair(dtype: torch.dtype, hf_casts: bool, seed: int = 0):
    """transformers' MambaForCausalLM with its own random init (seed 0) and our MambaLM with the same weights."""
    from transformers import MambaForCausalLM
    from transformers.utils import logging as hf_logging

    from engine.ssm.mamba import MambaSpec, from_transformers

    hf_logging.set_verbosity_error()  # the "falling back to the PyTorch implementation" notes: we check that below
    spec = MambaSpec(**TINY)
    torch.manual_seed(seed)
    hf = MambaForCausalLM(spec.to_hf_config()).to(dtype).eval()
    ours = from_transformers(hf, hf_casts=hf_casts).eval()
    return hf, ours


def _grads(model, named) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in named(model) if p.grad is not None}


def mamba_vs_transformers(dtype: torch.dtype = torch.float64, seed: int = 0) -> dict:
    """Our MambaLM vs transformers on one batch: hidden states, logits, every parameter's gradient, both scans."""
    hf_casts = dtype == torch.float64
    hf, ours = _tiny_pair(dtype, hf_casts, seed)
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, TINY["vocab_size"], (2, 24), generator=g)  # (B, L)
    targets = torch.randint(0, TINY["vocab_size"], (2, 24), generator=g)

    def loss_of(logits):  # next-token cross-entropy: the training loss, so the gradients are the ones training uses
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    # transformers: MambaModel's hidden states, then the tied head on them (MambaForCausalLM adds a float32 cast)
    h_hf = hf.backbone(ids, use_cache=False).last_hidden_state  # (B, L, d_model)
    logits_hf = hf.lm_head(h_hf)  # (B, L, V)
    loss_of(logits_hf).backward()
    g_hf = dict(hf.named_parameters())
    grads_hf = {k: p.grad for k, p in g_hf.items() if p.grad is not None}
    with torch.no_grad():
        logits_hf_lm = hf(ids, use_cache=False).logits  # MambaForCausalLM itself (float32 logits)

    result: dict = {"hf_path": hf_path()}
    fwd, grad, by_scan = 0.0, 0.0, {}
    for scan in ("parallel", "sequential"):
        ours.zero_grad()
        h = ours.backbone(ids, scan=scan)
        logits = ours.lm_head(h)
        loss_of(logits).backward()
        grads = dict(ours.named_parameters())
        missing = set(grads_hf) ^ {k for k, p in grads.items() if p.grad is not None}
        if missing:
            raise RuntimeError(f"parameters differ between the two models: {sorted(missing)}")
        d_fwd = max(float((h - h_hf).detach().abs().max()), float((logits - logits_hf).detach().abs().max()))
        d_grad = max(float((grads[k].grad - grads_hf[k]).abs().max()) for k in grads_hf)
        by_scan[scan] = {"forward": d_fwd, "grad": d_grad}
        fwd, grad = max(fwd, d_fwd), max(grad, d_grad)
    with torch.no_grad():
        lm_diff = float((ours(ids) - logits_hf_lm).abs().max())
        par_seq = float((ours(ids, scan="parallel") - ours(ids, scan="sequential")).abs().max())
        # generation: prefill half, then step token by token; must equal the full forward
        full = ours(ids)
        logits_p, state = ours.prefill(ids[:, :12])
        stepped = [logits_p]
        for t in range(12, ids.shape[1]):
            lt, state = ours.step(ids[:, t], state)
            stepped.append(lt.unsqueeze(1))
        step_diff = float((torch.cat(stepped, 1) - full).abs().max())
    result.update(
        {
            "vs_transformers_max_diff": fwd,
            "grad_vs_transformers_max_diff": grad,
            "by_scan": by_scan,
            "vs_transformers_lm_logits_max_diff": lm_diff,
            "model_parallel_vs_sequential_max_diff": par_seq,
            "step_vs_forward_max_diff": step_diff,
            "state_bytes": state.nbytes(),
            "hf_casts": hf_casts,
            "n_parameters": sum(p.numel() for p in ours.parameters()),
            "n_grads_compared": len(grads_hf),
        }
    )
    if dtype == torch.float64:  # the honest number for a model that stays in float64 everywhere
        from engine.ssm.mamba import from_transformers

        pure = from_transformers(hf, hf_casts=False).eval()
        with torch.no_grad():
            diff = (pure.backbone(ids) - h_hf.detach()).abs().max()
        result["pure_float64_vs_transformers_max_diff"] = float(diff)
    return result


@dataclass
class SSMCheck:
    dtype: str
    conv_vs_recurrent_max_diff: float
    parallel_vs_sequential_max_diff: float
    parallel_vs_sequential_grad_max_diff: float
    vs_transformers_max_diff: float
    grad_vs_transformers_max_diff: float
    tolerance: float
    passed: bool
    details: dict
    book_code: dict
    seconds: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _one(dtype_name: str, with_book: bool = True) -> SSMCheck:
    from engine.ssm.book165 import run_book_code

    start = time.perf_counter()
    dtype = _dtype(dtype_name)
    s4 = s4_check(dtype)
    scan = scan_check(dtype)
    mamba = mamba_vs_transformers(dtype)
    book = run_book_code(dtype=dtype).as_dict() if with_book else {}
    tol = TOLERANCE[dtype_name]
    main = (
        s4["max_diff"],
        scan["max_diff"],
        scan["grad_max_diff"],
        mamba["vs_transformers_max_diff"],
        mamba["grad_vs_transformers_max_diff"],
        mamba["model_parallel_vs_sequential_max_diff"],
        mamba["step_vs_forward_max_diff"],
    )
    passed = all(v <= tol for v in main) and mamba["hf_path"]["torch_fallback"]
    if book:
        passed = passed and book["fixed_vs_ours_max_diff"] <= tol and book["fixed_lm_vs_ours_max_diff"] <= tol
    return SSMCheck(
        dtype=dtype_name,
        conv_vs_recurrent_max_diff=s4["max_diff"],
        parallel_vs_sequential_max_diff=scan["max_diff"],
        parallel_vs_sequential_grad_max_diff=scan["grad_max_diff"],
        vs_transformers_max_diff=mamba["vs_transformers_max_diff"],
        grad_vs_transformers_max_diff=mamba["grad_vs_transformers_max_diff"],
        tolerance=tol,
        passed=passed,
        details={"s4": s4, "scan": scan, "mamba": mamba},
        book_code=book,
        seconds=round(time.perf_counter() - start, 3),
    )


def ssm_check(dtype: str | None = None) -> dict:
    """The report: one dtype at the top level (float64 unless `dtype` says otherwise); without `dtype`, float64 at
    the top level and the same report for float32 under "float32"."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: threads only add noise on a shared machine
    try:
        if dtype is not None:
            return _one(dtype).as_dict()
        out = _one("float64").as_dict()
        out["float32"] = _one("float32").as_dict()
        out["passed"] = out["passed"] and out["float32"]["passed"]
        return out
    finally:
        torch.set_num_threads(threads)  # a page calling this keeps its own setting
