"""Train a tiny Mamba and a tiny Transformer with the same number of weights on a synthetic task, then measure
accuracy at the trained length and at longer ones (16.6: "can it remember, and does that hold beyond training?").

Both models see the same batches (one seeded generator per run, the same seed for both), the same optimizer
(AdamW, gradient clipping at 1), the same number of steps; only the architecture differs. The loss and the accuracy
count the answer positions only (`engine.ssm.tasks`).

Every `log_every` steps a row {arch, step, loss, acc, seconds} goes to `on_row` (a page draws the curves live) and
`progress(fraction, message)` is called. A Stop (`should_stop()` or `Cancelled` from `progress`) raises `Cancelled`
carrying the finished rows in `.partial`; a NaN or exploding loss ends the run with status "diverged" and keeps its
rows (no evaluation then).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from engine.core.errors import UserError
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.ssm.tasks import TASKS, TaskSpec, answer_accuracy, answer_loss, check_spec, make_batch
from engine.ssm.transformer import count_params, matched_spec

ARCHS = ("mamba", "transformer")
# Each architecture's learning rate, the best of {1e-3, 3e-3, 1e-2} on selective copying (2000 steps of 8, measured):
# Mamba needs the large one to leave its plateau; the Transformer reached 0.73 / 0.68 / 0.30 with them.
ARCH_LR = {"mamba": 1e-2, "transformer": 1e-3}
# The shipped runs' budgets (measured): Mamba solves induction in ~250 steps of 16 sequences; selective copying
# reaches .94-.95 after 2000 steps of 8 and .97 after 2400 (at equal compute, 8 sequences × 2 steps beat 16 × 1).
TASK_DEFAULTS = {
    "selective_copy": {"steps": 2400, "batch_size": 8},
    "induction": {"steps": 600, "batch_size": 16},
}
MAX_STEPS = 5000
MAX_EVAL_LENGTHS = 8
EVAL_SEED_OFFSET = 10_000  # held-out sequences come from another seed than any training batch
RowFn = Callable[[dict], None]
StopFn = Callable[[], bool]


@dataclass(frozen=True)
class TrainConfig:
    """One experiment; the defaults are the chapter's shipped runs (each well under 90 s on 2 cores)."""

    task: str = "selective_copy"
    length: int = 64  # the training sequence length L (answers included)
    eval_lengths: tuple[int, ...] = ()  # () -> L, 2L, 4L, 8L
    steps: int = 2400
    batch_size: int = 8
    lr: float | None = None  # None: each architecture's own learning rate (ARCH_LR)
    weight_decay: float = 0.0
    embedding_std: float = 0.3
    seed: int = 0
    vocab_size: int = 16
    n_data: int = 4  # K data tokens (selective copying)
    d_model: int = 32
    n_layer: int = 2
    d_state: int = 8
    n_head: int = 4  # the Transformer's heads
    eval_sequences: int = 128
    log_every: int = 10
    threads: int = 1  # measured on the shared 2-core machine: 2 threads made a B=8 step 1.6-4× slower, not faster
    # at L = 64 and d_model 32 the loop is faster than the log-depth scan (measured, one thread: a B=8 step 28 vs
    # 45 ms): the parallel scan's L·log L work on (B, L, D, N) tensors costs more than 64 tiny Python steps
    mamba_scan: str = "sequential"
    max_seconds: float | None = None  # also stop training when this much wall time is used (None: steps only)

    @property
    def task_spec(self) -> TaskSpec:
        return TaskSpec(name=self.task, vocab_size=self.vocab_size, n_data=self.n_data)

    @property
    def lengths(self) -> tuple[int, ...]:
        return self.eval_lengths or tuple(self.length * m for m in (1, 2, 4, 8))


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def task_config(task: str, **changes) -> TrainConfig:
    """The chapter's configuration for `task` (its steps and batch), with `changes` (None values keep the default)."""
    if task not in TASKS:
        raise UserError("input.unknown_choice", name="task", value=task, choices=", ".join(TASKS))
    kept = {k: v for k, v in changes.items() if v is not None}
    return TrainConfig(**{"task": task, **TASK_DEFAULTS[task], **kept})


