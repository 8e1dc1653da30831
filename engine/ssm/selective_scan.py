"""Selection (16.3): a state space model whose Δ, B and C depend on the input, computed two ways.

S4 is *linear time invariant* (LTI): the same Ā, B̄, C at every step, so the whole layer is one convolution. Mamba
makes Δ, B and C functions of the current token. That breaks the convolution view (the kernel would differ at
every position) but keeps the recurrence

    h_t = Ā_t * h_{t-1} + B̄_t x_t        Ā_t = exp(Δ_t A),  B̄_t = Δ_t B_t   (per channel d, per state n)
    y_t = C_t · h_t + D x_t

linear in h. A linear recurrence h_t = a_t h_{t-1} + b_t is an associative scan over the pairs (a_t, b_t):

    (a1, b1) ∘ (a2, b2) = (a1 a2, a2 b1 + b2)      ("first apply step 1, then step 2")

so it can be computed in log2(L) parallel rounds instead of L sequential steps. Both versions are here and are tested
equal: `selective_scan_sequential` (a Python loop over L, what transformers' CPU fallback does) and
`selective_scan_parallel` (Hillis–Steele, O(L log L) work, log-depth).

Shapes (the names used in the Mamba paper and in transformers):
    x      (B, L, D)   the sequence, D = d_inner channels
    delta  (B, L, D)   Δ > 0 (already passed through softplus)
    A      (D, N)      negative real (N = d_state)
    Bmat   (B, L, N)   input-dependent B
    Cmat   (B, L, N)   input-dependent C
    Dskip  (D,)        the skip connection D
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.ssm.errors import SSMError, check_finite, check_length

__all__ = [
    "SelectiveCopyDemo",
    "discretize_selective",
    "scan_combine",
    "selective_copy_demo",
    "selective_scan",
    "selective_scan_parallel",
    "selective_scan_sequential",
]


def discretize_selective(
    x: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, Bmat: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ā = exp(Δ A) and B̄x = Δ B x for every (batch, time, channel, state): the pairs (a_t, b_t) of the scan.

    B̄ = Δ B is the simplified ("Euler") discretization of B that Mamba uses; Ā uses the exact zero-order hold.
    """
    dA = torch.exp(delta.unsqueeze(-1) * A)  # (B, L, D, 1) * (D, N) -> (B, L, D, N)
    dBx = delta.unsqueeze(-1) * Bmat.unsqueeze(2) * x.unsqueeze(-1)  # (B, L, D, 1)*(B, L, 1, N)*(B, L, D, 1)
    return dA, dBx


