"""What the chapter 7 and 8 pages show, computed in one call each: the roofline for a chosen GPU, every batching
policy on one workload, KV usage next to the paper's, SDPA timings with the machine they ran on, the two offline
batch sizes, and the position-scaling perplexity run. Each returns a dataclass (or the engine's own rows)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from engine.core.progress import ProgressFn, null_progress
from engine.inference.batching import (
    POLICIES,
    CostModel,
    Request,
    SimResult,
    batched_generate,
    make_workload,
    simulate,
)
from engine.inference.batching_throughput import gpu_specs, ridge_point, roofline
from engine.inference.flash_attention import measure_sdpa_memory, time_sdpa_backends
from engine.inference.kv_cache import DTYPE_BYTES
from engine.inference.paged_attention import PAPER_FIG2, allocation_usage, synthetic_lengths
from engine.inference.speculative import COPY_PROMPT
from engine.lm.relative_positions import position_scaling_perplexity

MODEL_SIZES = {"1B": 1e9, "7B": 7e9, "70B": 70e9}
ROOFLINE_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass
class RooflineView:
    gpu: dict  # name, peak_tflops, bandwidth_tbs, source
    size: str  # "1B" / "7B" / "70B"
    rows: list[dict]  # roofline() rows, one per batch size
    ridge: float  # FLOPs/byte where memory time equals compute time


def roofline_view(gpu_name: str, size: str, dtype: str) -> RooflineView:
    """Best-case decode tokens/s of a `size` model on the named GPU (assets' spec sheet) per batch size."""
    gpus = {g["name"]: g for g in gpu_specs()}
    if gpu_name not in gpus:
        raise ValueError(f"unknown GPU {gpu_name!r}")
    if size not in MODEL_SIZES or dtype not in DTYPE_BYTES:
        raise ValueError(f"size must be one of {tuple(MODEL_SIZES)} and dtype one of {tuple(DTYPE_BYTES)}")
    gpu = gpus[gpu_name]
    rows = roofline(MODEL_SIZES[size], ROOFLINE_BATCHES, gpu["peak_tflops"], gpu["bandwidth_tbs"], DTYPE_BYTES[dtype])
    return RooflineView(gpu, size, rows, ridge_point(gpu["peak_tflops"], gpu["bandwidth_tbs"]))


def method_table(errors: dict[str, float], weight_errors: dict[str, float]) -> list[dict]:
    """RTN/GPTQ/AWQ side by side: held-out output error, the same relative to RTN, and the weight error."""
    rtn = errors["RTN"]
    return [
        {"method": m, "heldout_error": v, "vs_rtn": v / rtn, "weight_error": weight_errors[m]}
        for m, v in errors.items()
    ]


@dataclass
class PolicyComparison:
    """One workload replayed through every batching policy (a SIMULATION on the given costs)."""

    work: list[Request]
    results: dict[str, SimResult]
    metrics: list[dict]  # SimResult.metrics() per policy, in POLICIES order
    horizon_s: float  # when the slowest policy returned its last answer


def compare_policies(
    n: int, rate_per_s: float, max_batch: int, max_wait_s: float, cost: CostModel, seed: int = 0
) -> PolicyComparison:
    work = make_workload(n, rate_per_s, seed=seed)
    results = {p: simulate(work, p, cost, max_batch, max_wait_s) for p in POLICIES}
    metrics = [results[p].metrics() for p in POLICIES]
    horizon = max(m["makespan_s"] for m in metrics) + work[0].arrival_s
    return PolicyComparison(work, results, metrics, horizon)


def usage_with_paper(trace: str, block_size: int, n: int = 300, max_len: int = 2048) -> list[dict]:
    """allocation_usage on a synthetic trace, followed by the paper's Fig. 2 rows (policy names marked 📄)."""
    usage = allocation_usage(synthetic_lengths(n, trace, max_len, seed=0), max_len, block_size)
    paper = [
        {
            "policy": f"📄 {k}",
            "token_states_pct": v["token_states"],
            "reservation_pct": v["reservation"],
            "internal_frag_pct": v["internal_frag"],
            "external_frag_pct": v["external_frag"],
        }
        for k, v in PAPER_FIG2.items()
    ]
    return usage + paper


@dataclass
class SdpaTiming:
    rows: list[dict]  # time_sdpa_backends rows (ms is None where a backend could not run)
    memory: list[dict]  # measure_sdpa_memory rows
    threads: int = field(default_factory=torch.get_num_threads)
    torch_version: str = torch.__version__

    @property
    def timed(self) -> list[dict]:
        return [r for r in self.rows if r.get("ms") is not None]


def sdpa_timing(
    lengths: list[int],
    causal: bool,
    memory_length: int = 1024,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] = lambda: False,
) -> SdpaTiming:
    """Every SDPA backend timed at each length, and the memory of one call at `memory_length`, on this machine."""
    rows = time_sdpa_backends(lengths, causal=causal, progress=progress, should_stop=should_stop)
    return SdpaTiming(rows, measure_sdpa_memory(memory_length, causal=causal))


def offline_batches(
    lm,
    prompts: list[str],
    max_new_tokens: int,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] = lambda: False,
    on_row: Callable[[dict], None] | None = None,
) -> list[dict]:
    """The same prompts served one at a time, then all in one batch (batched_generate rows, in that order)."""
    rows = []
    for i, size in enumerate((1, len(prompts))):

        def report(fraction: float, message: str, i: int = i, size: int = size) -> None:
            progress((i + fraction) / 2, f"batch {size}: {message}")

        row = batched_generate(lm, prompts, max_new_tokens, size, progress=report, should_stop=should_stop)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def position_text() -> str:
    """The text position_scaling_perplexity reads on page 8: the load-test prompts around the copy prompt."""
    from engine.serving.load_test import PROMPTS

    return "\n\n".join([*PROMPTS, COPY_PROMPT, *PROMPTS])


def position_scaling_demo(
    lm, progress: ProgressFn = null_progress, should_stop: Callable[[], bool] = lambda: False
) -> list[dict]:
    """position_scaling_perplexity on position_text() with the page's scales (0.5× to 64×), 192 tokens."""
    return position_scaling_perplexity(
        lm,
        position_text(),
        scales=(0.5, 2.0, 4.0, 16.0, 64.0),
        max_tokens=192,
        progress=progress,
        should_stop=should_stop,
    )