def check_config(cfg: TrainConfig) -> None:
    """Refuse settings that cannot train (a shared URL may carry anything) before any work starts."""
    if cfg.task not in TASKS:
        raise UserError("input.unknown_choice", name="task", value=cfg.task, choices=", ".join(TASKS))
    check_spec(cfg.task_spec, cfg.length)
    for name, value, low, high in (
        ("steps", cfg.steps, 1, MAX_STEPS),
        ("batch_size", cfg.batch_size, 1, 512),
        ("d_model", cfg.d_model, 4, 512),
        ("n_layer", cfg.n_layer, 1, 8),
        ("d_state", cfg.d_state, 1, 64),
        ("eval_sequences", cfg.eval_sequences, 1, 4096),
        ("log_every", cfg.log_every, 1, MAX_STEPS),
        ("seed", cfg.seed, 0, 2**31 - 1),
        ("threads", cfg.threads, 1, 64),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise UserError("input.out_of_range", name=name, low=low, high=high, value=value)
    if cfg.lr is not None and (not _finite(cfg.lr) or not 0 < cfg.lr <= 1.0):
        raise UserError("ssm.train.bad_lr", value=cfg.lr, high=1.0)
    if not _finite(cfg.embedding_std) or not 0 < cfg.embedding_std <= 10.0:
        raise UserError("ssm.train.bad_number", name="embedding_std", value=cfg.embedding_std, high=10.0)
    if not _finite(cfg.weight_decay) or not 0 <= cfg.weight_decay <= 10.0:
        raise UserError("ssm.train.bad_number", name="weight_decay", value=cfg.weight_decay, high=10.0)
    if cfg.max_seconds is not None and (not _finite(cfg.max_seconds) or not 0 < cfg.max_seconds <= 3600):
        raise UserError("ssm.train.bad_number", name="max_seconds", value=cfg.max_seconds, high=3600)
    if not cfg.lengths or len(cfg.lengths) > MAX_EVAL_LENGTHS:
        raise UserError("input.too_many", name="eval_lengths", limit=MAX_EVAL_LENGTHS, value=len(cfg.lengths))
    for length in cfg.lengths:
        check_spec(cfg.task_spec, length)


def build_model(arch: str, cfg: TrainConfig) -> nn.Module:
    """The tiny Mamba, or the Transformer whose MLP width matches the Mamba's parameter count."""
    from engine.ssm.mamba import MambaLM, MambaSpec

    spec = MambaSpec(vocab_size=cfg.vocab_size, d_model=cfg.d_model, n_layer=cfg.n_layer, d_state=cfg.d_state)
    if arch == "mamba":
        return MambaLM(spec, scan=cfg.mamba_scan)
    if arch == "transformer":
        from engine.ssm.transformer import TinyTransformer

        target = count_params(MambaLM(spec))
        return TinyTransformer(matched_spec(target, cfg.vocab_size, cfg.d_model, cfg.n_layer, cfg.n_head))
    raise UserError("input.unknown_choice", name="arch", value=arch, choices=", ".join(ARCHS))


@torch.no_grad()
def init_weights(model: nn.Module, embedding_std: float) -> None:
    """The same initialization for both models: PyTorch's default for every linear layer (uniform, scaled by
    1/sqrt(fan_in)) and N(0, embedding_std) embeddings; Mamba's Δ projection keeps its own init (it sets the range
    of step sizes).

    Both libraries start from N(0, 0.02), a recipe for large pretrained models; on these tiny models it leaves
    B, C and the attention scores so small that the first few hundred steps barely move (measured: the Mamba loss
    sat at ln 14 for ~400 steps with it, ~175 steps with this init).
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and not name.endswith("dt_proj"):
            module.reset_parameters()
    for module in model.modules():
        if isinstance(module, nn.Embedding):  # last: the tied output head shares this matrix
            nn.init.normal_(module.weight, std=embedding_std)


@dataclass
class TrainResult:
    """One architecture's run: its curve, and accuracy per evaluation length (None when it did not finish)."""

    arch: str
    task: str
    params: int
    length: int
    steps: int  # steps actually taken
    lr: float  # the peak learning rate used
    seconds: float  # training wall time (evaluation not included)
    eval_seconds: float
    status: str  # finished | diverged
    message: str
    time_limited: bool  # training stopped at max_seconds before `steps`
    accuracy: float | None  # token accuracy on held-out sequences at the trained length
    accuracy_by_length: dict[int, float] = field(default_factory=dict)
    sequence_accuracy_by_length: dict[int, float] = field(default_factory=dict)  # every answer token right
    curve: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    @property
    def accuracy_longer(self) -> float | None:
        """Mean token accuracy over the evaluation lengths longer than the trained one."""
        longer = [a for n, a in self.accuracy_by_length.items() if n > self.length]
        return sum(longer) / len(longer) if longer else None

    def to_json(self) -> dict:
        out = asdict(self)
        out["accuracy_by_length"] = {str(k): v for k, v in self.accuracy_by_length.items()}
        out["sequence_accuracy_by_length"] = {str(k): v for k, v in self.sequence_accuracy_by_length.items()}
        out["accuracy_longer"] = self.accuracy_longer
        return out


@torch.no_grad()
def evaluate(model: nn.Module, cfg: TrainConfig, length: int, chunk: int = 32) -> tuple[float, float]:
    """(token accuracy, sequence accuracy) on `cfg.eval_sequences` held-out sequences of `length` tokens."""
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed + EVAL_SEED_OFFSET + length)
    right_tokens = all_tokens = right_rows = 0
    left = cfg.eval_sequences
    while left > 0:
        n = min(chunk, left)  # chunks keep the (B, L, D, N) scan tensors small at long lengths
        batch = make_batch(cfg.task_spec, n, length, generator=gen)
        acc = answer_accuracy(model(batch.inputs), batch)
        k = batch.spec.n_answers
        right_tokens += round(acc.token * n * k)
        all_tokens += n * k
        right_rows += round(acc.sequence * n)
        left -= n
    model.train()
    return right_tokens / all_tokens, right_rows / cfg.eval_sequences


