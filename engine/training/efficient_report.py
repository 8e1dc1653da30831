"""Chapter 5 for the page: memory estimated vs measured, accumulation, checkpointing, ZeRO, LoRA, QLoRA and the
book's table as records in MiB/GB, plus `train_modes` (a few steps of full, LoRA and QLoRA training on one batch).

Pure functions of what `memory`, `grad_accumulation`, `checkpointing`, `lora` and `finetune` return, so a page
only draws them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from engine.core.progress import ProgressFn, null_progress

MIB = 1024**2
HEADROOM = 1.3  # an estimate "fits" when 1.3 × it is below the free memory


def mib(n: float | None) -> float | None:
    """Bytes -> MiB, rounded to 2 decimals (None stays None)."""
    return None if n is None else round(n / MIB, 2)


@lru_cache(maxsize=8)
def _shape(source: str):
    from engine.training.finetune import model_config
    from engine.training.memory.estimate import ModelShape

    return ModelShape.from_config(model_config(source), name=source)


@dataclass(frozen=True)
class EstimateLine:
    mode: str
    components: dict[str, float]  # component (engine.training.memory.estimate.COMPONENTS) -> MiB
    total: float  # MiB
    fits: bool  # with 30% headroom, in the memory free now


@dataclass(frozen=True)
class EstimateView:
    lines: list[EstimateLine]
    free: float  # MiB free now


def memory_estimate(source: str, batch: int, seq_len: int, lora=None, quant=None, checkpointing: bool = False):
    """The instant calculator: every training mode's memory by component, and whether it fits here."""
    from engine.training.memory.estimate import COMPONENTS, MODES
    from engine.training.memory.profile import available_memory_bytes, estimate_rows

    free = available_memory_bytes()
    lines = []
    for r in estimate_rows(source, list(MODES), [batch], seq_len, lora, quant, checkpointing):
        total = sum(r.estimated.values())
        lines.append(
            EstimateLine(r.mode, {c: mib(r.estimated[c]) for c in COMPONENTS}, mib(total), total * HEADROOM < free)
        )
    return EstimateView(lines, mib(free))


@dataclass(frozen=True)
class MeasuredLine:
    mode: str
    batch: int
    component: str
    estimated: float | None  # MiB
    measured: float | None  # MiB
    ratio: float | None  # estimated / measured, 4 decimals


@dataclass(frozen=True)
class MeasuredView:
    refused: list[tuple[str, str]]  # (mode, why) for settings refused before allocating
    errors: list[tuple[str, str]]  # (mode, error) for settings that failed while measuring
    lines: list[MeasuredLine]
    model: str | None  # what was measured, and where (None before any measurement)
    device: str | None


def measured_view(rows) -> MeasuredView:
    """MemoryRows (from `memory_profile`, finished or partial) as one line per (mode, component)."""
    from engine.training.memory.estimate import COMPONENTS

    refused, errors, lines = [], [], []
    for r in rows:
        if r.refused:
            refused.append((r.mode, r.refused))
        elif r.error:
            errors.append((r.mode, r.error))
        else:
            for c in COMPONENTS:
                ratio = r.ratio(c)
                est, meas = mib(r.estimated[c]), mib(r.measured[c]) if r.measured else None
                lines.append(MeasuredLine(r.mode, r.batch, c, est, meas, None if ratio is None else round(ratio, 4)))
    done = [r for r in rows if r.measured]
    return MeasuredView(refused, errors, lines, done[0].model if done else None, done[0].device if done else None)


@dataclass(frozen=True)
class AccumulationView:
    activations_full: float  # MiB saved for backward by the big batch
    activations_micro: float  # ... by one micro-batch
    change: float  # micro / full - 1 (negative: saved)


def accumulation_view(acc) -> AccumulationView:
    change = acc.activations_micro / acc.activations_full - 1
    return AccumulationView(mib(acc.activations_full), mib(acc.activations_micro), change)


@dataclass(frozen=True)
class CheckpointingLine:
    checkpointing: str  # "on" / "off"
    measured: float  # MiB of activations
    estimated: float
    recompute: float  # MiB one layer rebuilds during backward
    forward_s: float
    backward_s: float


