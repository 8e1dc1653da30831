"""16.1 measured: what a Transformer pays for attention and what Mamba pays instead, on the same tiny models.

Two measurements per context length N:

1. Generation ("one more token"): process a context of N tokens, then time producing the next token's logits.
   - Transformer: one step with the KV cache (`DynamicCache`); the new token attends over N cached keys and values.
   - Mamba: one `step()` of the recurrence from the state left by the context.
   `state_bytes` is read from the tensors actually held after the context (the cache's keys and values, or the
   Mamba state's conv and SSM tensors) — not computed from a formula. The KV cache grows linearly with N; the Mamba
   state does not depend on N at all.
2. Training ("the whole sequence at once"): one forward + backward over a (batch, N) sequence.
   - Transformer: attention over all positions in parallel (SDPA).
   - Mamba, parallel scan: the associative scan in log2(N) rounds (how Mamba trains).
   - Mamba, sequential scan: the same numbers from a Python loop over N steps (what a plain RNN must do).

Times are medians over `repeats` runs after one warm-up, with torch's thread count fixed; the machine and its load
average are recorded with the rows, since a shared machine changes every number.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from engine.core.errors import UserError
from engine.core.progress import Cancelled, ProgressFn, null_progress

MAX_BENCH_LENGTH = 8192  # MambaLM's and the Transformer's own limit
MAX_BENCH_LENGTHS = 8
RowFn = Callable[[dict], None]
StopFn = Callable[[], bool]


@dataclass(frozen=True)
class BenchConfig:
    lengths: tuple[int, ...] = (256, 1024, 4096)
    train_lengths: tuple[int, ...] = ()  # () -> the same as `lengths`
    repeats: int = 7  # generation steps timed per length (median)
    train_repeats: int = 3  # forward+backward passes timed per length and model (median)
    train_batch: int = 1
    vocab_size: int = 16
    d_model: int = 32
    n_layer: int = 2
    d_state: int = 8
    n_head: int = 4
    threads: int = 1  # one thread: on a shared 2-core machine a second one adds noise, not speed
    seed: int = 0

    @property
    def step_lengths(self) -> tuple[int, ...]:
        return self.train_lengths or self.lengths


def check_lengths(lengths, name: str = "lengths") -> None:
    """Every context length 1..MAX_BENCH_LENGTH (0, negative or a million from a shared URL: a typed error)."""
    lengths = tuple(lengths)
    if not lengths:
        raise UserError("input.empty_list", name=name, example="256, 1024, 4096", value="")
    if len(lengths) > MAX_BENCH_LENGTHS:
        raise UserError("input.too_many", name=name, limit=MAX_BENCH_LENGTHS, value=len(lengths))
    for n in lengths:
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_BENCH_LENGTH:
            raise UserError("ssm.bench.bad_length", value=n, limit=MAX_BENCH_LENGTH)


def check_bench(cfg: BenchConfig) -> None:
    check_lengths(cfg.lengths)
    check_lengths(cfg.step_lengths, "train_lengths")
    for name, value, low, high in (
        ("repeats", cfg.repeats, 1, 100),
        ("train_repeats", cfg.train_repeats, 1, 20),
        ("train_batch", cfg.train_batch, 1, 64),
        ("threads", cfg.threads, 1, 64),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise UserError("input.out_of_range", name=name, low=low, high=high, value=value)


def machine(threads: int | None = None) -> dict:
    """Where the numbers come from (a shared 2-core machine and a laptop give different ones); `threads`: the torch
    thread count the measured work uses, when it is set only around that work."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": threads or torch.get_num_threads(),
        "load_average": load,
    }


@dataclass
class BenchReport:
    decode: list[dict] = field(default_factory=list)  # {arch, length, ms_per_token, ms_runs, state_bytes, state}
    train_step: list[dict] = field(default_factory=list)  # {arch, length, batch, ms, ms_runs}
    params: dict[str, int] = field(default_factory=dict)
    machine_before: dict = field(default_factory=dict)
    machine_after: dict = field(default_factory=dict)
    seconds: float = 0.0
    config: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def _models(cfg: BenchConfig):
    from engine.ssm.mamba import MambaLM, MambaSpec
    from engine.ssm.transformer import TinyTransformer, count_params, matched_spec

    torch.manual_seed(cfg.seed)
    mamba = MambaLM(MambaSpec(vocab_size=cfg.vocab_size, d_model=cfg.d_model, n_layer=cfg.n_layer, d_state=cfg.d_state))
    spec = matched_spec(count_params(mamba), cfg.vocab_size, cfg.d_model, cfg.n_layer, cfg.n_head)
    return mamba.eval(), TinyTransformer(spec).eval()