def train_one(
    arch: str,
    cfg: TrainConfig = TrainConfig(),
    progress: ProgressFn = null_progress,
    on_row: RowFn | None = None,
    should_stop: StopFn | None = None,
) -> TrainResult:
    """Train `arch` on `cfg.task` for `cfg.steps` steps, then evaluate at every length in `cfg.lengths`."""
    from engine.training import training_threads
    from engine.training.callbacks import DIVERGED, Monitor

    check_config(cfg)
    with training_threads(cfg.threads):
        torch.manual_seed(cfg.seed)  # the same initial weights for the same arch and seed
        model = build_model(arch, cfg)
        init_weights(model, cfg.embedding_std)
        model.train()
        lr = cfg.lr if cfg.lr is not None else ARCH_LR.get(arch, 1e-3)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
        # cosine decay to 0: large steps to leave the plateau, small ones to settle on exact answers
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, cfg.steps) / cfg.steps))
        )
        data = torch.Generator().manual_seed(cfg.seed)  # both archs see the very same batches
        monitor = Monitor(cfg.steps, progress, should_stop, on_row, label=arch)
        start = time.perf_counter()
        steps, time_limited = 0, False
        for step in range(1, cfg.steps + 1):
            batch = make_batch(cfg.task_spec, cfg.batch_size, cfg.length, generator=data)
            logits = model(batch.inputs)  # (B, L, V)
            loss = answer_loss(logits, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            steps = step
            value = float(loss.detach())
            out_of_time = cfg.max_seconds is not None and time.perf_counter() - start > cfg.max_seconds
            if step % cfg.log_every == 0 or step == cfg.steps or out_of_time or not math.isfinite(value):
                row = {
                    "arch": arch,
                    "step": step,
                    "loss": value,
                    "acc": answer_accuracy(logits.detach(), batch).token,
                    "seconds": time.perf_counter() - start,
                }
                if not monitor.record(row):
                    break
            if out_of_time:
                time_limited = True
                break
        seconds = time.perf_counter() - start
        log = monitor.finish()
        if log.status not in ("finished", DIVERGED):  # a Stop: the finished rows travel with the exception
            exc = Cancelled(log.message)
            exc.partial = list(log.rows)
            raise exc
        result = TrainResult(
            arch=arch,
            task=cfg.task,
            params=count_params(model),
            length=cfg.length,
            steps=steps,
            lr=lr,
            seconds=seconds,
            eval_seconds=0.0,
            status=log.status,
            message=log.message,
            time_limited=time_limited,
            accuracy=None,
            curve=list(log.rows),
            config=asdict(cfg),
        )
        if log.status == DIVERGED:
            return result
        t0 = time.perf_counter()
        for length in cfg.lengths:
            token, sequence = evaluate(model, cfg, length)
            result.accuracy_by_length[length] = token
            result.sequence_accuracy_by_length[length] = sequence
        result.accuracy = result.accuracy_by_length.get(cfg.length)
        result.eval_seconds = time.perf_counter() - t0
    return result


def compare(
    cfg: TrainConfig = TrainConfig(),
    archs: tuple[str, ...] = ARCHS,
    progress: ProgressFn = null_progress,
    on_row: RowFn | None = None,
    should_stop: StopFn | None = None,
) -> list[TrainResult]:
    """Each architecture in turn on the same task, batches and step budget; a Stop keeps every finished row."""
    check_config(cfg)
    results: list[TrainResult] = []
    done_rows: list[dict] = []
    for i, arch in enumerate(archs):

        def share(fraction: float, message: str, i: int = i) -> None:
            progress((i + fraction) / len(archs), message)

        try:
            result = train_one(arch, cfg, share, on_row, should_stop)
        except Cancelled as exc:
            exc.partial = done_rows + list(getattr(exc, "partial", []) or [])
            raise
        results.append(result)
        done_rows.extend(result.curve)
    return results