def checkpointing_lines(ck) -> list[CheckpointingLine]:
    return [
        CheckpointingLine(
            "on" if r.checkpointing else "off",
            mib(r.activations),
            mib(r.estimated),
            mib(r.recompute_layer),
            round(r.forward_seconds, 3),
            round(r.backward_seconds, 3),
        )
        for r in ck.runs
    ]


@dataclass(frozen=True)
class ZeroLine:
    stage: str
    weights: float  # GB per GPU, 3 decimals
    gradients: float
    optimizer: float
    total: float  # GB per GPU, 2 decimals
    fits: bool  # within one GPU's memory
    max_params: float  # billions of parameters that fit at this stage on these GPUs, 1 decimal


def zero_view(params_billion: float, gpus: int, gpu_gb: float) -> list[ZeroLine]:
    """Per-GPU memory of mixed-precision Adam at each ZeRO stage, and the largest model each stage fits."""
    from engine.training.memory.zero import STAGE_NAMES, max_params_that_fit, zero_table

    gpu_bytes = gpu_gb * 1e9
    return [
        ZeroLine(
            STAGE_NAMES[z.stage],
            round(z.weights / 1e9, 3),
            round(z.gradients / 1e9, 3),
            round(z.optimizer / 1e9, 3),
            round(z.total / 1e9, 2),
            z.total <= gpu_bytes,
            round(max_params_that_fit(gpu_bytes, int(gpus), z.stage) / 1e9, 1),
        )
        for z in zero_table(int(params_billion * 1e9), int(gpus))
    ]


@dataclass(frozen=True)
class LoraView:
    trainable: int
    total: int
    share: float  # trainable / total
    scaling: float  # alpha / r


def lora_view(source: str, lora) -> LoraView:
    from engine.training.memory.estimate import count_parameters, lora_parameter_count

    shape = _shape(source)
    total = count_parameters(shape)["total"]
    trainable = lora_parameter_count(shape, lora)["trainable"]
    return LoraView(trainable, total, trainable / total, lora.scaling)


@dataclass(frozen=True)
class MergeView:
    max_abs_diff: float
    delta_norm: float
    counted: int  # trainable parameters counted on the loaded model


def lora_merge_demo(source: str, lora, seed: int = 0) -> MergeView:
    """Load with LoRA, nudge the adapters, merge, and compare the logits (they must agree)."""
    from engine.training.finetune import dummy_batch, load_training_model
    from engine.training.lora import merge_check, parameter_counts, randomize_adapters

    model = load_training_model(source, "lora", lora)
    counted = parameter_counts(model)["trainable"]
    randomize_adapters(model, seed=seed)
    check = merge_check(model, dummy_batch(_shape(source).vocab, 1, 16)["input_ids"])
    return MergeView(check.max_abs_diff, check.delta_norm, counted)


@dataclass(frozen=True)
class WeightsView:
    fp32: float  # MiB of full-precision weights
    quantized: float  # MiB with 4-bit base weights (QLoRA)
    ratio: float


def qlora_weights(source: str, lora, quant) -> WeightsView:
    from engine.training.memory.estimate import weight_bytes

    shape = _shape(source)
    fp32, four = weight_bytes(shape, "full"), weight_bytes(shape, "qlora", lora, quant)
    return WeightsView(mib(fp32), mib(four), four / fp32)


@dataclass(frozen=True)
class LoadedView:
    measured: float  # MiB of the loaded model's weights
    ratio: float  # of the full-precision estimate
    kinds: list[str]  # parameter classes (Params4bit for the quantized ones)
    quant_type: str


def loaded_weights(model, source: str, quant) -> LoadedView:
    from engine.training.memory.accounting import weight_bytes
    from engine.training.memory.estimate import weight_bytes as estimated_bytes

    measured = weight_bytes(model)
    kinds = sorted({type(p).__name__ for p in model.parameters()})
    return LoadedView(mib(measured), measured / estimated_bytes(_shape(source), "full"), kinds, quant.quant_type)