def scan_combine(
    left: tuple[torch.Tensor, torch.Tensor], right: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(a1, b1) ∘ (a2, b2) = (a1 a2, a2 b1 + b2): two steps of h -> a h + b, first `left` then `right`.

    Associative (so any bracketing gives the same result) but not commutative (time order matters).
    """
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a2 * b1 + b2


def _output(h: torch.Tensor, x: torch.Tensor, Cmat: torch.Tensor, Dskip, z) -> torch.Tensor:
    """y_t = C_t · h_t (+ D x_t) (* SiLU(z_t)) from all states h (B, L, D, N)."""
    y = (h * Cmat.unsqueeze(2)).sum(-1)  # (B, L, D, N) * (B, L, 1, N) -> (B, L, D)
    if Dskip is not None:
        y = y + x * Dskip
    if z is not None:
        y = y * torch.nn.functional.silu(z)
    return y


def selective_scan_sequential(
    x: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    Bmat: torch.Tensor,
    Cmat: torch.Tensor,
    Dskip: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    h0: torch.Tensor | None = None,
    return_state: bool = False,
):
    """The recurrence written as a loop over time: L small steps, each needing the previous one.

    Returns y (B, L, D), and with `return_state` also the last state h_L (B, D, N).
    """
    dA, dBx = discretize_selective(x, delta, A, Bmat)  # (B, L, D, N) each
    batch, _, d, n = dA.shape
    h = h0 if h0 is not None else torch.zeros(batch, d, n, dtype=dA.dtype, device=dA.device)  # (B, D, N)
    ys = []
    # unbind once: indexing dA[:, t] inside the loop would make each step's backward write a full-size (B, L, D, N)
    # zero gradient, so training over L steps would cost L² (measured: 42 s for one backward at L = 4096)
    for a_t, bx_t, c_t in zip(dA.unbind(1), dBx.unbind(1), Cmat.unbind(1), strict=True):
        h = a_t * h + bx_t  # (B, D, N): forget a little (Ā_t), write the new input (B̄_t x_t)
        ys.append((h * c_t.unsqueeze(1)).sum(-1))  # read out: C_t · h_t -> (B, D)
    y = torch.stack(ys, dim=1) if ys else x.new_zeros(batch, 0, d)  # (B, L, D)
    if Dskip is not None:
        y = y + x * Dskip
    if z is not None:
        y = y * torch.nn.functional.silu(z)
    return (y, h) if return_state else y


def _hillis_steele(a: torch.Tensor, b: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive scan of the pairs (a_t, b_t) along `dim` with `scan_combine`, in ceil(log2 L) rounds.

    Round k combines every position t with the position t - 2^k (positions before 2^k are already complete).
    Each round is one vectorized tensor operation, so the depth is log2(L) while the work is L log2(L).
    """
    length = a.shape[dim]
    offset = 1
    while offset < length:
        a_prev = a.narrow(dim, 0, length - offset)  # the partial results ending at t - offset
        b_prev = b.narrow(dim, 0, length - offset)
        a_cur = a.narrow(dim, offset, length - offset)
        b_cur = b.narrow(dim, offset, length - offset)
        a_new, b_new = scan_combine((a_prev, b_prev), (a_cur, b_cur))
        # out-of-place (cat) so autograd can differentiate through every round
        a = torch.cat([a.narrow(dim, 0, offset), a_new], dim=dim)
        b = torch.cat([b.narrow(dim, 0, offset), b_new], dim=dim)
        offset *= 2
    return a, b


def selective_scan_parallel(
    x: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    Bmat: torch.Tensor,
    Cmat: torch.Tensor,
    Dskip: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    h0: torch.Tensor | None = None,
    return_state: bool = False,
):
    """The same recurrence as a parallel associative scan (Hillis–Steele) over the pairs (Ā_t, B̄_t x_t).

    After the scan, the b-part at position t is exactly h_t (with h_0 = 0): every state at once.
    """
    dA, dBx = discretize_selective(x, delta, A, Bmat)  # (B, L, D, N) each
    if h0 is not None and dA.shape[1] > 0:
        # a start state enters as the first step's extra input: h_1 = Ā_1 h0 + B̄_1 x_1
        first = dA[:, :1] * h0.unsqueeze(1) + dBx[:, :1]
        dBx = torch.cat([first, dBx[:, 1:]], dim=1)
    _, h = _hillis_steele(dA, dBx, dim=1)  # (B, L, D, N): all states h_1..h_L
    y = _output(h, x, Cmat, Dskip, z)  # (B, L, D)
    if not return_state:
        return y
    if h.shape[1] == 0:
        last = h0 if h0 is not None else h.new_zeros(h.shape[0], h.shape[2], h.shape[3])
    else:
        last = h[:, -1]
    return y, last


MAX_SCAN_LENGTH = 8192  # a page or a shared URL cannot ask for more (the parallel scan holds (B, L, D, N) tensors)
MAX_DELTA = 1e4  # softplus of a sane projection stays far below; above, float32 overflows


def selective_scan(
    x: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    Bmat: torch.Tensor,
    Cmat: torch.Tensor,
    Dskip: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    mode: str = "parallel",
    h0: torch.Tensor | None = None,
    return_state: bool = False,
):
    """Check the inputs (typed errors) and run the chosen scan: "parallel" or "sequential"."""
    if mode not in ("parallel", "sequential"):
        raise SSMError("input.unknown_choice", name="scan", value=mode, choices="parallel, sequential")
    check_length(x.shape[1], MAX_SCAN_LENGTH)
    check_finite("x", x)
    check_finite("delta", delta)
    if delta.numel():
        low, high = float(delta.detach().min()), float(delta.detach().max())
        if low < 0:  # Δ is a step forward in time (Mamba gets it from softplus, so it is never negative)
            raise SSMError("ssm.bad_step", value=low)
        if high > MAX_DELTA:  # Ā = exp(ΔA) is then 0 and B̄x = ΔBx huge: the state forgets everything and overflows
            raise SSMError("ssm.step_too_large", value=high, limit=MAX_DELTA, method="zoh", limit_matrix="0")
    if bool((A > 0).any()):
        raise SSMError("ssm.unstable_a", value=float(A.detach().max()))
    fn = selective_scan_parallel if mode == "parallel" else selective_scan_sequential
    return fn(x, delta, A, Bmat, Cmat, Dskip, z, h0=h0, return_state=return_state)


# ---------------------------------------------------------------------------------------------------------------
# Why selection: a time-invariant convolution cannot do selective copying
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class SelectiveCopyDemo:
    """Selective copying: a content token (value `value`, marked) sits among noise tokens, at a different position in
    each of two inputs; the model must output the content value at the end.

    `lti_outputs[name]`: a time-invariant SSM (one fixed kernel K, the same whatever the tokens) gives
    y = Σ_p K[L-1-p] u_p. The "leaky" kernel weighs the token by how long ago it came (the answer depends on the
    position); the "sum" kernel (K ≡ 1) also adds every noise token. No fixed kernel gets both inputs right, because
    K cannot look at *what* a token is, only *where* it is.
    `selective_outputs`: a selective scan whose Δ and B depend on the token (Δ large and B = 1/Δ on content: forget
    the past, write the token; Δ ≈ 0 and B = 0 on noise: keep the state) returns the value for both inputs.
    """

    length: int
    positions: list[int]
    value: float
    inputs: list[list[float]]
    markers: list[list[int]]
    lti_kernels: dict[str, list[float]]
    lti_outputs: dict[str, list[float]]
    selective_outputs: list[float]
    selective_deltas: list[list[float]]

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def selective_copy_demo(
    length: int = 16, positions: tuple[int, int] = (2, 9), value: float = 1.0, seed: int = 0
) -> SelectiveCopyDemo:
    """Numbers for the page: the same token at two positions among noise, fixed kernels vs a selective scan."""
    if not 2 <= length <= 512:
        raise SSMError("ssm.length_out_of_range", value=length, low=2, high=512)
    for p in positions:
        if not 0 <= p < length:
            raise SSMError("ssm.position_out_of_range", value=p, length=length)
    if not math.isfinite(value):
        raise SSMError("ssm.not_finite", name="value")
    dtype = torch.float64
    noise = 0.5 * torch.randn(length, generator=torch.Generator().manual_seed(seed), dtype=dtype)  # distractors
    inputs, markers = [], []
    for p in positions:
        u, m = noise.clone(), torch.zeros(length, dtype=dtype)
        u[p], m[p] = value, 1.0  # the token to copy, and the marker that says "this one is content"
        inputs.append(u)
        markers.append(m)

    # LTI: two fixed kernels; y_{L-1} = sum_p K[L-1-p] u_p
    a = math.exp(-0.3)
    kernels = {
        "leaky": torch.tensor([(1 - a) * a**k for k in range(length)], dtype=dtype),  # a decaying average
        "sum": torch.ones(length, dtype=dtype),  # remember everything equally
    }
    lti_out = {name: [float((K.flip(0) * u).sum()) for u in inputs] for name, K in kernels.items()}

    # selective: Δ_t and B_t are functions of the token (here of its marker; in Mamba, of x_t through x_proj)
    sel_out, deltas = [], []
    A = torch.tensor([[-1.0]], dtype=dtype)  # (D=1, N=1)
    for u, m in zip(inputs, markers, strict=True):
        delta = 20.0 * m + 1e-6 * (1 - m)  # content: Ā = e^-20 ≈ 0 (forget); noise: Ā ≈ 1 (keep)
        Bmat = (m / delta).view(1, length, 1)  # content: B̄ = Δ B = 1 (write); noise: B̄ = 0 (ignore)
        Cmat = torch.ones(1, length, 1, dtype=dtype)
        y = selective_scan_sequential(u.view(1, length, 1), delta.view(1, length, 1), A, Bmat, Cmat)
        sel_out.append(float(y[0, -1, 0]))
        deltas.append([float(v) for v in delta])
    return SelectiveCopyDemo(
        length=length,
        positions=list(positions),
        value=value,
        inputs=[[float(v) for v in u] for u in inputs],
        markers=[[int(v) for v in m] for m in markers],
        lti_kernels={name: [float(v) for v in K] for name, K in kernels.items()},
        lti_outputs=lti_out,
        selective_outputs=sel_out,
        selective_deltas=deltas,
    )
