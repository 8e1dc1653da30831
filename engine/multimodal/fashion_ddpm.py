"""The small UNet of `unet` trained as a class-conditional DDPM on Fashion-MNIST with classifier-free guidance.

Training: x_0 an image scaled to [-1, 1], t uniform, ε ~ N(0, I); the label is replaced by the null label with
probability `p_uncond` (label dropout), so the same network predicts ε(x_t, t, c) and ε(x_t, t, ∅). Sampling mixes
them with the guidance scale s (engine.multimodal.ddpm.guided_eps). The trained weights ship as
assets/multimodal/ddpm_fashion_unet.pt (float16, a few MB) so the page samples without training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from engine.core.assets import asset
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.multimodal.ddpm import guided_eps, q_sample, sample
from engine.multimodal.gen_errors import GenerationError, check_number
from engine.multimodal.schedules import make_schedule
from engine.multimodal.unet import TinyUNet, UNetConfig

CHECKPOINT = "ddpm_fashion_unet.pt"
MAX_GUIDANCE = 10.0


def fashion_images(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,)) from the chapter's loader; no digits fallback (the UNet is trained
    and shipped on Fashion-MNIST only)."""
    from engine.multimodal.data import load_images

    data = load_images(split, fallback=False)
    return data.images, np.asarray(data.labels)