def train_modes(
    source: str,
    steps: int,
    lr: float,
    lora=None,
    quant=None,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
    modes: tuple[str, ...] | None = None,
    on_row: Callable[[dict], None] | None = None,
    on_model: Callable[[str, object], None] | None = None,
) -> dict:
    """`train_steps` on the same batch in each mode (full, LoRA, QLoRA), one model loaded at a time.

    `on_row` gets {"mode", "step", "loss", "seconds"} after each step; `on_model(mode, model)` the trained model
    before it is dropped (to save a LoRA adapter, say)."""
    from engine.training.finetune import load_training_model, train_steps
    from engine.training.memory.estimate import MODES

    modes = modes or tuple(MODES)
    data = modes_batch(source)
    logs = {}
    for i, mode in enumerate(modes):
        model = load_training_model(source, mode, lora, quant)
        report = lambda f, m, i=i: progress((i + f) / len(modes), m)  # noqa: E731

        def step_row(log, mode=mode) -> None:
            if on_row is not None:
                on_row({"mode": mode, "step": log.finished_steps, "loss": log.losses[-1], "seconds": log.seconds[-1]})

        logs[mode] = train_steps(
            model, data, steps, lr, mode, progress=report, should_stop=should_stop or (lambda: False), on_step=step_row
        )
        if on_model is not None:
            on_model(mode, model)
        del model
    return logs


def modes_batch(source: str) -> dict:
    """The batch `train_modes` trains on: the book's dummy data, 2 sequences of 32 random tokens (seed 0)."""
    from engine.training.finetune import dummy_batch

    return dummy_batch(_shape(source).vocab, 2, 32)


def mode_statuses(logs: dict) -> dict[str, str]:
    """{mode: finished / cancelled / diverged} of `train_modes`' logs."""
    return {
        mode: "diverged" if log.diverged_at is not None else "cancelled" if log.cancelled else "finished"
        for mode, log in logs.items()
    }


@dataclass(frozen=True)
class TrainLine:
    mode: str
    steps: int
    losses: str  # "first → last", or "—"
    seconds_per_step: float


@dataclass
class TrainView:
    curve: list[tuple[str, int, float]] = field(default_factory=list)  # (mode, step, loss)
    diverged: list[tuple[str, int, float, int]] = field(default_factory=list)  # (mode, step, lr, steps kept)
    lines: list[TrainLine] = field(default_factory=list)


def train_view(logs: dict) -> TrainView:
    view = TrainView()
    for mode, log in logs.items():
        view.curve += [(mode, s + 1, loss) for s, loss in enumerate(log.losses)]
        if log.diverged_at is not None:
            view.diverged.append((mode, log.diverged_at, log.lr, log.finished_steps))
        losses = f"{log.losses[0]:.3f} → {log.losses[-1]:.3f}" if log.losses else "—"
        view.lines.append(
            TrainLine(mode, log.finished_steps, losses, round(sum(log.seconds) / max(1, len(log.seconds)), 3))
        )
    return view


@dataclass(frozen=True)
class BookLine:
    mode: str
    batch: int | None
    example: str
    book: str  # GiB the book reports, or "OOM"
    state: float  # GiB the formula gives for weights + gradients + optimizer
    peak: float | None  # GiB the formula gives at the peak (None: the activation formula models full training only)
    note: str | dict  # {ko, en} from the asset, or ""


def book_lines() -> list[BookLine]:
    """The book's T4 measurements next to this chapter's formulas."""
    from engine.training.memory.book import book_comparison

    return [
        BookLine(
            r["mode"],
            r["batch"],
            r["example"],
            "OOM" if r["book_oom"] else f"{r['book_gib']:.3f}",
            round(r["estimated_state_gib"], 3),
            None if r["estimated_peak_gib"] is None else round(r["estimated_peak_gib"], 2),
            r["note"],
        )
        for r in book_comparison()
    ]


