"""Mamba from scratch (16.4–16.5): a selective state space language model, numerically equal to transformers'.

The architecture, top to bottom (names follow transformers' `MambaForCausalLM`, so its state dict loads as is):

    MambaLM
      backbone: Mamba
        embeddings          token id -> vector                       (B, L) -> (B, L, d_model)
        layers[i]: ResidualBlock      x + mixer(RMSNorm(x))
          norm: RMSNorm
          mixer: MambaBlock           the selective SSM layer (below)
        norm_f: RMSNorm
      lm_head               tied to embeddings.weight               (B, L, d_model) -> (B, L, vocab)

    MambaBlock (the "mixer"), d_inner = expand * d_model:
      in_proj   d_model -> 2 d_inner, split into x (the SSM input) and z (the gate)
      conv1d    causal depthwise convolution over time (kernel d_conv): mixes each channel with the last few tokens
      SiLU
      x_proj    d_inner -> dt_rank + 2 d_state: the input-dependent (Δ low-rank, B, C) — this is the "selection"
      dt_proj   dt_rank -> d_inner, then softplus: Δ > 0 per channel
      selective scan  h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t ;  y_t = C_t · h_t + D x_t
      gate      y * SiLU(z)
      out_proj  d_inner -> d_model

Two ways to run the same model:
- `forward(input_ids)`: the whole sequence at once (training, prefill), with `scan="parallel"` (associative scan)
  or `"sequential"` (a loop over time); both give the same numbers.
- `step(token_ids, state)`: one token, with a constant-size state per layer (the last d_conv-1 conv inputs and the
  SSM state h). Unlike a transformer's KV cache it does not grow with the length: generation costs the same per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.ssm.errors import SSMError, check_length
from engine.ssm.selective_scan import selective_scan

__all__ = [
    "PRETRAINED",
    "Mamba",
    "MambaBlock",
    "MambaLM",
    "MambaSpec",
    "MambaState",
    "RMSNorm",
    "ResidualBlock",
    "from_transformers",
    "load_pretrained",
    "map_state_dict",
    "to_transformers",
]

PRETRAINED = "state-spaces/mamba-130m-hf"  # the real checkpoint (130M parameters), loaded via transformers when online
SCANS = ("parallel", "sequential")
MAX_SEQ_LEN = 8192


@dataclass
class MambaSpec:
    """A Mamba configuration (transformers' MambaConfig names in comments)."""

    vocab_size: int  # vocab_size
    d_model: int = 64  # hidden_size
    n_layer: int = 2  # num_hidden_layers
    d_state: int = 16  # state_size (N)
    expand: int = 2  # expand: d_inner = expand * d_model
    d_conv: int = 4  # conv_kernel
    dt_rank: int | None = None  # time_step_rank; None -> ceil(d_model / 16) ("auto")
    layer_norm_eps: float = 1e-5  # layer_norm_epsilon
    pad_vocab_size_multiple: int = 1  # round the embedding rows up (mamba-minimal's option); logits keep vocab_size
    conv_bias: bool = True  # use_conv_bias
    bias: bool = False  # use_bias (in_proj, out_proj)
    residual_in_fp32: bool = True  # keep the residual stream in (at least) float32
    # initialization of Δ (dt_proj.bias = softplus^-1 of a log-uniform value in [dt_min, dt_max])
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    # Reproduce transformers' float32 casts exactly (RMSNorm, residual, A/D/Δ-bias, B and x inside the scan are
    # computed in float32 even when the model runs in float64). Only matters for float64: see `check.py`.
    hf_casts: bool = False

    def __post_init__(self) -> None:
        for name, low, high in (
            ("vocab_size", 2, 1_000_000),
            ("d_model", 1, 8192),
            ("n_layer", 1, 128),
            ("d_state", 1, 1024),
            ("expand", 1, 16),
            ("d_conv", 1, 64),
            ("pad_vocab_size_multiple", 1, 4096),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise SSMError("ssm.bad_dimension", name=name, value=value, low=low, high=high)
        if self.dt_rank is not None and not 1 <= int(self.dt_rank) <= 8192:
            raise SSMError("ssm.bad_dimension", name="dt_rank", value=self.dt_rank, low=1, high=8192)
        if not (math.isfinite(self.layer_norm_eps) and self.layer_norm_eps > 0):
            raise SSMError("ssm.not_finite", name="layer_norm_eps")

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def rank(self) -> int:
        """The low rank of Δ's projection: dt_rank, or ceil(d_model / 16) as in the paper's code."""
        return int(self.dt_rank) if self.dt_rank is not None else math.ceil(self.d_model / 16)

    @property
    def padded_vocab(self) -> int:
        m = self.pad_vocab_size_multiple
        return (self.vocab_size + m - 1) // m * m

    def to_hf_config(self):
        """The same shape as a transformers `MambaConfig` (import only when asked: transformers is heavy)."""
        from transformers import MambaConfig

        return MambaConfig(
            vocab_size=self.padded_vocab,
            hidden_size=self.d_model,
            state_size=self.d_state,
            num_hidden_layers=self.n_layer,
            layer_norm_epsilon=self.layer_norm_eps,
            expand=self.expand,
            conv_kernel=self.d_conv,
            use_bias=self.bias,
            use_conv_bias=self.conv_bias,
            residual_in_fp32=self.residual_in_fp32,
            time_step_rank=self.rank,
            time_step_min=self.dt_min,
            time_step_max=self.dt_max,
            time_step_floor=self.dt_init_floor,
            tie_word_embeddings=True,
            use_cache=False,
        )

    @classmethod
    def from_hf_config(cls, config, hf_casts: bool = False) -> MambaSpec:
        return cls(
            vocab_size=int(config.vocab_size),
            d_model=int(config.hidden_size),
            n_layer=int(config.num_hidden_layers),
            d_state=int(config.state_size),
            expand=int(config.expand),
            d_conv=int(config.conv_kernel),
            dt_rank=int(config.time_step_rank),
            layer_norm_eps=float(config.layer_norm_epsilon),
            conv_bias=bool(config.use_conv_bias),
            bias=bool(config.use_bias),
            residual_in_fp32=bool(config.residual_in_fp32),
            hf_casts=hf_casts,
        )


def _stat_dtype(dtype: torch.dtype, hf_casts: bool) -> torch.dtype:
    """The dtype to compute statistics in: at least float32 (half precision loses too much), exactly float32 when
    copying transformers (which also rounds float64 down to float32 there)."""
    if hf_casts:
        return torch.float32
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) * weight: LayerNorm without centring or bias (cheaper, works as well)."""

    def __init__(self, d: int, eps: float = 1e-5, hf_casts: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps
        self.hf_casts = hf_casts

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., D) -> (..., D)
        dtype = x.dtype
        h = x.to(_stat_dtype(dtype, self.hf_casts))
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


@dataclass
class MambaState:
    """The whole memory of a Mamba model during generation: per layer, a fixed size whatever the length so far.

    conv[i]: (B, d_inner, d_conv - 1) the last inputs the causal convolution still needs
    ssm[i]:  (B, d_inner, d_state)    the SSM state h
    """

    conv: list[torch.Tensor]
    ssm: list[torch.Tensor]

    def nbytes(self) -> int:
        """Bytes held: the number to compare with a transformer's KV cache (which grows with every token)."""
        return sum(t.numel() * t.element_size() for t in (*self.conv, *self.ssm))


class MambaBlock(nn.Module):
    """The Mamba mixer: gated, convolved, selective SSM over the sequence (transformers' `MambaMixer`)."""

    def __init__(self, spec: MambaSpec) -> None:
        super().__init__()
        self.spec = spec
        d, n, r = spec.d_inner, spec.d_state, spec.rank
        self.in_proj = nn.Linear(spec.d_model, 2 * d, bias=spec.bias)
        # groups=d: one small filter per channel ("depthwise"); padding d_conv-1 then cutting the tail keeps it causal
        self.conv1d = nn.Conv1d(d, d, kernel_size=spec.d_conv, groups=d, padding=spec.d_conv - 1, bias=spec.conv_bias)
        self.x_proj = nn.Linear(d, r + 2 * n, bias=False)  # the selection: Δ (low rank), B, C from the token
        self.dt_proj = nn.Linear(r, d, bias=True)
        # A is stored as log(-A) so that A = -exp(A_log) stays negative (a stable, decaying memory) during training.
        # S4D-real init: A_n = -(n+1), the same for every channel.
        a = torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1)  # (d_inner, N)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(d))  # the skip connection y += D x
        self.out_proj = nn.Linear(d, spec.d_model, bias=spec.bias)
        self._init_dt()

    @torch.no_grad()
    def _init_dt(self) -> None:
        """Δ starts log-uniform in [dt_min, dt_max]: a mix of short and long memories across channels."""
        s = self.spec
        std = s.rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(s.d_inner) * (math.log(s.dt_max) - math.log(s.dt_min)) + math.log(s.dt_min))
        dt = dt.clamp(min=s.dt_init_floor)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt), so softplus(bias) = dt

    def _selection(self, x: torch.Tensor):
        """From the (convolved) input: Δ (B, L, D) > 0, B (B, L, N), C (B, L, N), and A (D, N) < 0."""
        s = self.spec
        dt_low, Bm, Cm = self.x_proj(x).split([s.rank, s.d_state, s.d_state], dim=-1)
        if s.hf_casts:  # transformers adds the bias as float32 and uses A in float32
            delta = F.softplus(F.linear(dt_low, self.dt_proj.weight) + self.dt_proj.bias.float())
            A = -torch.exp(self.A_log.float())
        else:
            delta = F.softplus(self.dt_proj(dt_low))  # softplus: Δ must be positive (a step forward in time)
            A = -torch.exp(self.A_log)
        return delta, A, Bm, Cm

    def forward(self, hidden: torch.Tensor, scan: str = "parallel", return_state: bool = False):
        """(B, L, d_model) -> (B, L, d_model); with `return_state`, also this layer's (conv, ssm) state after L."""
        length = hidden.shape[1]
        xz = self.in_proj(hidden)  # (B, L, 2 d_inner)
        x, z = xz.chunk(2, dim=-1)  # (B, L, d_inner) each: the SSM input and the gate
        x_raw = x
        # Conv1d wants (B, channels, L). After padding d_conv-1 on both ends, the first L outputs only see the past.
        x = self.conv1d(x.transpose(1, 2))[..., :length].transpose(1, 2)  # (B, L, d_inner)
        x = F.silu(x)
        delta, A, Bm, Cm = self._selection(x)
        if self.spec.hf_casts:
            # transformers feeds B and x to the scan as float32, but adds D x with x in the model dtype
            out = selective_scan(x.float(), delta, A, Bm.float(), Cm, None, None, mode=scan, return_state=return_state)
            y, h = out if return_state else (out, None)
            y = (y + x * self.D.float()) * F.silu(z)
        else:
            out = selective_scan(x, delta, A, Bm, Cm, self.D, z, mode=scan, return_state=return_state)
            y, h = out if return_state else (out, None)
        out = self.out_proj(y.to(hidden.dtype))  # (B, L, d_model)
        if not return_state:
            return out
        k = self.spec.d_conv - 1
        conv = x_raw.transpose(1, 2)[..., max(0, length - k) :]  # (B, d_inner, <=k): the last raw inputs
        if conv.shape[-1] < k:  # a prompt shorter than the kernel: the missing past is zeros (as the padding was)
            conv = F.pad(conv, (k - conv.shape[-1], 0))
        return out, (conv, h)

    def init_state(self, batch: int, dtype: torch.dtype, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.spec
        conv = torch.zeros(batch, s.d_inner, s.d_conv - 1, dtype=dtype, device=device)
        ssm = torch.zeros(batch, s.d_inner, s.d_state, dtype=dtype, device=device)
        return conv, ssm

    def step(self, hidden: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor):
        """One token: (B, d_model) and the layer state -> (B, d_model) and the new state. O(1) in the length."""
        xz = self.in_proj(hidden)  # (B, 2 d_inner)
        x, z = xz.chunk(2, dim=-1)  # (B, d_inner)
        window = torch.cat([conv_state, x.unsqueeze(-1)], dim=-1)  # (B, d_inner, d_conv): oldest ... newest
        xc = (window * self.conv1d.weight.squeeze(1)).sum(-1)  # the convolution at this one position
        if self.conv1d.bias is not None:
            xc = xc + self.conv1d.bias
        xc = F.silu(xc)  # (B, d_inner)
        delta, A, Bm, Cm = self._selection(xc)  # (B, d_inner), (d_inner, N), (B, N), (B, N)
        if self.spec.hf_casts:  # the same float32 roundings as in `forward`
            Bm, x_in, Dk = Bm.float(), xc.float(), self.D.float()
        else:
            x_in, Dk = xc, self.D
        dA = torch.exp(delta.unsqueeze(-1) * A)  # (B, d_inner, N): how much of each state survives this step
        ssm_state = dA * ssm_state + delta.unsqueeze(-1) * Bm.unsqueeze(1) * x_in.unsqueeze(-1)  # write the token
        y = (ssm_state * Cm.unsqueeze(1)).sum(-1) + Dk * xc  # (B, d_inner): read out C · h, plus the skip D x
        y = y * F.silu(z)
        return self.out_proj(y), window[..., 1:], ssm_state


class ResidualBlock(nn.Module):
    """x + mixer(RMSNorm(x)) (transformers calls this `MambaBlock` and the SSM layer `MambaMixer`)."""

    def __init__(self, spec: MambaSpec) -> None:
        super().__init__()
        self.spec = spec
        self.norm = RMSNorm(spec.d_model, spec.layer_norm_eps, spec.hf_casts)
        self.mixer = MambaBlock(spec)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.residual_in_fp32 and (self.spec.hf_casts or x.dtype in (torch.float16, torch.bfloat16)):
            return x.to(torch.float32)  # the sum of many layers loses digits in half precision
        return x

    def forward(self, x: torch.Tensor, scan: str = "parallel", return_state: bool = False):
        h = self.norm(x.to(self.norm.weight.dtype))
        out = self.mixer(h, scan=scan, return_state=return_state)
        if return_state:
            out, state = out
            return self._residual(x) + out, state
        return self._residual(x) + out  # (B, L, d_model)

    def step(self, x: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor):
        out, conv_state, ssm_state = self.mixer.step(self.norm(x), conv_state, ssm_state)
        return self._residual(x) + out, conv_state, ssm_state


class Mamba(nn.Module):
    """The backbone: embeddings, n_layer residual Mamba blocks, a final RMSNorm (transformers' `MambaModel`)."""

    def __init__(self, spec: MambaSpec) -> None:
        super().__init__()
        self.spec = spec
        self.embeddings = nn.Embedding(spec.padded_vocab, spec.d_model)
        self.layers = nn.ModuleList([ResidualBlock(spec) for _ in range(spec.n_layer)])
        self.norm_f = RMSNorm(spec.d_model, spec.layer_norm_eps, spec.hf_casts)

    def forward(self, input_ids: torch.Tensor, scan: str = "parallel", return_state: bool = False):
        h = self.embeddings(input_ids)  # (B, L, d_model)
        states = []
        for layer in self.layers:
            if return_state:
                h, st = layer(h, scan=scan, return_state=True)
                states.append(st)
            else:
                h = layer(h, scan=scan)
        h = self.norm_f(h)  # (B, L, d_model)
        if return_state:
            return h, MambaState(conv=[c for c, _ in states], ssm=[s for _, s in states])
        return h


class MambaLM(nn.Module):
    """A Mamba language model: backbone + lm_head tied to the embeddings (transformers' `MambaForCausalLM`)."""

    def __init__(self, spec: MambaSpec, scan: str = "parallel") -> None:
        super().__init__()
        if scan not in SCANS:
            raise SSMError("input.unknown_choice", name="scan", value=scan, choices=", ".join(SCANS))
        self.spec = spec
        self.scan = scan
        self.backbone = Mamba(spec)
        self.lm_head = nn.Linear(spec.d_model, spec.padded_vocab, bias=False)
        self.lm_head.weight = self.backbone.embeddings.weight  # tied: one matrix for reading and writing tokens
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """As transformers: N(0, 0.02) embeddings, zero linear biases (Δ's bias keeps its special init)."""
        nn.init.normal_(self.backbone.embeddings.weight, std=0.02)
        for layer in self.backbone.layers:
            m = layer.mixer
            for lin in (m.in_proj, m.x_proj, m.out_proj):
                nn.init.normal_(lin.weight, std=0.02)
                if lin.bias is not None:
                    nn.init.zeros_(lin.bias)

    def _check_ids(self, input_ids: torch.Tensor) -> None:
        if input_ids.dim() != 2:
            raise SSMError("ssm.bad_shape", name="input_ids", expected="(batch, length)", value=tuple(input_ids.shape))
        check_length(input_ids.shape[1], MAX_SEQ_LEN)
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= self.spec.vocab_size):
            bad = int(input_ids.max()) if int(input_ids.max()) >= self.spec.vocab_size else int(input_ids.min())
            raise SSMError("ssm.bad_token", value=bad, vocab=self.spec.vocab_size)

    def forward(self, input_ids: torch.Tensor, scan: str | None = None) -> torch.Tensor:
        """(B, L) token ids -> (B, L, vocab_size) logits for the next token at every position."""
        scan = scan or self.scan
        if scan not in SCANS:
            raise SSMError("input.unknown_choice", name="scan", value=scan, choices=", ".join(SCANS))
        self._check_ids(input_ids)
        h = self.backbone(input_ids, scan=scan)  # (B, L, d_model)
        return self.lm_head(h)[..., : self.spec.vocab_size]  # (B, L, V): drop the padding rows

    # ---- generation with a constant-size state ---------------------------------------------------------------

    def init_state(self, batch: int = 1) -> MambaState:
        p = self.backbone.embeddings.weight
        pairs = [layer.mixer.init_state(batch, p.dtype, p.device) for layer in self.backbone.layers]
        return MambaState(conv=[c for c, _ in pairs], ssm=[s for _, s in pairs])

    def prefill(self, input_ids: torch.Tensor, scan: str | None = None) -> tuple[torch.Tensor, MambaState]:
        """The prompt in one parallel pass: logits (B, L, V) and the state to continue from with `step`."""
        self._check_ids(input_ids)
        h, state = self.backbone(input_ids, scan=scan or self.scan, return_state=True)
        return self.lm_head(h)[..., : self.spec.vocab_size], state

    def step(self, token_ids: torch.Tensor, state: MambaState) -> tuple[torch.Tensor, MambaState]:
        """One token per sequence (B,) -> next-token logits (B, V) and the new state (same size as before)."""
        if token_ids.dim() != 1:
            raise SSMError("ssm.bad_shape", name="token_ids", expected="(batch,)", value=tuple(token_ids.shape))
        self._check_ids(token_ids.unsqueeze(1))
        h = self.backbone.embeddings(token_ids)  # (B, d_model)
        convs, ssms = [], []
        for layer, conv, ssm in zip(self.backbone.layers, state.conv, state.ssm, strict=True):
            h, conv, ssm = layer.step(h, conv, ssm)
            convs.append(conv)
            ssms.append(ssm)
        h = self.backbone.norm_f(h)
        return self.lm_head(h)[..., : self.spec.vocab_size], MambaState(conv=convs, ssm=ssms)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int = 16) -> torch.Tensor:
        """Greedy continuation: prefill the prompt, then `step` one token at a time. (B, L) -> (B, L + new)."""
        if not 0 <= max_new_tokens <= 4096:
            raise SSMError("ssm.bad_dimension", name="max_new_tokens", value=max_new_tokens, low=0, high=4096)
        logits, state = self.prefill(input_ids)
        out = [input_ids]
        nxt = logits[:, -1].argmax(-1)  # (B,)
        for _ in range(max_new_tokens):
            out.append(nxt.unsqueeze(1))
            logits_t, state = self.step(nxt, state)
            nxt = logits_t.argmax(-1)
        return torch.cat(out, dim=1)

    # ---- weights from other implementations ------------------------------------------------------------------

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Accepts our keys, transformers' keys (the same), and mamba_ssm / mamba-minimal's (`embedding.`)."""
        return super().load_state_dict(map_state_dict(state_dict), strict=strict, assign=assign)


def map_state_dict(state_dict) -> dict:
    """Translate a Mamba state dict to our names: `backbone.embedding.` -> `backbone.embeddings.`; the tied
    `lm_head.weight` is filled from the embeddings when missing."""
    out = {}
    for key, value in state_dict.items():
        out[key.replace("backbone.embedding.", "backbone.embeddings.")] = value
    if "lm_head.weight" not in out and "backbone.embeddings.weight" in out:
        out["lm_head.weight"] = out["backbone.embeddings.weight"]
    return out


def from_transformers(hf_model, hf_casts: bool = False, scan: str = "parallel") -> MambaLM:
    """Our MambaLM with exactly the weights (and dtype) of a transformers `MambaForCausalLM` or `MambaModel`."""
    spec = MambaSpec.from_hf_config(hf_model.config, hf_casts=hf_casts)
    model = MambaLM(spec, scan=scan)
    sd = hf_model.state_dict()
    if not any(k.startswith("backbone.") for k in sd):  # a bare MambaModel: its keys lack the prefix
        sd = {f"backbone.{k}": v for k, v in sd.items()}
    dtype = next(iter(sd.values())).dtype
    model.to(dtype)
    model.load_state_dict(sd)
    return model


def to_transformers(model: MambaLM):
    """A transformers `MambaForCausalLM` with our weights (the reverse of `from_transformers`)."""
    from transformers import MambaForCausalLM

    hf = MambaForCausalLM(model.spec.to_hf_config())
    hf.to(model.backbone.embeddings.weight.dtype)
    hf.load_state_dict(model.state_dict(), strict=False)
    return hf.eval()


def load_pretrained(name: str = PRETRAINED, hf_casts: bool = False, local_files_only: bool | None = None) -> MambaLM:
    """A real checkpoint (default state-spaces/mamba-130m-hf, or a local folder) through transformers, as a MambaLM.

    Offline (the lab's default unless LLMLAB_ONLINE=1: only the local cache or a local folder is used, no hub
    requests and no retries) or with nothing to load, it raises `ssm.pretrained_unavailable` carrying the hub's
    exact error.
    """
    if local_files_only is None:
        from engine.core.config import get_settings

        local_files_only = get_settings().offline
    try:
        from transformers import MambaForCausalLM

        hf = MambaForCausalLM.from_pretrained(name, local_files_only=local_files_only)
    except Exception as exc:  # the hub's error (offline, not found, corrupt) is kept word for word
        from engine.models import ModelUnavailable

        raise ModelUnavailable("ssm.pretrained_unavailable", name=name, detail=f"{type(exc).__name__}: {exc}") from exc
    return from_transformers(hf, hf_casts=hf_casts)