def to_model(images: np.ndarray, size: int = 28) -> torch.Tensor:
    """uint8 (B, 28, 28) -> float (B, 1, size, size) in [-1, 1] (size 14: each 2×2 block averaged)."""
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)[:, None]
    return F.avg_pool2d(x, 28 // size) if size != 28 else x


def to_pixels(x: torch.Tensor) -> list:
    """float (B, 1, H, W) in about [-1, 1] -> uint8 nested lists (B, H, W) for JSON and st.image."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[:, 0].tolist()


@dataclass
class FashionConfig:
    steps: int = 3000
    batch: int = 32
    lr: float = 2e-3
    schedule: str = "cosine"
    diffusion_steps: int = 100
    channels: int = 16
    # 14: trained on 2×2-averaged images. On the shared 2-core machine a 28×28 step (batch 32) took ~12 s with five
    # jobs running; at 14×14 it is about a quarter of that, so the shipped run could take enough steps.
    image_size: int = 14
    p_uncond: float = 0.1  # label dropout: how often the null label is trained
    seed: int = 0
    max_seconds: float = 900.0
    log_every: int = 25
    threads: int = 2

    def check(self) -> FashionConfig:
        make_schedule(self.schedule, 2)
        check_number("steps", self.steps, 1, 100000, integer=True)
        check_number("batch", self.batch, 1, 1024, integer=True)
        check_number("lr", self.lr, 1e-6, 0.1)
        check_number("diffusion_steps", self.diffusion_steps, 10, 1000, integer=True)
        check_number("channels", self.channels, 8, 128, integer=True)
        if self.image_size not in (14, 28):
            raise GenerationError("input.unknown_choice", name="image_size", value=self.image_size, choices="14, 28")
        check_number("p_uncond", self.p_uncond, 0.0, 1.0)
        check_number("max_seconds", self.max_seconds, 1, 36000)
        return self

    def unet(self) -> UNetConfig:
        return UNetConfig(channels=self.channels, diffusion_steps=self.diffusion_steps, image_size=self.image_size)


@dataclass
class FashionRun:
    config: dict
    rows: list[dict]
    seconds: float
    trained_steps: int
    status: str
    params: int
    model: TinyUNet


def train_fashion(
    cfg: FashionConfig,
    progress: ProgressFn = null_progress,
    on_row: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    images: tuple[np.ndarray, np.ndarray] | None = None,
) -> FashionRun:
    """Train the conditional UNet with label dropout; stops at cfg.steps or cfg.max_seconds."""
    cfg.check()
    torch.manual_seed(cfg.seed)
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, min(cfg.threads, 2)))
    try:
        x_all, y_all = images if images is not None else fashion_images("train")
        gen = torch.Generator().manual_seed(cfg.seed)
        sched = make_schedule(cfg.schedule, cfg.diffusion_steps)
        model = TinyUNet(cfg.unet())
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
        warm = min(100, cfg.steps)
        lr_at = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / cfg.steps)))
        )
        rows: list[dict] = []
        start, status, step, running = time.perf_counter(), "finished", 0, None
        for step in range(1, cfg.steps + 1):
            idx = torch.randint(0, len(y_all), (cfg.batch,), generator=gen).numpy()
            x0 = to_model(x_all[idx], cfg.image_size)
            labels = torch.from_numpy(y_all[idx].astype(np.int64))
            drop = torch.rand(cfg.batch, generator=gen) < cfg.p_uncond
            labels = torch.where(drop, torch.full_like(labels, model.null_label), labels)
            t = torch.randint(0, cfg.diffusion_steps, (cfg.batch,), generator=gen)
            noise = torch.randn(x0.shape, generator=gen)
            loss = ((model(q_sample(x0, t, noise, sched), t, labels) - noise) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            lr_at.step()
            value = loss.item()
            if not math.isfinite(value):
                raise GenerationError("mmgen.diverged", step=step, value=value)
            running = value if running is None else 0.95 * running + 0.05 * value
            elapsed = time.perf_counter() - start
            last = step == cfg.steps or elapsed > cfg.max_seconds  # the final step always gets its row
            if step % cfg.log_every == 0 or last:
                row = {"step": step, "loss": round(value, 5), "loss_smooth": round(running, 5)}
                row["seconds"] = round(elapsed, 2)
                rows.append(row)
                if on_row is not None:
                    on_row(row)
                progress(step / cfg.steps, f"step {step}/{cfg.steps}  loss {running:.4f}")
            if should_stop is not None and should_stop():
                err = Cancelled("training stopped")
                err.partial = rows  # type: ignore[attr-defined]
                raise err
            if elapsed > cfg.max_seconds:
                status = "time_limit"
                break
        model.eval()
        return FashionRun(
            asdict(cfg), rows, round(time.perf_counter() - start, 2), step, status, model.num_params(), model
        )
    finally:
        torch.set_num_threads(old)


def checkpoint_path() -> Path:
    return asset("multimodal", CHECKPOINT)


def save_checkpoint(run: FashionRun, path: Path | None = None) -> Path:
    """Weights in float16 (half the bytes; the samples do not change visibly) + the configs + the loss rows."""
    path = path or checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in run.model.state_dict().items()}
    body = {"unet": run.model.cfg.to_json(), "train": run.config, "state": state, "rows": run.rows}
    body.update({"seconds": run.seconds, "trained_steps": run.trained_steps, "status": run.status})
    torch.save(body, path)
    return path


@dataclass
class LoadedUNet:
    model: TinyUNet
    schedule: str
    train: dict
    rows: list[dict]
    info: dict = field(default_factory=dict)  # how the checkpoint was trained: seconds, trained_steps, status, ...


def load_fashion_unet(path: Path | None = None) -> LoadedUNet:
    """The shipped conditional UNet (float32 in memory); `mmgen.no_checkpoint` when it is not there."""
    path = path or checkpoint_path()
    if not Path(path).is_file():
        raise GenerationError(
            "mmgen.no_checkpoint",
            path=str(path),
            command="python -m engine diffusion --dataset fashion --save-precomputed",
        )
    body = torch.load(path, map_location="cpu", weights_only=True)
    model = TinyUNet(UNetConfig(**body["unet"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in body["state"].items()})
    model.eval()
    info = {k: body.get(k) for k in ("seconds", "trained_steps", "status")}
    info.update(params=model.num_params(), final_loss=(body.get("rows") or [{}])[-1].get("loss"))
    return LoadedUNet(model, body["train"]["schedule"], body["train"], body.get("rows", []), info)


def check_guidance(scale) -> float:
    return check_number("guidance", scale, 0.0, MAX_GUIDANCE)


@torch.no_grad()
def generate(
    loaded: LoadedUNet,
    labels: list[int],
    guidance: float = 3.0,
    seed: int = 0,
    keep: int = 8,
    sampling_steps: int | None = None,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Samples for `labels` at guidance scale s: {"images", "strip": [{"t", "images"}], "x0_strip", "seconds"}."""
    guidance = check_guidance(guidance)
    for label in labels:
        check_number("label", label, 0, loaded.model.cfg.classes - 1, integer=True)
    sched = make_schedule(loaded.schedule, loaded.model.cfg.diffusion_steps)
    gen = torch.Generator().manual_seed(seed)
    y = torch.tensor(labels, dtype=torch.long)
    start = time.perf_counter()
    traj = sample(
        guided_eps(loaded.model, y, loaded.model.null_label, guidance),
        (len(labels), 1, loaded.model.cfg.image_size, loaded.model.cfg.image_size),
        sched,
        gen,
        keep=keep,
        progress=progress,
        should_stop=should_stop,
    )
    return {
        "labels": labels,
        "guidance": guidance,
        "images": to_pixels(traj.final),
        "strip": [{"t": s, "images": to_pixels(x)} for s, x in zip(traj.steps, traj.snapshots, strict=True)],
        "x0_strip": [{"t": s, "images": to_pixels(x)} for s, x in zip(traj.steps, traj.predicted_x0, strict=True)],
        "seconds": round(time.perf_counter() - start, 2),
    }


def pixel_stats(images: list, labels: list[int] | None = None) -> dict:
    """Mean brightness and the per-pixel spread between samples of the same class, averaged over the classes
    (guidance makes the samples of one class alike: the spread falls)."""
    arr = np.asarray(images, dtype=np.float32) / 255.0
    labels = list(labels) if labels is not None else [0] * len(arr)
    groups = [arr[[i for i, y in enumerate(labels) if y == c]] for c in sorted(set(labels))]
    spread = [float(g.std(axis=0).mean()) for g in groups if len(g) > 1]
    return {"mean": round(float(arr.mean()), 4), "diversity": round(float(np.mean(spread)), 4) if spread else 0.0}


class SampleClassifier(torch.nn.Module):
    """A small CNN classifier used only to *measure* generated samples (which class does a sample look like?)."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, stride=2, padding=1),
            torch.nn.GELU(),
            torch.nn.Conv2d(32, 64, 3, stride=2, padding=1),
            torch.nn.GELU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(64, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, H, W) in [-1, 1] -> (B, 10)
        return self.net(x)


def train_sample_classifier(steps: int = 800, seed: int = 0, size: int = 28) -> tuple[SampleClassifier, float]:
    """The measuring classifier (on images of the UNet's size) and its accuracy on 2,000 Fashion-MNIST test images."""
    torch.manual_seed(seed)
    x_tr, y_tr = fashion_images("train")
    x_te, y_te = fashion_images("test")
    clf = SampleClassifier()
    opt = torch.optim.Adam(clf.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(y_tr), (64,), generator=gen).numpy()
        loss = torch.nn.functional.cross_entropy(
            clf(to_model(x_tr[idx], size)), torch.from_numpy(y_tr[idx].astype(np.int64))
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    clf.eval()
    with torch.no_grad():
        pred = clf(to_model(x_te[:2000], size)).argmax(1).numpy()
    return clf, float((pred == y_te[:2000]).mean())


def guidance_comparison(
    loaded: LoadedUNet,
    scales: tuple[float, ...] = (0.0, 1.0, 3.0, 6.0),
    per_class: int = 4,
    seed: int = 0,
    classifier: SampleClassifier | None = None,
    progress: ProgressFn = null_progress,
) -> list[dict]:
    """For each guidance scale: per_class samples of every class (same seed, so the same starting noise), their
    pixel diversity and, with a classifier, how often a sample is recognised as the class it was asked for."""
    labels = [c for c in range(loaded.model.cfg.classes) for _ in range(per_class)]
    out = []
    for i, s in enumerate(scales):
        res = generate(
            loaded,
            labels,
            s,
            seed=seed,
            keep=0,
            progress=lambda f, m, i=i: progress((i + f) / len(scales), f"s={scales[i]}: {m}"),
        )
        row = {"guidance": s, "labels": labels, "images": res["images"], "seconds": res["seconds"]}
        row.update(pixel_stats(res["images"], labels))
        if classifier is not None:
            with torch.no_grad():
                x = torch.tensor(res["images"], dtype=torch.float32)[:, None] / 127.5 - 1.0
                pred = classifier(x).argmax(1).tolist()
            row["class_accuracy"] = round(sum(p == y for p, y in zip(pred, labels, strict=True)) / len(labels), 4)
        out.append(row)
    return out
