"""DDPM from scratch (book 14.3): forward noising, the posterior q(x_{t-1} | x_t, x_0), the reverse sampler, and a
2-D toy dataset learned live by a small MLP denoiser.

The forward process needs no network:    q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)
The reverse step uses the posterior      q(x_{t-1} | x_t, x_0) = N(μ̃_t, β̃_t I)
    μ̃_t = (√ᾱ_{t-1} β_t / (1 − ᾱ_t)) x_0 + (√α_t (1 − ᾱ_{t-1}) / (1 − ᾱ_t)) x_t,   β̃_t = β_t (1 − ᾱ_{t-1}) / (1 − ᾱ_t)
with x_0 replaced by the network's guess x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t, where ε̂ = ε_θ(x_t, t) predicts the
noise (the training loss is ‖ε − ε_θ(x_t, t)‖²). That is the same mean as the paper's
    μ_θ = (x_t − β_t / √(1 − ᾱ_t) · ε̂) / √α_t.
Classifier-free guidance mixes a conditional and an unconditional prediction: ε̂ = ε_∅ + s (ε_c − ε_∅), s = 0 is
unconditional, s = 1 conditional, s > 1 pushes further towards the class (sharper, less varied).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.multimodal.gen_errors import GenerationError, check_number
from engine.multimodal.schedules import NoiseSchedule, make_schedule

TOY_DATASETS = ("moons", "swiss_roll", "ring")

# eps_fn(x_t, t) -> ε̂, with t a (B,) long tensor of step indices
EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] shaped to broadcast over a batch like `like`: (B,) -> (B, 1, ..., 1), in like's dtype."""
    out = values.to(like.device)[t].to(like.dtype)
    return out.reshape(-1, *([1] * (like.dim() - 1)))


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, sched: NoiseSchedule) -> torch.Tensor:
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, in one jump from x_0 (no loop over the t steps). x0, noise: (B, ...)."""
    return _at(sched.alpha_bar.sqrt(), t, x0) * x0 + _at((1 - sched.alpha_bar).sqrt(), t, x0) * noise


def q_step(x_prev: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, sched: NoiseSchedule) -> torch.Tensor:
    """One forward step x_t = √α_t x_{t-1} + √β_t ε (applied t+1 times it has the law of q_sample)."""
    return _at(sched.alphas.sqrt(), t, x_prev) * x_prev + _at(sched.betas.sqrt(), t, x_prev) * noise


def posterior(x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, sched: NoiseSchedule):
    """Mean and variance of q(x_{t-1} | x_t, x_0): (μ̃_t (B, ...), β̃_t broadcast (B, 1, ...))."""
    ab, ab_prev = sched.alpha_bar, sched.alpha_bar_prev
    c0 = sched.betas * ab_prev.sqrt() / (1 - ab)  # weight of x_0
    ct = sched.alphas.sqrt() * (1 - ab_prev) / (1 - ab)  # weight of x_t
    mean = _at(c0, t, xt) * x0 + _at(ct, t, xt) * xt
    return mean, _at(sched.posterior_variance, t, xt)


def predict_x0(xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, sched: NoiseSchedule) -> torch.Tensor:
    """x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t: the forward jump solved for x_0."""
    return (xt - _at((1 - sched.alpha_bar).sqrt(), t, xt) * eps) / _at(sched.alpha_bar.sqrt(), t, xt)


def p_step(xt: torch.Tensor, t: int, eps: torch.Tensor, sched: NoiseSchedule, noise: torch.Tensor | None):
    """One reverse step x_t -> x_{t-1} given ε̂: the posterior mean at x̂_0, plus √β̃_t z (no noise at t = 0)."""
    tt = torch.full((xt.shape[0],), t, dtype=torch.long)
    mean, var = posterior(predict_x0(xt, tt, eps, sched), xt, tt, sched)
    if t == 0 or noise is None:
        return mean
    return mean + var.sqrt() * noise


@dataclass
class Trajectory:
    final: torch.Tensor  # (B, ...) x_0 samples
    steps: list[int]  # the step t of each snapshot (T-1 first ... 0, then -1 for the final x_0)
    snapshots: list[torch.Tensor]  # x_t at those steps (before the step is taken), then the final x_0
    predicted_x0: list[torch.Tensor]  # the network's x̂_0 at the same steps (the final one repeats `final`)


@torch.no_grad()
def sample(
    eps_fn: EpsFn,
    shape: tuple[int, ...],
    sched: NoiseSchedule,
    generator: torch.Generator | None = None,
    keep: int = 8,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
) -> Trajectory:
    """The DDPM sampler: x_T ~ N(0, I), then T reverse steps; keeps `keep` evenly spaced snapshots for a strip."""
    T = sched.steps
    keep_at = {round(i * (T - 1) / max(keep - 1, 1)) for i in range(keep)} if keep > 0 else set()
    x = torch.randn(shape, generator=generator)
    steps, snaps, x0s = [], [], []
    for t in range(T - 1, -1, -1):
        tt = torch.full((shape[0],), t, dtype=torch.long)
        eps = eps_fn(x, tt)
        if t in keep_at:
            steps.append(t)
            snaps.append(x.clone())
            x0s.append(predict_x0(x, tt, eps, sched).clone())
        z = torch.randn(shape, generator=generator) if t > 0 else None
        x = p_step(x, t, eps, sched, z)
        if should_stop is not None and should_stop():
            raise Cancelled("sampling stopped")
        if t % max(T // 20, 1) == 0:
            progress(1 - t / T, f"step t={t}")
    steps.append(-1)
    snaps.append(x.clone())
    x0s.append(x.clone())
    return Trajectory(x, steps, snaps, x0s)


def guided_eps(model: nn.Module, labels: torch.Tensor, null_label: int, scale: float) -> EpsFn:
    """Classifier-free guidance: ε_∅ + s (ε_c − ε_∅), both from one batched forward (conditional and null label)."""

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if scale == 1.0:
            return model(x, t, labels)
        null = torch.full_like(labels, null_label)
        if scale == 0.0:
            return model(x, t, null)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null]))
        cond, uncond = both.chunk(2)
        return uncond + scale * (cond - uncond)

    return eps_fn


# --- the 2-D toy ---------------------------------------------------------------------------------------------


def toy_data(name: str, n: int, generator: torch.Generator) -> torch.Tensor:
    """n points of a 2-D toy distribution, scaled to about unit variance. (n, 2)"""
    if name == "moons":
        u = torch.rand(n, generator=generator) * math.pi
        upper = torch.rand(n, generator=generator) < 0.5
        x = torch.where(upper, torch.cos(u), 1 - torch.cos(u))
        y = torch.where(upper, torch.sin(u), 0.5 - torch.sin(u))
        pts = torch.stack([x - 0.5, y - 0.25], dim=1) * 1.6
    elif name == "swiss_roll":
        u = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator))
        pts = torch.stack([u * torch.cos(u), u * torch.sin(u)], dim=1) / 7.0
    elif name == "ring":
        u = torch.rand(n, generator=generator) * 2 * math.pi
        pts = torch.stack([torch.cos(u), torch.sin(u)], dim=1) * 1.5
    else:
        raise GenerationError("input.unknown_choice", name="dataset", value=name, choices=", ".join(TOY_DATASETS))
    return pts + 0.03 * torch.randn(n, 2, generator=generator)


def timestep_embedding(t: torch.Tensor, dim: int, steps: int) -> torch.Tensor:
    """Sinusoidal features of t/T (as in the Transformer's positions), so the net can tell early from late steps."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, dtype=torch.float32) / half)
    angle = (t.float() / steps * 1000.0)[:, None] * freqs[None] / 10.0  # (B, half)
    return torch.cat([angle.sin(), angle.cos()], dim=1)  # (B, dim)


class ToyDenoiser(nn.Module):
    """ε_θ(x_t, t) for 2-D points: an MLP on [x_t, embedding(t)]."""

    def __init__(self, steps: int, hidden: int = 128, t_dim: int = 32):
        super().__init__()
        self.steps, self.t_dim = steps, t_dim
        self.net = nn.Sequential(
            nn.Linear(2 + t_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # (B, 2), (B,) -> (B, 2)
        return self.net(torch.cat([x, timestep_embedding(t, self.t_dim, self.steps)], dim=1))


@dataclass
class ToyConfig:
    dataset: str = "moons"
    schedule: str = "linear"
    steps: int = 2000  # training steps
    diffusion_steps: int = 100  # T
    batch: int = 256
    lr: float = 2e-3
    hidden: int = 128
    seed: int = 0
    max_seconds: float = 30.0
    log_every: int = 50
    samples: int = 1000
    threads: int = 1  # a tiny MLP gains nothing from a second thread, and a busy machine makes it slower

    def check(self) -> ToyConfig:
        if self.dataset not in TOY_DATASETS:
            raise GenerationError(
                "input.unknown_choice", name="dataset", value=self.dataset, choices=", ".join(TOY_DATASETS)
            )
        make_schedule(self.schedule, 2)  # an unknown schedule name is refused here, before any training
        check_number("steps", self.steps, 1, 20000, integer=True)
        check_number("diffusion_steps", self.diffusion_steps, 10, 1000, integer=True)
        check_number("batch", self.batch, 8, 4096, integer=True)
        check_number("lr", self.lr, 1e-6, 0.1)
        check_number("hidden", self.hidden, 8, 1024, integer=True)
        check_number("max_seconds", self.max_seconds, 1, 3600)
        check_number("samples", self.samples, 1, 20000, integer=True)
        return self


@dataclass
class ToyResult:
    config: dict
    rows: list[dict]  # {"step", "loss", "seconds"} every log_every steps
    seconds: float  # training wall time
    trained_steps: int
    status: str  # "finished" or "time_limit"
    data: list[list[float]]  # real points (for the scatter)
    samples: list[list[float]]  # generated points
    strip: list[dict] = field(default_factory=list)  # {"t", "points"}: the same samples along the reverse process
    nearest_distance: float = 0.0  # mean distance of a sample to its nearest real point (lower = on the data)
    data_nearest_distance: float = 0.0  # the same for fresh real points: the floor to compare with

    def to_json(self) -> dict:
        return asdict(self)


def nearest_distance(points: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean Euclidean distance from each point to its nearest reference point."""
    return float(torch.cdist(points.double(), reference.double()).min(dim=1).values.mean())


def _r(t: torch.Tensor, nd: int = 3) -> list[list[float]]:
    return [[round(float(v), nd) for v in row] for row in t]


def train_toy(
    cfg: ToyConfig,
    progress: ProgressFn = null_progress,
    on_row: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ToyResult:
    """Train the MLP denoiser on a 2-D toy set (loss ‖ε − ε_θ(x_t, t)‖², t uniform), then sample with DDPM.

    Stops at `cfg.steps` or `cfg.max_seconds`, whichever comes first; `should_stop` -> Cancelled (rows kept)."""
    cfg.check()
    torch.manual_seed(cfg.seed)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(cfg.threads, 2)))
    try:
        gen = torch.Generator().manual_seed(cfg.seed)
        sched = make_schedule(cfg.schedule, cfg.diffusion_steps)
        model = ToyDenoiser(cfg.diffusion_steps, cfg.hidden)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        lr_at = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps, eta_min=cfg.lr * 0.05)
        rows: list[dict] = []
        start = time.perf_counter()
        status, step, running = "finished", 0, None
        for step in range(1, cfg.steps + 1):
            x0 = toy_data(cfg.dataset, cfg.batch, gen)
            t = torch.randint(0, cfg.diffusion_steps, (cfg.batch,), generator=gen)
            noise = torch.randn(x0.shape, generator=gen)
            loss = ((model(q_sample(x0, t, noise, sched), t) - noise) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            lr_at.step()
            value = loss.item()
            if not math.isfinite(value):
                raise GenerationError("mmgen.diverged", step=step, value=value)
            running = value if running is None else 0.9 * running + 0.1 * value
            elapsed = time.perf_counter() - start
            last = step == cfg.steps or elapsed > cfg.max_seconds  # the final step always gets its row
            if step % cfg.log_every == 0 or last:
                row = {"step": step, "loss": round(value, 5), "loss_smooth": round(running, 5)}
                row["seconds"] = round(elapsed, 2)
                rows.append(row)
                if on_row is not None:
                    on_row(row)
                progress(step / cfg.steps * 0.9, f"step {step}/{cfg.steps}  loss {running:.4f}")
            if should_stop is not None and should_stop():
                err = Cancelled("training stopped")
                err.partial = rows  # type: ignore[attr-defined]
                raise err
            if elapsed > cfg.max_seconds:
                status = "time_limit"
                break
        seconds = time.perf_counter() - start
        model.eval()
        traj = sample(lambda x, tt: model(x, tt), (cfg.samples, 2), sched, gen, keep=6)
        real = toy_data(cfg.dataset, 4000, gen)
        fresh = toy_data(cfg.dataset, cfg.samples, gen)
        progress(1.0, "sampled")
        return ToyResult(
            config=asdict(cfg),
            rows=rows,
            seconds=round(seconds, 2),
            trained_steps=step,
            status=status,
            data=_r(real[:1000]),
            samples=_r(traj.final),
            strip=[{"t": s, "points": _r(p[:400])} for s, p in zip(traj.steps, traj.snapshots, strict=True)],
            nearest_distance=round(nearest_distance(traj.final, real), 4),
            data_nearest_distance=round(nearest_distance(fresh, real), 4),
        )
    finally:
        torch.set_num_threads(old_threads)


def forward_strip(dataset: str = "moons", schedule: str = "linear", steps: int = 100, n: int = 400, seed: int = 0):
    """The forward process on the toy set: the same points at a few t (no network): {"t", "points", "alpha_bar"}."""
    gen = torch.Generator().manual_seed(seed)
    sched = make_schedule(schedule, steps)
    x0 = toy_data(dataset, n, gen)
    noise = torch.randn(x0.shape, generator=gen)
    out = []
    for t in sorted({0, steps // 10, steps // 4, steps // 2, (3 * steps) // 4, steps - 1}):
        xt = q_sample(x0, torch.full((n,), t), noise, sched)
        out.append({"t": t, "alpha_bar": round(float(sched.alpha_bar[t]), 5), "points": _r(xt)})
    return out


def compare_toy_schedules(
    dataset: str = "moons",
    steps: int = 1500,
    diffusion_steps: int = 50,
    seed: int = 0,
    max_seconds: float = 30.0,
    progress: ProgressFn = null_progress,
) -> dict:
    """The same MLP trained with each schedule at a small T: ᾱ curves, loss rows, samples and the sample quality
    (mean distance to the data, lower is better). With few steps the linear schedule's ᾱ_T is not ≈ 0, so the
    sampler starts from a distribution that is not what it was trained to end at."""
    out: dict = {"dataset": dataset, "diffusion_steps": diffusion_steps, "runs": {}}
    for i, name in enumerate(("linear", "cosine")):
        cfg = ToyConfig(dataset, name, steps, diffusion_steps, seed=seed, max_seconds=max_seconds)
        res = train_toy(cfg, progress=lambda f, m, i=i, name=name: progress((i + f) / 2, f"{name}: {m}"))
        sched = make_schedule(name, diffusion_steps)
        out["runs"][name] = {
            **res.to_json(),
            "alpha_bar_last": round(float(sched.alpha_bar[-1]), 5),
        }
    return out
