"""Chapter 13's tracked demo run (book 13.1): chapter 4's toy DPO, small enough to run on a click, logged like
every other training run of the app (`tracking.tracked_work`) so a learner has a real run to compare, register
(its `policy` artifact) and promote.

    result = tracked_toy_dpo(0.1, 15, progress, on_row, should_stop, on_done=outcomes.append)
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.core.progress import ProgressFn, null_progress
from engine.llmops.tracking import DatasetVersion, TrackedRun, TrackOutcome, dataset_version, tracked_work

COMMAND = "pages/13_llmops.py"


@dataclass
class ToyDPORun:
    """A finished (or stopped) toy DPO run: its RunLog, the trained policy and the seed of its data."""

    log: Any  # engine.training.callbacks.RunLog
    policy: Any  # the toy policy (torch.nn.Module)
    seed: int

    @property
    def status(self) -> str:
        return self.log.status


def toy_dpo(
    beta: float,
    steps: int,
    seed: int = 0,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> ToyDPORun:
    """Chapter 4's toy DPO at `beta` for `steps` steps (rows: step, loss, reward_mean, kl, ... per step)."""
    from engine.alignment import ToyConfig, toy_setup
    from engine.alignment.runs import interleave, make_run

    setup = toy_setup(ToyConfig(seed=seed))
    dpo = make_run("dpo", setup, seed, beta=beta)
    logs = interleave({"dpo": dpo}, steps, progress, should_stop, on_row)
    return ToyDPORun(logs["dpo"], dpo.policy, seed)


def toy_preferences(seed: int = 0) -> DatasetVersion:
    """The version of the toy preference pairs the run trains on."""
    from engine.alignment import ToyConfig, toy_setup

    source = f"engine.alignment.toy.preference_pairs(ToyConfig(seed={seed}))"
    return dataset_version("toy-preferences", toy_setup(ToyConfig(seed=seed)).pairs, source)


def save_policy(run: TrackedRun, result: ToyDPORun) -> None:
    """The trained policy's weights as the artifact folder `policy` (a few KB: what the registry registers)."""
    import torch

    with tempfile.TemporaryDirectory(prefix="llmlab-policy-") as tmp:
        torch.save(result.policy.state_dict(), Path(tmp) / "policy.pt")
        run.log_artifacts(tmp, "policy")


def tracked_toy_dpo(
    beta: float,
    steps: int,
    progress: ProgressFn = null_progress,
    on_row: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    seed: int = 0,
    enabled: bool = True,
    on_done: Callable[[TrackOutcome], None] | None = None,
) -> ToyDPORun:
    """`toy_dpo` logged to `llmlab-ch04` as "toy dpo": parameters, per-step metrics, the preference pairs' version
    and the policy artifact."""
    params = {"method": "dpo", "beta": beta, "steps": steps, "seed": seed}
    work = tracked_work(
        lambda p, row, stop: toy_dpo(beta, steps, seed, p, stop, row),
        "ch04",
        "toy dpo",
        params,
        dataset=lambda: toy_preferences(seed),
        finish=save_policy,
        on_done=on_done,
        enabled=enabled,
        command=COMMAND,
    )
    return work(progress, on_row, should_stop or (lambda: False))


__all__ = ["ToyDPORun", "save_policy", "toy_dpo", "toy_preferences", "tracked_toy_dpo"]
