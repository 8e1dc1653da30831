"""Noise schedules for DDPM (book 14.3): how much noise step t adds (β_t), and how much of x_0 is left (ᾱ_t).

    ᾱ_t = ∏_{s≤t} (1 − β_s)          x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε

- linear (Ho et al., 2020): β rises linearly from 1e-4 to 0.02 over T = 1000 steps. With fewer steps the ends are
  scaled by 1000/T so that the total noise (and ᾱ_T ≈ 0) stays the same.
- cosine (Nichol & Dhariwal, 2021): ᾱ_t = f(t)/f(0), f(t) = cos²(((t/T) + s)/(1 + s) · π/2). ᾱ falls slowly at
  both ends, so fewer steps are wasted on pure noise at the end (the linear ᾱ_t is ≈ 0 for the last third).

Steps are indexed t = 0..T-1 (the paper's 1..T); `alpha_bar_prev[t]` is ᾱ_{t-1}, with ᾱ_{-1} = 1 (no noise yet).
Everything is float64 here; a model casts what it needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.multimodal.gen_errors import GenerationError

SCHEDULES = ("linear", "cosine")
MIN_STEPS, MAX_STEPS = 2, 2000


@dataclass(frozen=True)
class NoiseSchedule:
    name: str
    betas: torch.Tensor  # (T,) float64, β_t
    alphas: torch.Tensor  # (T,) 1 − β_t
    alpha_bar: torch.Tensor  # (T,) ᾱ_t = ∏_{s≤t} α_s
    alpha_bar_prev: torch.Tensor  # (T,) ᾱ_{t-1}, ᾱ_{-1} = 1

    @property
    def steps(self) -> int:
        return int(self.betas.shape[0])

    @property
    def posterior_variance(self) -> torch.Tensor:
        """β̃_t = β_t (1 − ᾱ_{t-1}) / (1 − ᾱ_t): the variance of q(x_{t-1} | x_t, x_0). (T,)"""
        return self.betas * (1 - self.alpha_bar_prev) / (1 - self.alpha_bar)

    @property
    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio ᾱ_t / (1 − ᾱ_t) at each step. (T,)"""
        return self.alpha_bar / (1 - self.alpha_bar)

    def curves(self) -> dict:
        """ᾱ_t, β_t and log10 SNR per step as plain lists (for a chart)."""
        return {
            "t": list(range(self.steps)),
            "alpha_bar": [round(float(v), 6) for v in self.alpha_bar],
            "beta": [round(float(v), 6) for v in self.betas],
            "log10_snr": [round(float(v), 4) for v in torch.log10(self.snr)],
        }


def _from_betas(name: str, betas: torch.Tensor) -> NoiseSchedule:
    alphas = 1.0 - betas
    alpha_bar = torch.cumprod(alphas, dim=0)
    alpha_bar_prev = torch.cat([torch.ones(1, dtype=alpha_bar.dtype), alpha_bar[:-1]])
    return NoiseSchedule(name, betas, alphas, alpha_bar, alpha_bar_prev)


def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or not MIN_STEPS <= steps <= MAX_STEPS:
        raise GenerationError("mmgen.bad_number", name="steps", low=MIN_STEPS, high=MAX_STEPS, value=steps)
    return steps


def linear_schedule(steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
    """Ho et al.'s linear β, its ends scaled by 1000/T (so T = 1000 gives exactly 1e-4 .. 0.02)."""
    steps = _check_steps(steps)
    scale = 1000.0 / steps
    betas = torch.linspace(beta_start * scale, min(beta_end * scale, 0.999), steps, dtype=torch.float64)
    return _from_betas("linear", betas)


def cosine_schedule(steps: int, s: float = 0.008) -> NoiseSchedule:
    """Nichol & Dhariwal's cosine ᾱ; β_t = 1 − ᾱ_t/ᾱ_{t-1}, clipped at 0.999 (the last step would be β = 1)."""
    steps = _check_steps(steps)
    x = torch.arange(steps + 1, dtype=torch.float64)
    f = torch.cos(((x / steps) + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]  # (T+1,): ᾱ at the paper's t = 0..T
    betas = (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    return _from_betas("cosine", betas)


def make_schedule(name: str, steps: int) -> NoiseSchedule:
    if name == "linear":
        return linear_schedule(steps)
    if name == "cosine":
        return cosine_schedule(steps)
    raise GenerationError("input.unknown_choice", name="schedule", value=name, choices=", ".join(SCHEDULES))


def compare_schedules(steps: int = 1000) -> dict:
    """Both schedules' curves and where ᾱ_t first drops below 0.01 (from there on a step sees almost only noise)."""
    out = {}
    for name in SCHEDULES:
        sch = make_schedule(name, steps)
        below = torch.nonzero(sch.alpha_bar < 0.01)
        first = int(below[0]) if below.numel() else steps
        out[name] = {**sch.curves(), "noise_only_from": first, "noise_only_fraction": round(1 - first / steps, 4)}
    return out
