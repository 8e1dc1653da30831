"""S4 (16.2): a linear state space model seen two ways — as a recurrence and as a convolution — with the same numbers.

A continuous SSM maps an input signal u(t) to an output y(t) through an N-dimensional state x(t):

    x'(t) = A x(t) + B u(t)          A (N, N), B (N, 1)
    y(t)  = C x(t) + D u(t)          C (1, N), D scalar

To run it on a sequence u_0..u_{L-1} we discretize with a step Δ (the "sampling period"):

    zero-order hold (ZOH):  Ā = exp(Δ A),                       B̄ = A⁻¹ (Ā - I) B   (exact if u is constant on a step)
    bilinear (Tustin):      Ā = (I - Δ/2 A)⁻¹ (I + Δ/2 A),      B̄ = (I - Δ/2 A)⁻¹ Δ B

and then the same discrete model can be computed

- recurrently (an RNN):        x_k = Ā x_{k-1} + B̄ u_k,  y_k = C x_k + D u_k       O(L) sequential steps, O(N) memory
- as a convolution (a CNN):    y = K * u + D u,  K = (C B̄, C Ā B̄, C Ā² B̄, ..., C Ā^{L-1} B̄)   all positions at once

because unrolling the recurrence from x_{-1} = 0 gives y_k = Σ_j C Ā^j B̄ u_{k-j}. The convolution can be done
directly (O(L²)) or with the FFT (O(L log L)); `cnn_vs_rnn` computes all three and reports the largest difference,
as the Annotated S4's `test_cnn_is_rnn` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.ssm.errors import SSMError, check_finite, check_length

__all__ = [
    "CnnVsRnn",
    "ContinuousSSM",
    "DiscreteSSM",
    "causal_conv",
    "causal_conv_fft",
    "cnn_vs_rnn",
    "discretize",
    "random_ssm",
    "scan_recurrent",
    "ssm_kernel",
]

METHODS = ("zoh", "bilinear")
MAX_STATE = 512  # N: a page's slider (or a shared URL) cannot ask for a 10⁶×10⁶ matrix
MAX_LENGTH = 8192
# Δ·ρ(A) above this (ρ: the spectral radius) leaves no memory: ZOH's Ā ≈ 0, bilinear's Ā ≈ -I (it flips sign every
# step instead of decaying). Both are useless as a memory, so a slider value there is refused with a clear message.
MAX_STEP_SCALE = 1e3


@dataclass
class ContinuousSSM:
    """x' = A x + B u, y = C x + D u (single input, single output)."""

    A: torch.Tensor  # (N, N)
    B: torch.Tensor  # (N, 1)
    C: torch.Tensor  # (1, N)
    D: float = 0.0

    def __post_init__(self) -> None:
        n = self.A.shape[0]
        if self.A.dim() != 2 or self.A.shape != (n, n) or not 1 <= n <= MAX_STATE:
            raise SSMError(
                "ssm.bad_shape", name="A", expected=f"(N, N), 1 <= N <= {MAX_STATE}", value=tuple(self.A.shape)
            )
        if tuple(self.B.shape) != (n, 1):
            raise SSMError("ssm.bad_shape", name="B", expected=f"({n}, 1)", value=tuple(self.B.shape))
        if tuple(self.C.shape) != (1, n):
            raise SSMError("ssm.bad_shape", name="C", expected=f"(1, {n})", value=tuple(self.C.shape))
        for name in ("A", "B", "C", "D"):
            check_finite(name, getattr(self, name))
        # stable = every eigenvalue has a real part <= 0: the state decays (or oscillates) instead of exploding
        top = float(torch.linalg.eigvals(self.A.detach().double()).real.max())
        if top > 1e-9:
            raise SSMError("ssm.unstable_a", value=top)

    @property
    def N(self) -> int:
        return self.A.shape[0]


@dataclass
class DiscreteSSM:
    """x_k = Ā x_{k-1} + B̄ u_k, y_k = C x_k + D u_k."""

    Ab: torch.Tensor  # (N, N)
    Bb: torch.Tensor  # (N, 1)
    C: torch.Tensor  # (1, N)
    D: float
    step: float
    method: str


