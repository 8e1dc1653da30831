"""The chapter's experiments on the toy: PPO vs DPO side by side, reward hacking, the β sweep, best-of-n.

Every run reports one row per step (method, step, reward_mean, judge_mean, kl, loss, seconds, …) through a
`Monitor`, so a page draws it live, the CLI prints it as JSON lines, and a cancelled or diverged run keeps
the rows it finished.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch

from engine.alignment.dpo import DPOConfig, DPORun
from engine.alignment.ppo import PPOConfig, PPORun
from engine.alignment.toy import ToyConfig, ToySetup, evaluate_policy, prompt_ids, sample, score, toy_setup
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.training import training_threads
from engine.training.callbacks import Diverged, Monitor, RunLog, StopFn, first_last_fifth

METHODS = ("ppo", "dpo")
KL_JUMP = 8.0  # nats of KL gained in a single step: not learning, a blow-up (a learning rate far too large)
RowFn = Callable[[dict], None]


def make_run(
    method: str,
    setup: ToySetup,
    seed: int,
    lr: float | None = None,
    kl_coef: float | None = None,
    beta: float | None = None,
):
    """A PPO or DPO run on `setup`; None keeps the method's own default for that setting."""
    if method == "ppo":
        cfg = PPOConfig(seed=seed)
        changes = {"lr": lr, "kl_coef": kl_coef}
        return PPORun(setup, replace(cfg, **{k: v for k, v in changes.items() if v is not None}))
    if method == "dpo":
        cfg = DPOConfig(seed=seed)
        changes = {"lr": lr, "beta": beta}
        return DPORun(setup, replace(cfg, **{k: v for k, v in changes.items() if v is not None}))
    raise InputError("input.unknown_choice", name="method", value=method, choices=", ".join(METHODS))


def interleave(
    runs: dict[str, object],
    steps: int,
    progress: ProgressFn = null_progress,
    should_stop: StopFn | None = None,
    on_row: RowFn | None = None,
) -> dict[str, RunLog]:
    """Advance every run one step in turn (so their curves grow side by side) until `steps` or a stop."""
    if not 1 <= steps <= 5000:
        raise InputError("input.out_of_range", name="steps", low=1, high=5000, value=steps)
    n = len(runs)
    monitors = {
        name: Monitor(steps, _share(progress, i, n), should_stop, on_row, label=name, max_jump={"kl": KL_JUMP})
        for i, name in enumerate(runs)
    }
    with training_threads():
        for _ in range(steps):
            live = [name for name, m in monitors.items() if m.running]
            if not live:
                break
            for name in live:
                try:
                    row = runs[name].step()
                except Diverged as exc:
                    monitors[name].fail(exc)
                    continue
                if not monitors[name].record(row) and monitors[name].log.status == "cancelled":
                    for other in monitors.values():  # a cancel stops the whole comparison
                        other.stop("cancelled", monitors[name].log.message)
    return {name: m.finish() for name, m in monitors.items()}


def _share(progress: ProgressFn, i: int, n: int) -> ProgressFn:
    return lambda f, msg: progress((i + f) / n if n > 1 else f, msg)


def race(
    methods: tuple[str, ...] = METHODS,
    steps: int = 60,
    seed: int = 0,
    lr: float | None = None,
    kl_coef: float = 0.3,
    beta: float = 0.3,
    progress: ProgressFn = null_progress,
    should_stop: StopFn | None = None,
    on_row: RowFn | None = None,
) -> dict[str, RunLog]:
    """PPO and DPO from the same reference policy, preference pairs and seed, one step each in turn.

    Both optimise the same KL-regularised objective, E[reward] − β·KL(π‖π_ref): PPO with β as its KL penalty
    (`kl_coef`), DPO with it as its `beta`; by default both use β = 0.3.
    """
    methods = tuple(dict.fromkeys(methods))
    if not methods or any(m not in METHODS for m in methods):
        raise InputError("alignment.unknown_methods", choices=", ".join(METHODS), value=", ".join(methods) or "none")
    setup = toy_setup(ToyConfig(seed=seed), _share(progress, 0, 10))
    runs = {m: make_run(m, setup, seed, lr=lr, kl_coef=kl_coef, beta=beta) for m in methods}
    return interleave(runs, steps, progress, should_stop, on_row)


def reward_hacking(
    steps: int = 60,
    seed: int = 0,
    kl_coefs: tuple[float, ...] = (0.0, 0.5),
    progress: ProgressFn = null_progress,
    should_stop: StopFn | None = None,
    on_row: RowFn | None = None,
) -> dict[str, RunLog]:
    """PPO with the KL penalty off and on: the proxy reward climbs either way; watch the held-out judge."""
    setup = toy_setup(ToyConfig(seed=seed), _share(progress, 0, 10))
    runs = {}
    for coef in dict.fromkeys(kl_coefs):
        run = make_run("ppo", setup, seed, kl_coef=coef)
        run.method = f"ppo β={coef:g}"
        runs[run.method] = run
    return interleave(runs, steps, progress, should_stop, on_row)