def _ms(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


@torch.no_grad()
def decode_row(arch: str, model, context: torch.Tensor, repeats: int) -> dict:
    """Time one next-token step after `context` (1, N); measure the bytes the model keeps for it."""
    from engine.ssm.transformer import cache_drop_last, cache_nbytes

    token = context[:, -1]  # (1,): any token will do; the cost does not depend on its value
    if arch == "transformer":
        _, cache = model.prefill(context)
        state_bytes, what = cache_nbytes(cache), "KV cache: keys + values of every past position, every layer"

        def one() -> None:
            model.step(token, cache)
            cache_drop_last(cache, 1)  # back to exactly N positions for the next timing

    else:
        _, state = model.prefill(context)
        state_bytes, what = state.nbytes(), "Mamba state: conv window + SSM state h, every layer"

        def one() -> None:
            model.step(token, state)  # returns a new state; the old one is reused for the next timing

    one()  # warm-up
    runs = [_ms(one) for _ in range(repeats)]
    return {
        "arch": arch,
        "length": int(context.shape[1]),
        "ms_per_token": statistics.median(runs),
        "ms_runs": runs,
        "state_bytes": int(state_bytes),
        "state": what,
    }


def train_step_row(name: str, model, ids: torch.Tensor, repeats: int, scan: str | None = None) -> dict:
    """Median time of one forward + backward over the whole (B, N) sequence."""
    targets = torch.roll(ids, -1, dims=1)

    def one() -> None:
        logits = model(ids, scan=scan) if scan else model(ids)  # (B, N, V)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        model.zero_grad(set_to_none=True)

    one()  # warm-up
    runs = [_ms(one) for _ in range(repeats)]
    return {
        "arch": name,
        "length": int(ids.shape[1]),
        "batch": int(ids.shape[0]),
        "ms": statistics.median(runs),
        "ms_runs": runs,
    }


def run_bench(
    cfg: BenchConfig = BenchConfig(),
    progress: ProgressFn = null_progress,
    on_row: RowFn | None = None,
    should_stop: StopFn | None = None,
) -> BenchReport:
    """Both measurements at every length; each row goes to `on_row` as soon as it is measured."""
    from engine.ssm.transformer import count_params
    from engine.training import training_threads

    check_bench(cfg)
    report = BenchReport(config=asdict(cfg))
    rows: list[dict] = []
    jobs = [("decode", a, n) for n in cfg.lengths for a in ("transformer", "mamba")]
    jobs += [
        ("train_step", a, n) for n in cfg.step_lengths for a in ("transformer", "mamba_parallel", "mamba_sequential")
    ]
    start = time.perf_counter()
    with training_threads(cfg.threads):
        report.machine_before = machine()
        mamba, transformer = _models(cfg)
        report.params = {"mamba": count_params(mamba), "transformer": count_params(transformer)}
        gen = torch.Generator().manual_seed(cfg.seed)
        for i, (kind, arch, n) in enumerate(jobs):
            if should_stop is not None and should_stop():
                exc = Cancelled(f"stopped after {len(rows)} of {len(jobs)} measurements")
                exc.partial = list(rows)
                raise exc
            try:
                progress(i / len(jobs), f"{kind} {arch} N={n}")
            except Cancelled as exc:
                exc.partial = list(rows)
                raise
            if kind == "decode":
                context = torch.randint(0, cfg.vocab_size, (1, n), generator=gen)
                row = decode_row(arch, transformer if arch == "transformer" else mamba, context, cfg.repeats)
                report.decode.append(row)
            else:
                ids = torch.randint(0, cfg.vocab_size, (cfg.train_batch, n), generator=gen)
                if arch == "transformer":
                    row = train_step_row(arch, transformer, ids, cfg.train_repeats)
                else:
                    row = train_step_row(arch, mamba, ids, cfg.train_repeats, scan=arch.removeprefix("mamba_"))
                report.train_step.append(row)
            row = {"kind": kind, **row}
            rows.append(row)
            if on_row is not None:
                on_row(row)
        report.machine_after = machine()
    report.seconds = time.perf_counter() - start
    progress(1.0, "done")
    return report
