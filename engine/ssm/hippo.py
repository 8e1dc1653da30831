"""HiPPO (16.2): the A matrix that makes an SSM's state a *memory of the whole past*.

HiPPO-LegS asks: which state x(t) ∈ R^N best summarizes the input seen so far, u(s) for 0 <= s <= t? Answer: the
coefficients of u's projection onto the first N (scaled) Legendre polynomials on [0, t]. Those coefficients obey a
linear ODE,

    x'(t) = (1/t) (A x(t) + B u(t)),     A = -make_hippo(N) as below,  B_n = sqrt(2n+1)

so an SSM with this A carries a compressed copy of the past, and the past can be read back from the state:

    u(s) ≈ Σ_n x_n(t) sqrt(2n+1) P_n(2s/t - 1)      for 0 <= s <= t

`hippo_memory` runs that recurrence on a signal and reconstructs the past from the state at a few times (arrays the
page plots). S4 uses this A (with a fixed Δ instead of 1/t) as its initialization.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.ssm.errors import SSMError, check_finite, check_length

__all__ = ["HippoMemory", "hippo_legs", "hippo_memory", "legendre", "make_hippo"]

MAX_N = 256
MAX_SIGNAL = 4096
SIGNALS = ("sine", "step", "chirp", "noise")


def _sqrt_odd(N: int) -> torch.Tensor:
    """sqrt(2n + 1) for n < N, (N,) float64, correctly rounded: math.sqrt is IEEE-exact like numpy's, while torch's
    vectorised sqrt is 1 ulp off on some CPUs (sqrt(19) on a Xeon of these VMs), and the matrix should be the same
    bits as the Annotated S4's wherever it runs."""
    return torch.tensor([math.sqrt(1 + 2 * n) for n in range(N)], dtype=torch.float64)