def beta_sweep(
    betas: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0),
    steps: int = 100,
    seed: int = 0,
    checkpoints: int = 5,
    progress: ProgressFn = null_progress,
    should_stop: StopFn | None = None,
    on_row: RowFn | None = None,
) -> tuple[list[dict], RunLog]:
    """DPO at several β from the same start: reward, judge and KL to the reference measured at a few checkpoints.

    Training steps skip the (expensive) sampling; every steps/checkpoints steps, 256 sampled answers measure the
    policy. Returns the checkpoint rows (method, beta, step, reward_mean, judge_mean, kl, loss) and the run log
    (status: finished, cancelled or diverged; the rows so far are kept either way). Small β lets the policy drift far
    from the reference before the loss saturates; large β stops it early.
    """
    betas = tuple(dict.fromkeys(betas))
    if not betas or min(betas) <= 0:
        raise InputError("alignment.bad_betas")
    if not 1 <= steps <= 5000:
        raise InputError("input.out_of_range", name="steps", low=1, high=5000, value=steps)
    setup = toy_setup(ToyConfig(seed=seed), _share(progress, 0, 10))
    every = max(1, steps // max(1, checkpoints))
    monitor = Monitor(steps * len(betas), progress, should_stop, on_row, label="β sweep")
    out: list[dict] = []
    with training_threads():
        for b in betas:
            run = make_run("dpo", setup, seed, beta=b)
            g = torch.Generator().manual_seed(seed + 11)
            for step in range(1, steps + 1):
                try:
                    row = run.step(evaluate=False)
                except Diverged as exc:
                    monitor.fail(exc)
                    break
                if not monitor.record({"step": len(monitor.log.train_rows()) + 1, "loss": row["loss"]}):
                    break
                if step % every == 0 or step == steps:
                    run.policy.eval()
                    ev = evaluate_policy(run.policy, setup, 256, g)
                    point = {
                        "method": f"dpo β={b:g}",
                        "beta": b,
                        "step": step,
                        "reward_mean": ev["reward_mean"],
                        "judge_mean": ev["judge_mean"],
                        "kl": ev["kl"],
                        "loss": row["loss"],
                        "margin": row["margin"],
                    }
                    out.append(point)
                    monitor.record(point, counts_as_step=False)
            if not monitor.running:
                break
    return out, monitor.finish()


@torch.no_grad()
def best_of_n(ns: tuple[int, ...] = (1, 2, 4, 8, 16, 32), prompts: int = 128, seed: int = 0) -> list[dict]:
    """Rejection sampling on the toy: draw n answers from the reference, keep the one the proxy reward likes best.

    No training at all, yet the proxy reward rises with n — and so can reward hacking. The KL of best-of-n to
    the reference has a closed form, log n − (n−1)/n, shown next to it.
    """
    if not ns or min(ns) < 1 or max(ns) > 256:
        raise InputError("alignment.bad_best_of_n")
    setup = toy_setup(ToyConfig(seed=seed))
    g = torch.Generator().manual_seed(seed + 7)
    questions = setup.questions(prompts, g)
    n_max = max(ns)
    with training_threads():
        resp, _mask = sample(setup.reference, prompt_ids(questions * n_max), setup.cfg.max_new, g)
    proxy, judge, texts = score(questions * n_max, resp)
    P = len(questions)
    proxy_t = torch.tensor(proxy).view(n_max, P)
    judge_t = torch.tensor(judge).view(n_max, P)
    rows = []
    for n in sorted(set(ns)):
        best = proxy_t[:n].argmax(0)  # first best on ties
        cols = torch.arange(P)
        rows.append(
            {
                "n": n,
                "reward_mean": float(proxy_t[best, cols].mean()),
                "judge_mean": float(judge_t[best, cols].mean()),
                "kl_bound": math.log(n) - (n - 1) / n,
                "example": f"{questions[0]} → {texts[int(best[0]) * P]}",
            }
        )
    return rows


def summary(logs: dict[str, RunLog]) -> list[dict]:
    """Per run: reward and judge, first vs last fifth of the steps, final KL, seconds per step."""
    out = []
    for name, log in logs.items():
        rows = log.train_rows()
        if not rows:
            out.append({"run": name, "steps": 0, "status": log.status, "message": log.message})
            continue
        rf, rl = first_last_fifth([r["reward_mean"] for r in rows])
        jf, jl = first_last_fifth([r["judge_mean"] for r in rows])
        out.append(
            {
                "run": name,
                "steps": len(rows),
                "status": log.status,
                "reward_first": rf,
                "reward_last": rl,
                "judge_first": jf,
                "judge_last": jl,
                "kl_last": rows[-1]["kl"],
                "seconds_per_step": sum(r["seconds"] for r in rows) / len(rows),
                "message": log.message,
            }
        )
    return out