def _check_step(step: float, A: torch.Tensor, method: str) -> None:
    if not isinstance(step, int | float) or not math.isfinite(step) or step <= 0:
        raise SSMError("ssm.bad_step", value=step)
    radius = float(torch.linalg.eigvals(A.detach().double()).abs().max())
    if radius > 0 and step * radius > MAX_STEP_SCALE:
        limit_matrix = "0" if method == "zoh" else "-I"
        raise SSMError(
            "ssm.step_too_large", value=step, limit=MAX_STEP_SCALE / radius, method=method, limit_matrix=limit_matrix
        )


def discretize(ssm: ContinuousSSM, step: float, method: str = "bilinear") -> DiscreteSSM:
    """Ā, B̄ for a step Δ with zero-order hold ("zoh") or the bilinear transform ("bilinear")."""
    if method not in METHODS:
        raise SSMError("input.unknown_choice", name="method", value=method, choices=", ".join(METHODS))
    _check_step(step, ssm.A, method)
    A, B = ssm.A, ssm.B
    n = A.shape[0]
    eye = torch.eye(n, dtype=A.dtype)
    if method == "bilinear":
        BL = torch.linalg.inv(eye - step / 2.0 * A)  # (I - Δ/2 A)⁻¹: exists whenever A is stable
        Ab = BL @ (eye + step / 2.0 * A)
        Bb = (BL * step) @ B
    else:
        # exp of the block matrix [[A, B], [0, 0]]·Δ = [[Ā, B̄], [0, I]]: gives B̄ = ∫₀^Δ exp(sA) ds B without
        # inverting A (which may be singular)
        M = torch.zeros(n + 1, n + 1, dtype=A.dtype)
        M[:n, :n] = A
        M[:n, n:] = B
        E = torch.linalg.matrix_exp(M * step)
        Ab, Bb = E[:n, :n], E[:n, n:]
    check_finite("Ā", Ab)
    return DiscreteSSM(Ab=Ab, Bb=Bb, C=ssm.C, D=float(ssm.D), step=float(step), method=method)


def _check_input(u: torch.Tensor) -> None:
    if u.dim() != 1:
        raise SSMError("ssm.bad_shape", name="u", expected="(L,)", value=tuple(u.shape))
    check_length(u.shape[0], MAX_LENGTH)
    check_finite("u", u)


