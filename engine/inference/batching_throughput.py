"""Chapter 7: why batch size matters — arithmetic intensity, the roofline, and tokens/s measured per batch size.

Generating one token multiplies every weight once per sequence in the batch: 2·P FLOPs per sequence, but the
P weights are read from memory once per *step*, whatever the batch. At batch 1 the chip mostly waits for memory;
each extra sequence adds FLOPs almost for free until compute becomes the limit (the roofline's ridge point).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache

import torch
import yaml

from engine.core.assets import asset
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError, parse_numbers
from engine.models.loading import LoadedLM

ASSET = asset("gpu_specs.yaml")
MAX_BATCH = 32
PROMPTS = (
    "Write a sentence about the sea.",
    "What is the capital of France?",
    "Give me a tip for learning Korean.",
    "Why is the sky blue?",
    "Name three fruits.",
    "Describe a cat in one line.",
    "What does a compiler do?",
    "Suggest a name for a robot.",
)


@lru_cache(maxsize=1)
def gpu_specs() -> list[dict]:
    return yaml.safe_load(ASSET.read_text(encoding="utf-8"))["gpus"]


# --- the roofline model ---------------------------------------------------------------------------------------


def decode_intensity(batch: int, bytes_per_weight: float = 2.0) -> float:
    """FLOPs per byte of one decoding step's weight matmuls: 2·B·P FLOPs over P·bytes read ≈ 2B / bytes."""
    return 2.0 * batch / bytes_per_weight


def roofline(
    params: float, batch_sizes: Iterable[int], peak_tflops: float, bandwidth_tbs: float, bytes_per_weight: float = 2.0
) -> list[dict]:
    """Best-case decoding speed of a `params`-parameter model per batch size (weights only; the KV cache and
    overheads make reality slower): step time = max(compute time, weight-read time)."""
    rows = []
    for b in batch_sizes:
        if not 1 <= b <= 100_000:
            raise InputError("input.out_of_range", name="batch size", low=1, high=100_000, value=b)
        compute_s = 2.0 * b * params / (peak_tflops * 1e12)
        memory_s = params * bytes_per_weight / (bandwidth_tbs * 1e12)
        step_s = max(compute_s, memory_s)
        intensity = decode_intensity(b, bytes_per_weight)
        rows.append(
            {
                "batch": b,
                "intensity_flops_per_byte": intensity,
                "bound": "compute" if compute_s > memory_s else "memory",
                "attainable_tflops": min(peak_tflops, intensity * bandwidth_tbs),
                "step_ms": step_s * 1e3,
                "tokens_per_s": b / step_s,
            }
        )
    return rows


def ridge_point(peak_tflops: float, bandwidth_tbs: float) -> float:
    """The intensity (FLOPs/byte) at which memory time equals compute time."""
    return peak_tflops / bandwidth_tbs


@dataclass
class MachineRoofline:
    """This machine's own roofline, measured: a large matmul (compute) and a large copy (memory)."""

    device: str
    threads: int
    matmul_gflops: float
    copy_gbs: float  # bytes read + written per second

    @property
    def ridge(self) -> float:
        return self.matmul_gflops / self.copy_gbs


@torch.no_grad()
def measure_machine(device: str = "cpu", size: int = 1024, copy_mb: int = 64, repeats: int = 3) -> MachineRoofline:
    """Best of `repeats` runs of an fp32 size³ matmul and a copy_mb copy on `device` (takes about a second)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    x = torch.empty(copy_mb * 2**20 // 4, device=device)
    y = torch.empty_like(x)

    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        return min(times)

    a @ b  # warm-up
    mm = best(lambda: a @ b)
    cp = best(lambda: y.copy_(x))
    return MachineRoofline(device, torch.get_num_threads(), 2 * size**3 / mm / 1e9, 2 * x.numel() * 4 / cp / 1e9)


# --- measured: batched greedy generation with left padding ----------------------------------------------------


def left_pad(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-align prompts of different lengths so every sequence's next token lands in the last column."""
    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        mask[row, width - len(ids) :] = 1
    return input_ids, mask


def batch_prompts(lm: LoadedLM, batch: int) -> list[list[int]]:
    tok = lm.tokenizer
    out = []
    for i in range(batch):
        ids = tok.apply_chat_template(
            [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], add_generation_prompt=True, tokenize=True
        )
        out.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    return out


@torch.no_grad()
def batched_greedy(
    lm: LoadedLM, prompts: list[list[int]], new_tokens: int, should_stop: Callable[[], bool] | None = None
) -> list[list[int]]:
    """Greedy decoding of several prompts at once (left padding + attention mask), exactly `new_tokens` each."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            stop = should_stop is not None and should_stop()
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else lm.tokenizer.eos_token_id
    input_ids, mask = left_pad(prompts, pad)
    out = lm.model.generate(
        input_ids.to(lm.device),
        attention_mask=mask.to(lm.device),
        do_sample=False,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        pad_token_id=pad,
        stopping_criteria=StoppingCriteriaList([_Stop()]),
    )
    if should_stop is not None and should_stop():
        raise Cancelled("batched generation")
    return out[:, input_ids.shape[1] :].tolist()


@dataclass
class BatchRun:
    batch: int
    new_tokens: int
    seconds: float
    tokens_per_s: float  # all sequences together
    per_sequence_tokens_per_s: float  # what one user sees
    device: str

    def as_dict(self) -> dict:
        return asdict(self)


def parse_batch_sizes(text: str | Iterable[int]) -> list[int]:
    return parse_numbers(text, int, name="batch sizes", min_value=1, max_value=MAX_BATCH)


def batch_sweep(
    lm: LoadedLM,
    batch_sizes: Iterable[int] = (1, 2, 4, 8),
    new_tokens: int = 32,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
    on_result: Callable[[BatchRun], None] | None = None,
) -> list[BatchRun]:
    """Tokens/s of batched greedy generation per batch size; a cancelled sweep returns the finished sizes."""
    sizes = parse_batch_sizes(batch_sizes)
    if not 1 <= new_tokens <= 256:
        raise InputError("input.out_of_range", name="new tokens", low=1, high=256, value=new_tokens)
    rows: list[BatchRun] = []
    batched_greedy(lm, batch_prompts(lm, 1), 2)  # warm-up
    for i, b in enumerate(sizes):
        if should_stop is not None and should_stop():
            break
        progress(i / len(sizes), f"batch {b}: generating {new_tokens} tokens per sequence")
        prompts = batch_prompts(lm, b)
        start = time.perf_counter()
        try:
            batched_greedy(lm, prompts, new_tokens, should_stop)
        except Cancelled:
            break
        seconds = time.perf_counter() - start
        rows.append(
            BatchRun(
                b,
                new_tokens,
                round(seconds, 4),
                round(b * new_tokens / seconds, 3),
                round(new_tokens / seconds, 3),
                str(lm.device),
            )
        )
        if on_result is not None:
            on_result(rows[-1])
    progress(1.0, "done")
    return rows