def make_hippo(N: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The HiPPO-LegS matrix, exactly the Annotated S4's `make_HiPPO`:

        P = sqrt(1 + 2 arange(N));  A = P[:, None] * P[None, :];  A = tril(A) - diag(arange(N));  return -A

    i.e. A_nk = -sqrt(2n+1) sqrt(2k+1) below the diagonal, -(n+1) on it, 0 above.
    """
    if not isinstance(N, int) or not 1 <= N <= MAX_N:
        raise SSMError("ssm.bad_dimension", name="N", value=N, low=1, high=MAX_N)
    P = _sqrt_odd(N)
    A = P[:, None] * P[None, :]
    A = torch.tril(A) - torch.diag(torch.arange(N, dtype=torch.float64))
    return (-A).to(dtype)


def hippo_legs(N: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """(A (N, N), B (N, 1)) of HiPPO-LegS: B_n = sqrt(2n+1)."""
    return make_hippo(N, dtype), _sqrt_odd(N).to(dtype)[:, None]


def legendre(N: int, s: torch.Tensor) -> torch.Tensor:
    """P_0..P_{N-1} at points s in [-1, 1] by the three-term recurrence: (N, len(s))."""
    out = [torch.ones_like(s), s]
    for n in range(1, N - 1):
        out.append(((2 * n + 1) * s * out[n] - n * out[n - 1]) / (n + 1))
    return torch.stack(out[:N])


@dataclass
class HippoMemory:
    """A signal, the HiPPO state over time, and the past reconstructed from the state at chosen times."""

    N: int
    signal_name: str
    t: list[float]  # sample times in (0, 1]
    signal: list[float]
    read_times: list[float]  # the times at which the past is reconstructed
    reconstructions: list[list[float]]  # one per read time, on the samples t <= read time
    errors: list[float]  # RMS error of each reconstruction
    state_norms: list[float]  # |x(t)| over time

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _signal(name: str, t: torch.Tensor, seed: int) -> torch.Tensor:
    if name == "sine":
        return torch.sin(2 * math.pi * 3 * t) + 0.5 * torch.cos(2 * math.pi * 7 * t)
    if name == "step":
        return (t > 0.4).to(t.dtype) - 0.5 * (t > 0.75).to(t.dtype)
    if name == "chirp":
        return torch.sin(2 * math.pi * (2 * t + 6 * t * t))
    # smooth noise: random Fourier series (a white-noise signal cannot be summarized by any N numbers)
    g = torch.Generator().manual_seed(seed)
    freqs = torch.arange(1, 9, dtype=t.dtype)
    a = torch.randn(8, generator=g, dtype=t.dtype) / freqs
    ph = torch.rand(8, generator=g, dtype=t.dtype) * 2 * math.pi
    return (a[:, None] * torch.sin(2 * math.pi * freqs[:, None] * t[None] + ph[:, None])).sum(0)


def hippo_memory(
    N: int = 32,
    length: int = 1000,
    signal: str | torch.Tensor = "sine",
    read_fractions: tuple[float, ...] = (0.25, 0.5, 1.0),
    seed: int = 0,
) -> HippoMemory:
    """Feed a signal into the HiPPO-LegS recurrence (bilinear steps of 1/k), reconstruct the past from the state.

    Step k (k = 1..L) sees the input u_k and updates x_k = (I - A/(2k))⁻¹ ((I + A/(2k)) x_{k-1} + B u_k / k).
    """
    if not isinstance(N, int) or not 1 <= N <= MAX_N:
        raise SSMError("ssm.bad_dimension", name="N", value=N, low=1, high=MAX_N)
    check_length(length, MAX_SIGNAL)
    if length < 2:
        raise SSMError("ssm.length_out_of_range", value=length, low=2, high=MAX_SIGNAL)
    dtype = torch.float64
    t = torch.arange(1, length + 1, dtype=dtype) / length  # (L,) in (0, 1]
    if isinstance(signal, torch.Tensor):
        u, name = signal.to(dtype).reshape(-1), "custom"
        if u.shape[0] != length:
            raise SSMError("ssm.bad_shape", name="signal", expected=f"({length},)", value=tuple(u.shape))
    elif signal in SIGNALS:
        u, name = _signal(signal, t, seed), signal
    else:
        raise SSMError("input.unknown_choice", name="signal", value=signal, choices=", ".join(SIGNALS))
    check_finite("signal", u)
    for f in read_fractions:
        if not (math.isfinite(f) and 0 < f <= 1):
            raise SSMError("ssm.position_out_of_range", value=f, length=1)

    A, B = hippo_legs(N, dtype)
    eye = torch.eye(N, dtype=dtype)
    x = torch.zeros(N, 1, dtype=dtype)
    reads = sorted({max(1, min(length, round(f * length))) for f in read_fractions})
    states: dict[int, torch.Tensor] = {}
    norms = []
    for k in range(1, length + 1):
        # the time-varying step 1/k is what makes LegS scale-invariant: the memory covers all of [0, t], not a window
        left = eye - A / (2 * k)
        right = (eye + A / (2 * k)) @ x + B * (u[k - 1] / k)
        x = torch.linalg.solve(left, right)  # (N, 1)
        norms.append(float(x.norm()))
        if k in reads:
            states[k] = x[:, 0].clone()

    scale = torch.sqrt(1 + 2 * torch.arange(N, dtype=dtype))  # (N,)
    recons, errors = [], []
    for k in reads:
        s = t[:k]  # the past: samples up to the read time t_k
        P = legendre(N, 2 * s / t[k - 1] - 1)  # (N, k)
        rec = (states[k] * scale) @ P  # (k,)
        recons.append(rec.tolist())
        errors.append(float(torch.sqrt(((rec - u[:k]) ** 2).mean())))
    return HippoMemory(
        N=N,
        signal_name=name,
        t=t.tolist(),
        signal=u.tolist(),
        read_times=[float(t[k - 1]) for k in reads],
        reconstructions=recons,
        errors=errors,
        state_norms=norms,
    )