def scan_recurrent(
    d: DiscreteSSM, u: torch.Tensor, x0: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The RNN view: step through time. u (L,) -> y (L,), and the states x (L, N)."""
    _check_input(u)
    x = torch.zeros(d.Ab.shape[0], 1, dtype=d.Ab.dtype) if x0 is None else x0.reshape(-1, 1)  # (N, 1)
    ys, xs = [], []
    for k in range(u.shape[0]):
        x = d.Ab @ x + d.Bb * u[k]  # (N, 1): the whole past, compressed into N numbers
        ys.append((d.C @ x)[0, 0] + d.D * u[k])
        xs.append(x[:, 0])
    if not ys:
        return u.new_zeros(0), u.new_zeros(0, d.Ab.shape[0])
    return torch.stack(ys), torch.stack(xs)


def ssm_kernel(d: DiscreteSSM, length: int) -> torch.Tensor:
    """K = (C B̄, C Ā B̄, ..., C Ā^{L-1} B̄): (L,), the impulse response of the discrete SSM."""
    check_length(length, MAX_LENGTH)
    out = []
    v = d.Bb  # (N, 1): Ā^l B̄, built up one power at a time (never forming Ā^l itself)
    for _ in range(length):
        out.append((d.C @ v)[0, 0])
        v = d.Ab @ v
    return torch.stack(out) if out else d.Ab.new_zeros(0)


def causal_conv(u: torch.Tensor, K: torch.Tensor, D: float = 0.0) -> torch.Tensor:
    """y_k = Σ_{j<=k} K_j u_{k-j} + D u_k, directly (O(L²)): only the past reaches position k."""
    _check_input(u)
    L = u.shape[0]
    # T[k, i] = K[k - i] for i <= k: a lower-triangular Toeplitz matrix
    idx = torch.arange(L)
    lag = idx[:, None] - idx[None, :]  # (L, L)
    T = torch.where(lag >= 0, K[lag.clamp(min=0)], torch.zeros((), dtype=K.dtype))
    return T @ u + D * u


def causal_conv_fft(u: torch.Tensor, K: torch.Tensor, D: float = 0.0) -> torch.Tensor:
    """The same convolution through the FFT (O(L log L)). Padding to 2L turns the FFT's circular convolution into
    a linear one, so the end of the sequence does not wrap around onto its beginning."""
    _check_input(u)
    L = u.shape[0]
    n = 2 * L
    y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(K, n=n), n=n)[:L]
    return y + D * u


def random_ssm(N: int = 4, seed: int = 0, dtype: torch.dtype = torch.float64) -> ContinuousSSM:
    """A random stable SSM, as the Annotated S4's `random_SSM` (uniform A, B, C), with A shifted left until every
    eigenvalue has a negative real part (we refuse unstable A)."""
    if not 1 <= N <= MAX_STATE:
        raise SSMError("ssm.bad_dimension", name="N", value=N, low=1, high=MAX_STATE)
    g = torch.Generator().manual_seed(seed)
    A = torch.rand(N, N, generator=g, dtype=torch.float64)
    B = torch.rand(N, 1, generator=g, dtype=torch.float64)
    C = torch.rand(1, N, generator=g, dtype=torch.float64)
    shift = float(torch.linalg.eigvals(A).real.max()) + 0.5
    A = A - shift * torch.eye(N, dtype=torch.float64)
    return ContinuousSSM(A=A.to(dtype), B=B.to(dtype), C=C.to(dtype))


@dataclass
class CnnVsRnn:
    """The recurrent and the convolutional view of one discretized SSM on one input."""

    N: int
    length: int
    step: float
    method: str
    dtype: str
    y_recurrent: list[float]
    y_conv: list[float]
    y_fft: list[float]
    kernel: list[float]
    max_diff_conv: float  # |recurrent - direct convolution|
    max_diff_fft: float  # |recurrent - FFT convolution|

    @property
    def max_diff(self) -> float:
        return max(self.max_diff_conv, self.max_diff_fft)

    def as_dict(self) -> dict:
        return {**self.__dict__, "max_diff": self.max_diff}


def cnn_vs_rnn(
    ssm: ContinuousSSM | None = None,
    length: int = 16,
    step: float | None = None,
    method: str = "bilinear",
    u: torch.Tensor | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> CnnVsRnn:
    """The Annotated S4's `test_cnn_is_rnn`: a random SSM (N=4), L=16, Δ=1/L, one random input; both views."""
    check_length(length, MAX_LENGTH)
    if length < 1:
        raise SSMError("ssm.length_out_of_range", value=length, low=1, high=MAX_LENGTH)
    ssm = ssm if ssm is not None else random_ssm(4, seed=seed, dtype=dtype)
    ssm = ContinuousSSM(A=ssm.A.to(dtype), B=ssm.B.to(dtype), C=ssm.C.to(dtype), D=ssm.D)
    step = 1.0 / length if step is None else step
    d = discretize(ssm, step, method)
    if u is None:
        u = torch.rand(length, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    u = u.to(dtype)
    y_rnn, _ = scan_recurrent(d, u)
    K = ssm_kernel(d, u.shape[0])
    y_cnn = causal_conv(u, K, d.D)
    y_fft = causal_conv_fft(u, K, d.D)
    return CnnVsRnn(
        N=ssm.N,
        length=int(u.shape[0]),
        step=float(step),
        method=method,
        dtype=str(dtype).removeprefix("torch."),
        y_recurrent=y_rnn.tolist(),
        y_conv=y_cnn.tolist(),
        y_fft=y_fft.tolist(),
        kernel=K.tolist(),
        max_diff_conv=float((y_rnn - y_cnn).abs().max()) if length else 0.0,
        max_diff_fft=float((y_rnn - y_fft).abs().max()) if length else 0.0,
    )
