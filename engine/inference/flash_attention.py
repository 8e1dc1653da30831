"""FlashAttention from scratch: tiled attention with an online softmax, and the memory traffic it saves.

Standard attention writes the whole (T, S) score matrix to main memory (HBM on a GPU), reads it back for the
softmax, writes the probabilities, and reads them again to multiply by V. FlashAttention (Dao et al., 2022,
"FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness", arXiv:2205.14135) never stores
that matrix: it walks over tiles of K and V that fit in fast on-chip memory (SRAM) and keeps, for every query
row, a running maximum `m` and a running sum `l` of exp(score - m). When a later tile holds a larger score the
partial results are rescaled by exp(m_old - m_new). The result is *exact* attention, not an approximation.

    flash_attention            Algorithm 1 of the paper (outer loop over K/V tiles, inner loop over Q tiles)
    standard_attention_counted Algorithm 0 of the paper, counting what it reads and writes
    traffic_formula            the closed-form counts both functions must reproduce
    time_sdpa_backends         torch's own SDPA kernels (math vs the fused CPU flash kernel) timed here

Traffic is counted in elements of the big tensors (Q, K, V, O, S, P and the row statistics l, m); multiply by
the dtype size for bytes. Shapes: (..., T, D) queries, (..., S, D) keys and values; leading dims are batch/heads.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError

__all__ = [
    "SRAM_BYTES_A100",
    "Traffic",
    "compare_on_random",
    "flash_attention",
    "flash_block_sizes",
    "measure_sdpa_memory",
    "standard_attention_counted",
    "time_sdpa_backends",
    "traffic_formula",
    "traffic_table",
]

# On-chip shared memory per streaming multiprocessor of an A100 (192 KB, of which up to 164 KB is usable
# as shared memory); the paper's analysis uses "M ≈ 100 KB" as a typical SRAM size. We default to 100 KB.
SRAM_BYTES_A100 = 100 * 1024


@dataclass
class Traffic:
    """Elements read from and written to slow memory (HBM), by tensor name."""

    reads: dict[str, int] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)

    def read(self, name: str, t: Tensor) -> Tensor:
        self.reads[name] = self.reads.get(name, 0) + t.numel()
        return t

    def write(self, name: str, t: Tensor) -> None:
        self.writes[name] = self.writes.get(name, 0) + t.numel()

    @property
    def total_reads(self) -> int:
        return sum(self.reads.values())

    @property
    def total_writes(self) -> int:
        return sum(self.writes.values())

    @property
    def total(self) -> int:
        return self.total_reads + self.total_writes


def flash_block_sizes(D: int, sram_bytes: int = SRAM_BYTES_A100, dtype_bytes: int = 2) -> tuple[int, int]:
    """(Br, Bc) from Algorithm 1, line 1: Bc = ⌈M / 4d⌉, Br = min(⌈M / 4d⌉, d), with M counted in elements.

    Four tiles must fit in SRAM at once (Q_i, K_j, V_j, O_i), which is where the 4 comes from.
    """
    if D <= 0 or sram_bytes <= 0 or dtype_bytes <= 0:
        raise InputError("flash.bad_sram")
    m_elems = sram_bytes // dtype_bytes
    bc = max(1, math.ceil(m_elems / (4 * D)))
    return min(bc, D), bc


def flash_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    causal: bool = False,
    block_q: int = 64,
    block_k: int = 64,
    traffic: Traffic | None = None,
    progress: ProgressFn = null_progress,
) -> Tensor:
    """Exact softmax(Q Kᵀ/√D) V computed tile by tile with an online softmax (FlashAttention, Algorithm 1).

    q (..., T, D), k and v (..., S, D). `causal` uses the same top-left alignment as
    `engine.lm.attention.causal_mask` and torch's `is_causal=True`. Tiles wholly above the diagonal are skipped
    (they are never read), which is where causal FlashAttention saves about half the work.
    Pass a `Traffic` to count every tile moved between "HBM" (the full tensors) and "SRAM" (the tiles);
    `progress` hears of every K/V tile (small tiles on a long sequence take a while in Python).
    """
    if q.dim() < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError("expected q (..., T, D), k (..., S, D), v (..., S, Dv)")
    if block_q <= 0 or block_k <= 0:
        raise InputError("flash.bad_block_sizes")
    T, S, D = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(D)
    lead = q.shape[:-2]
    # O, l, m live in "HBM" between tiles, exactly as in the paper (Algorithm 1, line 2).
    out = torch.zeros(*lead, T, v.shape[-1], dtype=q.dtype, device=q.device)  # (..., T, Dv)
    row_sum = torch.zeros(*lead, T, 1, dtype=q.dtype, device=q.device)  # l: Σ exp(s - m) so far
    row_max = torch.full((*lead, T, 1), float("-inf"), dtype=q.dtype, device=q.device)  # m: max score so far

    for j0 in range(0, S, block_k):  # outer loop: one K/V tile at a time, each loaded once
        progress(j0 / S, f"K/V tile {j0 // block_k + 1} of {math.ceil(S / block_k)}")
        j1 = min(j0 + block_k, S)
        first_q = j0 if causal else 0  # causal: query rows above key j0 see nothing in this tile
        if first_q >= T:
            continue
        k_j = k[..., j0:j1, :]  # (..., Bc, D)
        v_j = v[..., j0:j1, :]  # (..., Bc, Dv)
        if traffic is not None:
            traffic.read("K", k_j)
            traffic.read("V", v_j)
        for i0 in range((first_q // block_q) * block_q, T, block_q):  # inner loop over Q tiles
            i1 = min(i0 + block_q, T)
            q_i = q[..., i0:i1, :]  # (..., Br, D)
            o_i, l_i, m_i = out[..., i0:i1, :], row_sum[..., i0:i1, :], row_max[..., i0:i1, :]
            if traffic is not None:
                for name, t in (("Q", q_i), ("O", o_i), ("l", l_i), ("m", m_i)):
                    traffic.read(name, t)
            s_ij = (q_i @ k_j.transpose(-2, -1)) * scale  # (..., Br, Bc): lives in SRAM only
            if causal:
                rows = torch.arange(i0, i1, device=q.device)[:, None]
                cols = torch.arange(j0, j1, device=q.device)[None, :]
                s_ij = s_ij.masked_fill(cols > rows, float("-inf"))
            m_tile = s_ij.amax(dim=-1, keepdim=True)  # (..., Br, 1)
            m_new = torch.maximum(m_i, m_tile)
            # A row with every score -inf so far has nothing to rescale; use 0 so exp() stays finite.
            m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
            p_ij = torch.exp(s_ij - m_safe)  # (..., Br, Bc), un-normalized probabilities
            correction = torch.exp(m_i - m_safe)  # how much the old partial sums shrink
            l_new = correction * l_i + p_ij.sum(dim=-1, keepdim=True)
            o_new = correction * o_i + p_ij @ v_j  # (..., Br, Dv), still un-normalized
            out[..., i0:i1, :] = o_new
            row_sum[..., i0:i1, :] = l_new
            row_max[..., i0:i1, :] = m_new
            if traffic is not None:
                for name, t in (("O", o_new), ("l", l_new), ("m", m_new)):
                    traffic.write(name, t)
    # Normalizing once at the end is the FlashAttention-2 trick; Algorithm 1 divides at every step, with the
    # same result. Fully masked rows (l = 0) come out as zeros, like engine.lm.attention.
    return torch.where(row_sum > 0, out / row_sum.clamp_min(torch.finfo(q.dtype).tiny), torch.zeros_like(out))


def standard_attention_counted(
    q: Tensor, k: Tensor, v: Tensor, causal: bool = False, traffic: Traffic | None = None
) -> Tensor:
    """Algorithm 0 of the paper, one kernel per step, each reading its inputs from HBM and writing its output.

    1. S = Q Kᵀ / √D        read Q, K          write S (T·S)
    (causal) mask S          read S             write S     ← a separate masking kernel, as in plain PyTorch
    2. P = softmax(S)        read S             write P (T·S)
    3. O = P V               read P, V          write O
    """
    D = q.shape[-1]
    tr = traffic if traffic is not None else Traffic()
    s = (tr.read("Q", q) @ tr.read("K", k).transpose(-2, -1)) / math.sqrt(D)  # (..., T, S)
    tr.write("S", s)
    if causal:
        T, S = s.shape[-2], s.shape[-1]
        allowed = torch.ones(T, S, dtype=torch.bool, device=q.device).tril()
        s = tr.read("S", s).masked_fill(~allowed, float("-inf"))
        tr.write("S", s)
    p = torch.nan_to_num(F.softmax(tr.read("S", s), dim=-1), nan=0.0)
    tr.write("P", p)
    out = tr.read("P", p) @ tr.read("V", v)
    tr.write("O", out)
    return out


def traffic_formula(
    T: int,
    D: int,
    S: int | None = None,
    block_q: int = 64,
    block_k: int = 64,
    causal: bool = False,
    batch_heads: int = 1,
) -> dict[str, int]:
    """Closed-form element counts for one (batch·head) slice, multiplied by batch_heads.

    Standard (Algorithm 0): reads Q (T·D) + K (S·D) + S (T·S) + P (T·S) + V (S·D) and writes S + P + O, plus
    one extra read and write of S for a separate causal mask. That is Θ(N·d + N²).
    Flash (Algorithm 1): K and V read once; for each K/V tile, every Q tile it touches reads Q_i, O_i, l_i,
    m_i and writes O_i, l_i, m_i. With Tc = S/Bc tiles that is Θ(N²·d / Bc) = Θ(N²·d²/M) — the paper's
    Theorem 2 — and no T·S term at all.
    """
    S = T if S is None else S
    std_reads = T * D + S * D + T * S + T * S + S * D
    std_writes = T * S + T * S + T * D
    if causal:
        std_reads += T * S
        std_writes += T * S
    fl_reads, fl_writes = 0, 0
    for j0 in range(0, S, block_k):
        j1 = min(j0 + block_k, S)
        first_q = j0 if causal else 0
        if first_q >= T:
            continue
        fl_reads += 2 * (j1 - j0) * D  # K_j, V_j
        rows = T - (first_q // block_q) * block_q  # Q rows of every tile the inner loop visits
        fl_reads += rows * (D + D + 1 + 1)  # Q_i, O_i, l_i, m_i
        fl_writes += rows * (D + 1 + 1)  # O_i, l_i, m_i
    return {
        "standard_reads": std_reads * batch_heads,
        "standard_writes": std_writes * batch_heads,
        "standard_total": (std_reads + std_writes) * batch_heads,
        "flash_reads": fl_reads * batch_heads,
        "flash_writes": fl_writes * batch_heads,
        "flash_total": (fl_reads + fl_writes) * batch_heads,
    }


def traffic_table(
    lengths: list[int],
    D: int = 64,
    batch_heads: int = 1,
    sram_bytes: int = SRAM_BYTES_A100,
    dtype_bytes: int = 2,
    causal: bool = False,
) -> list[dict]:
    """One row per (sequence length, method): HBM bytes moved, with the paper's block sizes for this SRAM."""
    br, bc = flash_block_sizes(D, sram_bytes, dtype_bytes)
    rows = []
    for n in lengths:
        if n <= 0:
            raise InputError("flash.bad_sequence_lengths")
        f = traffic_formula(n, D, block_q=br, block_k=bc, causal=causal, batch_heads=batch_heads)
        for method in ("standard", "flash"):
            rows.append(
                {
                    "T": n,
                    "method": method,
                    "block_q": br,
                    "block_k": bc,
                    "reads_bytes": f[f"{method}_reads"] * dtype_bytes,
                    "writes_bytes": f[f"{method}_writes"] * dtype_bytes,
                    "total_bytes": f[f"{method}_total"] * dtype_bytes,
                }
            )
        rows[-1]["saving"] = rows[-2]["total_bytes"] / rows[-1]["total_bytes"]
        rows[-2]["saving"] = 1.0
    return rows


