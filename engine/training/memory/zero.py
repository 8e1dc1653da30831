"""ZeRO (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models").

Mixed-precision training with Adam keeps, for Ψ parameters: fp16 weights (2Ψ bytes), fp16 gradients (2Ψ) and
optimizer states of KΨ bytes — an fp32 copy of the weights, momentum and variance, K = 12. Plain data parallelism
keeps all (2 + 2 + K)Ψ on every GPU. ZeRO partitions them across the N data-parallel GPUs:

    stage 0 (plain DP)    (2 + 2 + K)·Ψ
    stage 1 (P_os)        2Ψ + 2Ψ + K·Ψ/N          optimizer states partitioned
    stage 2 (P_os+g)      2Ψ + (2 + K)·Ψ/N         ... and gradients
    stage 3 (P_os+g+p)    (2 + 2 + K)·Ψ/N          ... and the parameters themselves

The paper's Figure 1 example, Ψ = 7.5B and N = 64: 120 GB → 31.4 / 16.6 / 1.9 GB (GB = 10⁹ bytes).
Activations, temporary buffers and fragmentation come on top and are not partitioned by these stages.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.core.textinput import InputError

STAGES = (0, 1, 2, 3)
STAGE_NAMES = {0: "DP (no ZeRO)", 1: "ZeRO-1 (P_os)", 2: "ZeRO-2 (P_os+g)", 3: "ZeRO-3 (P_os+g+p)"}
MAX_PARAMS = 10**15
MAX_GPUS = 1_000_000


@dataclass(frozen=True)
class ZeroMemory:
    stage: int
    params: int
    gpus: int
    weights: float  # bytes per GPU
    gradients: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer

    def as_dict(self) -> dict:
        return {
            "stage": self.stage,
            "name": STAGE_NAMES[self.stage],
            "params": self.params,
            "gpus": self.gpus,
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "total": self.total,
        }


def zero_per_gpu(
    params: int, gpus: int, stage: int, k: float = 12, weight_bytes: float = 2, grad_bytes: float = 2
) -> ZeroMemory:
    """Model-state bytes per GPU for `params` parameters on `gpus` data-parallel GPUs at ZeRO `stage`."""
    if stage not in STAGES:
        raise InputError("memory.zero_stage", value=stage)
    if not 1 <= params <= MAX_PARAMS:
        raise InputError("memory.zero_params", limit=f"{MAX_PARAMS:.0e}", value=params)
    if not 1 <= gpus <= MAX_GPUS:
        raise InputError("memory.zero_gpus", limit=MAX_GPUS, value=gpus)
    if not 0 <= k <= 64:
        raise InputError("memory.zero_k", value=k)
    w, g, o = weight_bytes * params, grad_bytes * params, k * params
    if stage >= 1:
        o /= gpus
    if stage >= 2:
        g /= gpus
    if stage >= 3:
        w /= gpus
    return ZeroMemory(stage, params, gpus, w, g, o)


def zero_table(params: int, gpus: int, k: float = 12) -> list[ZeroMemory]:
    """All four stages, for the calculator's table and chart."""
    return [zero_per_gpu(params, gpus, stage, k) for stage in STAGES]


def max_params_that_fit(gpu_bytes: float, gpus: int, stage: int, k: float = 12) -> int:
    """The largest Ψ whose model states fit in `gpu_bytes` per GPU (activations not included)."""
    per_param = zero_per_gpu(1, gpus, stage, k).total  # linear in Ψ
    return int(gpu_bytes // per_param)
