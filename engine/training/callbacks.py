"""Progress, metrics, cancellation and divergence for every training loop, in one place.

A loop (plain PyTorch or 🤗 Trainer) hands each step's numbers to a `Monitor`. The monitor
- keeps the rows (so a cancelled or diverged run still has everything it finished),
- forwards each row to `on_row` (a page draws live curves from it; the CLI prints a JSON line),
- reports `progress(fraction, message)`,
- stops the run when `should_stop()` says so, when `progress` raises `Cancelled`, or when a watched number
  (the loss, by default) is NaN or infinite — a learning rate that is too large shows up exactly like that.

Plain loops call `monitor.record(row)` and stop when it returns False; Trainer-based loops pass
`monitor.trainer_callback()` in `callbacks=[...]`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from engine.core.progress import Cancelled, ProgressFn, null_progress

RowFn = Callable[[dict], None]
StopFn = Callable[[], bool]

RUNNING, FINISHED, CANCELLED, DIVERGED = "running", "finished", "cancelled", "diverged"


class Diverged(ArithmeticError):
    """A number the run depends on (loss, logits, a reward) stopped being finite."""


def is_finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True  # not a number (a label, a text): nothing to check


def check_finite(name: str, value) -> None:
    """Raise `Diverged` when `value` (a float or a tensor) holds NaN or ±inf."""
    if hasattr(value, "isfinite"):
        if not bool(value.isfinite().all()):
            raise Diverged(f"{name} is NaN or infinite")
    elif not is_finite(value):
        raise Diverged(f"{name} is {value}")


@dataclass
class RunLog:
    """Everything a run produced so far; survives cancellation and divergence."""

    label: str = ""
    rows: list[dict] = field(default_factory=list)  # one dict per step (kind="train") or evaluation (kind="eval")
    status: str = RUNNING
    message: str = ""
    seconds: float = 0.0

    @property
    def done(self) -> bool:
        return self.status != RUNNING

    def train_rows(self) -> list[dict]:
        return [r for r in self.rows if r.get("kind", "train") == "train"]

    def eval_rows(self) -> list[dict]:
        return [r for r in self.rows if r.get("kind") == "eval"]

    def last(self, key: str, default=None):
        for row in reversed(self.rows):
            if key in row:
                return row[key]
        return default


class Monitor:
    """Collects rows and decides whether the run goes on (see the module docstring)."""

    def __init__(
        self,
        total_steps: int,
        progress: ProgressFn = null_progress,
        should_stop: StopFn | None = None,
        on_row: RowFn | None = None,
        label: str = "",
        watch: Iterable[str] = ("loss",),
        explode: float | None = 10.0,
        max_jump: dict[str, float] | None = None,
    ):
        self.total_steps = max(1, int(total_steps))
        self.progress = progress
        self.should_stop = should_stop
        self.on_row = on_row
        self.watch = tuple(watch)
        self.explode = explode  # a watched value this many times its first size (at least 1) counts as diverged
        self._baseline: dict[str, float] = {}
        self.max_jump = dict(max_jump or {})  # e.g. {"kl": 8}: a one-step change larger than this is a blow-up
        self._previous: dict[str, float] = {}
        self.log = RunLog(label=label)
        self._start = time.perf_counter()

    # --- the plain-loop API -----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.log.status == RUNNING

    def record(self, row: dict, *, counts_as_step: bool = True) -> bool:
        """Keep `row`, report it, and return whether the loop should continue."""
        row = dict(row)
        row.setdefault("kind", "train" if counts_as_step else "eval")
        if self.log.label:
            row.setdefault("run", self.log.label)
        self.log.rows.append(row)
        problem = self._divergence(row) if counts_as_step else None
        if self.on_row is not None:
            self.on_row(row)
        if problem:
            step = row.get("step", len(self.log.train_rows()))
            self.stop(
                DIVERGED,
                f"{problem} at step {step}: the learning rate is too large for this model "
                f"(the run stopped; the steps before it are kept)",
            )
            return False
        if counts_as_step:
            step = row.get("step", len(self.log.train_rows()))
            shown = ", ".join(f"{k} {row[k]:.4g}" for k in self.watch if isinstance(row.get(k), int | float))
            try:
                self.progress(
                    min(1.0, step / self.total_steps),
                    f"{self.log.label} step {step}/{self.total_steps}" + (f" · {shown}" if shown else ""),
                )
            except Cancelled:
                self.stop(CANCELLED, f"cancelled after {step} of {self.total_steps} steps (results so far are kept)")
                return False
            if self.should_stop is not None and self.should_stop():
                self.stop(CANCELLED, f"cancelled after {step} of {self.total_steps} steps (results so far are kept)")
                return False
        return self.running

    def _divergence(self, row: dict) -> str | None:
        for key in self.watch:
            if key not in row or not isinstance(row[key], int | float):
                continue
            value = float(row[key])
            if not math.isfinite(value):
                return f"{key} became {value}"
            base = self._baseline.setdefault(key, max(1.0, abs(value)))
            if self.explode is not None and abs(value) > self.explode * base:
                return f"{key} exploded to {value:.4g} (it started near {base:.3g})"
        for key, limit in self.max_jump.items():
            value = row.get(key)
            if not isinstance(value, int | float):
                continue
            if not math.isfinite(value):
                return f"{key} became {value}"
            before = self._previous.get(key)
            self._previous[key] = float(value)
            if before is not None and abs(value - before) > limit:
                return f"{key} jumped from {before:.3g} to {value:.3g} in one step"
        return None

    def stop(self, status: str, message: str) -> None:
        if self.running:
            self.log.status, self.log.message = status, message
            self.log.seconds = time.perf_counter() - self._start

    def fail(self, exc: BaseException) -> None:
        """A step raised `Diverged` (NaN logits while sampling, say): record it as a clean stop."""
        steps = len(self.log.train_rows())
        self.stop(
            DIVERGED,
            f"{exc} after {steps} steps: the learning rate is too large for this model "
            f"(the run stopped; the steps before it are kept)",
        )

    def finish(self) -> RunLog:
        self.stop(FINISHED, "")
        if self.log.status == FINISHED:
            with contextlib.suppress(Cancelled):
                self.progress(1.0, f"{self.log.label} done")
        return self.log

    # --- the 🤗 Trainer API ---------------------------------------------------------------------------------------
    def trainer_callback(self, metric_names: dict[str, str] | None = None):
        """A `transformers.TrainerCallback` that feeds this monitor (use with `logging_steps=1`).

        `metric_names` renames log keys (e.g. {"rewards/margins": "margin"}); every numeric log value is kept.
        Set `logging_nan_inf_filter=False` in the arguments, or Trainer hides a NaN loss from the logs.
        """
        from transformers import TrainerCallback

        monitor = self
        names = metric_names or {}

        class _MonitorCallback(TrainerCallback):
            def __init__(self):
                self._t = time.perf_counter()

            def on_step_begin(self, args, state, control, **kwargs):
                self._t = time.perf_counter()

            def on_log(self, args, state, control, logs=None, **kwargs):
                logs = logs or {}
                if "loss" not in logs or not monitor.running:
                    return
                row = {"step": state.global_step, "epoch": state.epoch, "seconds": time.perf_counter() - self._t}
                for key, value in logs.items():
                    if isinstance(value, int | float):
                        row[names.get(key, key)] = float(value)
                if not monitor.record(row):
                    control.should_training_stop = True

            def on_evaluate(self, args, state, control, metrics=None, **kwargs):
                row = {"step": state.global_step, "epoch": state.epoch}
                for key, value in (metrics or {}).items():
                    if isinstance(value, int | float):
                        key = key.removeprefix("eval_")
                        row[names.get(key, key)] = float(value)
                monitor.record(row, counts_as_step=False)

            def on_step_end(self, args, state, control, **kwargs):
                if not monitor.running:
                    control.should_training_stop = True

        return _MonitorCallback()


def silence_progress_bars() -> None:
    """🤗 datasets draws a tqdm bar for every map/filter; progress is reported through the monitor instead."""
    import datasets

    datasets.disable_progress_bars()


def quiet_trainer(trainer) -> None:
    """Drop Trainer's own console printer (with tqdm off it prints every log dict to stdout, which would break
    `--json` output); our monitor reports instead."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


def first_last_fifth(values: list[float]) -> tuple[float, float]:
    """Mean of the first and of the last fifth of a curve (the goal metric for "did it go up")."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    k = max(1, n // 5)
    return sum(values[:k]) / k, sum(values[-k:]) / k