def tile_count(T: int, block_q: int, block_k: int, causal: bool = False) -> int:
    """How many (K/V tile, Q tile) steps flash_attention takes on a T × T problem: the work a page waits for."""
    steps = 0
    for j0 in range(0, T, max(1, block_k)):
        first_q = j0 if causal else 0
        steps += len(range((first_q // max(1, block_q)) * block_q, T, max(1, block_q)))
    return steps


def compare_on_random(
    T: int,
    D: int = 32,
    block_q: int = 16,
    block_k: int = 16,
    causal: bool = True,
    heads: int = 2,
    seed: int = 0,
    progress: ProgressFn = null_progress,
) -> dict:
    """Run flash_attention and standard attention on the same random Q, K, V: the largest differences from
    engine.lm.attention and torch's SDPA, and one row per algorithm of counted traffic next to the formula."""
    from engine.lm.attention import scaled_dot_product_attention as scratch_sdpa

    if not 1 <= T <= 2048 or not 1 <= D <= 256 or not 1 <= heads <= 16:
        raise InputError("flash.bad_shape")
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, heads, T, D, generator=gen) for _ in range(3))
    tr_f, tr_s = Traffic(), Traffic()
    out = flash_attention(q, k, v, causal=causal, block_q=block_q, block_k=block_k, traffic=tr_f, progress=progress)
    standard_attention_counted(q, k, v, causal=causal, traffic=tr_s)
    ours, _ = scratch_sdpa(q, k, v, causal=causal)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    f = traffic_formula(T, D, block_q=block_q, block_k=block_k, causal=causal, batch_heads=heads)
    methods = (("standard (Algorithm 0)", "standard", tr_s), ("flash (Algorithm 1)", "flash", tr_f))
    rows = [
        {
            "method": name,
            "reads (counted)": tr.total_reads,
            "writes (counted)": tr.total_writes,
            "total (formula)": f[f"{key}_total"],
            "read": dict(tr.reads),
            "written": dict(tr.writes),
        }
        for name, key, tr in methods
    ]
    return {
        "max_diff_scratch": float((out - ours).abs().max()),
        "max_diff_torch": float((out - ref).abs().max()),
        "traffic_ratio": tr_s.total / tr_f.total,
        "traffic": rows,
    }


# ---------------------------------------------------------------------------------------------------------
# torch's own kernels, timed and measured on this machine
# ---------------------------------------------------------------------------------------------------------


def _sdpa_backends() -> dict[str, object]:
    """Name -> torch SDPBackend for the kernels this torch build offers (None when sdpa_kernel is missing)."""
    try:
        from torch.nn.attention import SDPBackend
    except ImportError:  # torch < 2.3
        return {}
    return {"math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION}


def _run_sdpa(backend, q, k, v, causal) -> Tensor:
    from torch.nn.attention import sdpa_kernel

    with sdpa_kernel(backend):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def _attention_call(backend, q: Tensor, k: Tensor, v: Tensor, causal: bool):
    """A no-argument callable running one implementation on fixed inputs (for timing)."""
    from engine.lm.attention import scaled_dot_product_attention as scratch_sdpa

    if backend == "scratch":
        return lambda: scratch_sdpa(q, k, v, causal=causal, return_weights=False)[0]
    if backend == "tiled":
        return lambda: flash_attention(q, k, v, causal=causal, block_q=128, block_k=128)
    if backend is None:
        return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return lambda: _run_sdpa(backend, q, k, v, causal)


def time_sdpa_backends(
    lengths: list[int],
    heads: int = 9,
    D: int = 64,
    causal: bool = True,
    repeats: int = 3,
    include_scratch: bool = True,
    progress: ProgressFn = null_progress,
    should_stop=lambda: False,
) -> list[dict]:
    """Median wall time of each attention implementation at each length, all measured in this one run.

    Implementations: torch SDPA with the math backend (materializes the score matrix), torch SDPA with the
    fused flash kernel (on CPU too, since torch 2.3), engine.lm.attention (from scratch, materialized) and — for
    lengths ≤ 1024 — our tiled `flash_attention` (Python loops over tiles: exact, but slow, because the point of
    FlashAttention is a *fused* kernel). Rows that a backend cannot run are reported with `error`.
    Raises Cancelled (keeping nothing) if should_stop() turns true between measurements.
    """
    if not lengths or any(n <= 0 or n > 16384 for n in lengths):
        raise InputError("flash.bad_lengths")
    if not 1 <= repeats <= 20:
        raise InputError("flash.bad_repeats")
    backends = _sdpa_backends()
    impls: list[tuple[str, object]] = [(f"torch SDPA ({name})", b) for name, b in backends.items()]
    if not backends:
        impls.append(("torch SDPA (default)", None))
    impls.append(("engine.lm.attention (scratch)", "scratch"))
    if include_scratch:
        impls.append(("flash_attention (scratch, tiled)", "tiled"))
    rows: list[dict] = []
    total = len(lengths) * len(impls)
    gen = torch.Generator().manual_seed(0)
    for n in lengths:
        q, k, v = (torch.randn(1, heads, n, D, generator=gen) for _ in range(3))
        for name, b in impls:
            if should_stop():
                raise Cancelled("stopped")
            progress(len(rows) / total, f"{name}, T={n}")
            if b == "tiled" and n > 1024:
                continue
            fn = _attention_call(b, q, k, v, causal)
            try:
                fn()  # warm-up (allocator, kernel selection)
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
                rows.append({"T": n, "implementation": name, "ms": 1000 * sorted(times)[len(times) // 2]})
            except RuntimeError as exc:  # e.g. "No viable backend" on builds without a CPU flash kernel
                rows.append({"T": n, "implementation": name, "ms": None, "error": str(exc).splitlines()[0]})
    progress(1.0, "done")
    return rows


def measure_sdpa_memory(T: int = 1024, heads: int = 9, D: int = 64, causal: bool = True) -> list[dict]:
    """Bytes allocated while one SDPA call runs, per backend, measured with torch.profiler(profile_memory=True).

    The math backend allocates the (heads, T, T) score matrix; the fused flash kernel only small tiles.
    The score matrix size is returned alongside so the two can be compared.
    """
    from torch.profiler import ProfilerActivity, profile

    if not 1 <= T <= 8192:
        raise InputError("flash.bad_t")
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, heads, T, D, generator=gen) for _ in range(3))
    rows = []
    for name, b in _sdpa_backends().items():
        try:
            _run_sdpa(b, q, k, v, causal)
            with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
                _run_sdpa(b, q, k, v, causal)
        except RuntimeError as exc:
            rows.append({"backend": name, "peak_bytes": None, "error": str(exc).splitlines()[0]})
            continue
        peak = max((e.cpu_memory_usage for e in prof.key_averages()), default=0)
        rows.append({"backend": name, "peak_bytes": int(peak), "score_matrix_bytes": heads * T * T * q.element_size()})
    return rows