# --- shipped results: each run-only demo computed once with the page's defaults (assets/precomputed/ch05_*.json) --
# A learner opening the page sees what a run gives before pressing anything; `python -m engine memory-demo NAME
# --save-precomputed` makes the file again (the command is recorded in it).
DEMOS = {  # demo -> the settings it runs with (the page's defaults)
    "measure": "chat, full/LoRA/QLoRA, batch 4 × 32 tokens",
    "accumulation": "tiny, batch 8 = 4 × 2, float64",
    "checkpointing": "chat, full, batch 1 × 64 tokens",
    "merge": "chat, LoRA r=8 α=16 on q_proj, v_proj",
    "qlora_load": "chat, NF4",
    "train": "tiny, 8 steps, lr 1e-3",
}


def precomputed_name(demo: str) -> str:
    return f"ch05_{demo}"


def demo_command(demo: str) -> str:
    return f"python -m engine memory-demo {demo} --save-precomputed"


def run_demo(demo: str, progress: ProgressFn = null_progress):
    """One demo with the page's default settings: what the page's button computes on first open."""
    from engine.training.checkpointing import compare_checkpointing
    from engine.training.finetune import load_training_model
    from engine.training.grad_accumulation import run_accumulation_demo
    from engine.training.lora import LoraSpec, QuantSpec
    from engine.training.memory.estimate import MODES
    from engine.training.memory.profile import memory_profile

    lora, quant = LoraSpec(r=8, alpha=16, targets=("q_proj", "v_proj")), QuantSpec(quant_type="nf4")
    if demo == "measure":
        return memory_profile("chat", list(MODES), [4], 32, lora, quant, progress=progress).rows
    if demo == "accumulation":
        return run_accumulation_demo("tiny", 8, 2, seq_len=32, dtype="float64", progress=progress)
    if demo == "checkpointing":
        return compare_checkpointing("chat", "full", 1, 64, progress=progress)
    if demo == "merge":
        return lora_merge_demo("chat", lora)
    if demo == "qlora_load":
        return loaded_weights(load_training_model("chat", "qlora", lora, quant), "chat", quant)
    if demo == "train":
        return train_modes("tiny", 8, 1e-3, lora, quant, progress=progress)
    raise ValueError(f"unknown demo {demo!r}; one of {tuple(DEMOS)}")


def demo_record(demo: str, result):
    """A demo's result as plain JSON (what `demo_result` turns back into the same objects)."""
    from dataclasses import asdict

    if demo == "measure":
        return [r.as_dict() for r in result]
    if demo == "train":
        return {mode: log.as_dict() for mode, log in result.items()}
    return asdict(result)


def demo_result(demo: str, data):
    """The objects a live run returns, rebuilt from `demo_record`'s JSON, so the page draws both the same way."""
    from engine.training.checkpointing import CheckpointingComparison, CheckpointingRun
    from engine.training.finetune import TrainLog
    from engine.training.grad_accumulation import AccumulationResult
    from engine.training.memory.profile import MemoryRow

    if demo == "measure":
        return [MemoryRow(**r) for r in data]
    if demo == "accumulation":
        return AccumulationResult(**data)
    if demo == "checkpointing":
        return CheckpointingComparison(**{**data, "runs": [CheckpointingRun(**r) for r in data["runs"]]})
    if demo == "merge":
        return MergeView(**data)
    if demo == "qlora_load":
        return LoadedView(**data)
    if demo == "train":
        return {mode: TrainLog(**log) for mode, log in data.items()}
    raise ValueError(f"unknown demo {demo!r}; one of {tuple(DEMOS)}")


@dataclass(frozen=True)
class ShippedDemo:
    pre: object  # engine.core.Precomputed: the command, date and machine that made it
    result: object  # what a live run of the demo returns


def shipped_demo(demo: str) -> ShippedDemo | None:
    """The shipped result of one demo, or None when the file is missing (the section then only offers the run)."""
    from engine.core.precomputed import load_precomputed

    pre = load_precomputed(precomputed_name(demo))
    return None if pre is None else ShippedDemo(pre, demo_result(demo, pre.data))


def save_demo(demo: str, progress: ProgressFn = null_progress):
    """Run one demo and write it to assets/precomputed/ch05_<demo>.json with the command that made it."""
    from engine.core.precomputed import save_precomputed

    record = demo_record(demo, run_demo(demo, progress))
    return save_precomputed(precomputed_name(demo), record, demo_command(demo))
