"""A small UNet denoiser for 28×28 (or 14×14) images (book 14.3), conditioned on the step t and on a class label.

    x_t (B, 1, 28, 28) ─ conv ─ Res(32) ──────────────────────────── cat ─ Res(64→32) ─ conv ─ ε̂ (B, 1, 28, 28)
                                 └ down ─ Res(64) @14 ─────── cat ─ Res(128→64) ┘ up
                                           └ down ─ Res(64) @7 ─ Res(64) ┘ up

Every residual block adds emb(t) + emb(label) to its feature map (one vector per image, as a per-channel shift):
that is all the conditioning. The label table has one extra row, the "null" label (index `classes`), used for
classifier-free guidance: training replaces a label by the null label with probability p_uncond, so one network
learns both ε(x_t, t, c) and ε(x_t, t, ∅).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from engine.multimodal.ddpm import timestep_embedding


@dataclass(frozen=True)
class UNetConfig:
    channels: int = 32  # at full size; 2× at 1/2 and 1/4
    emb_dim: int = 128
    image_size: int = 28  # 28, or 14 (Fashion-MNIST averaged 2×2: a quarter of the compute per step)
    classes: int = 10  # + 1 null label
    diffusion_steps: int = 200
    groups: int = 8

    def to_json(self) -> dict:
        return asdict(self)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W), (B, E)
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]  # the condition: a per-channel shift
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)  # (B, C_out, H, W)


class TinyUNet(nn.Module):
    def __init__(self, cfg: UNetConfig = UNetConfig()):
        super().__init__()
        self.cfg = cfg
        c, e, g = cfg.channels, cfg.emb_dim, cfg.groups
        self.t_mlp = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        self.label_emb = nn.Embedding(cfg.classes + 1, e)  # the last row is the null label ∅
        self.conv_in = nn.Conv2d(1, c, 3, padding=1)
        self.down1 = ResBlock(c, c, e, g)  # 28×28
        self.pool1 = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)  # -> 14×14
        self.down2 = ResBlock(2 * c, 2 * c, e, g)
        self.pool2 = nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1)  # -> 7×7
        self.mid1 = ResBlock(2 * c, 2 * c, e, g)
        self.mid2 = ResBlock(2 * c, 2 * c, e, g)
        self.up2 = ResBlock(4 * c, 2 * c, e, g)  # 14×14, after the skip concat
        self.up1 = ResBlock(3 * c, c, e, g)  # 28×28
        self.norm_out = nn.GroupNorm(g, c)
        self.conv_out = nn.Conv2d(c, 1, 3, padding=1)

    @property
    def null_label(self) -> int:
        return self.cfg.classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # x (B, 1, 28, 28), t (B,) step indices, labels (B,) in 0..classes (classes = ∅)
        emb = self.t_mlp(timestep_embedding(t, self.cfg.emb_dim, self.cfg.diffusion_steps)) + self.label_emb(labels)
        h1 = self.down1(self.conv_in(x), emb)  # (B, c, 28, 28)
        h2 = self.down2(self.pool1(h1), emb)  # (B, 2c, 14, 14)
        m = self.mid2(self.mid1(self.pool2(h2), emb), emb)  # (B, 2c, 7, 7)
        u2 = self.up2(torch.cat([F.interpolate(m, size=h2.shape[-2:], mode="nearest"), h2], dim=1), emb)
        u1 = self.up1(torch.cat([F.interpolate(u2, size=h1.shape[-2:], mode="nearest"), h1], dim=1), emb)
        return self.conv_out(F.silu(self.norm_out(u1)))  # (B, 1, 28, 28) ε̂

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
