"""The book's section 16.5 code: three cells of mamba-minimal, printed without imports and with four defects.

The book copies `selective_scan`, `ssm` and `MambaBlock.forward` (plus the S4D-real initialization of A from
`MambaBlock.__init__`) from johnma2006/mamba-minimal's `model.py` (commit 03de542). Our repository does not hold the
book's text, so `BOOK_CODE` is a reconstruction: mamba-minimal's code (read from the public repository) with the four
defects the issue describes put back in:

1. a dedented `return y` after `selective_scan`: `'return' outside function` (SyntaxError, nothing runs at all)
2. an einsum pattern string broken across a line: an unterminated string literal (SyntaxError)
3. `(b, l, d_model) = u.shape` after a renaming, but `d_in` still used below: NameError at run time
4. `repeat(arange, 'd_state -> d_model d_state', d=d_inner)`: the new axis is called `d_model` in the pattern but
   its size is given as `d=`: einops refuses the pattern (EinopsError) at run time

`run_book_code()` runs each defect alone (the other three fixed), records the exception Python or einops actually
raises, then runs the fixed code on the weights of our `MambaLM` and checks it gives the same numbers.

einops: mamba-minimal needs it (`from einops import rearrange, repeat, einsum`). When it is not installed, the fixed
code runs in a torch-only transcription (`FIXED_CODE_TORCH`: transpose/expand/torch.einsum, same math) and defect 4
(an einops error by nature) is reported as not demonstrable; defect 3 is shown on the torch transcription.
"""

from __future__ import annotations

import importlib.util
import traceback
import types
from dataclasses import dataclass, field

import torch

__all__ = ["BOOK_CODE", "DEFECTS", "FIXED_CODE", "FIXED_CODE_TORCH", "BookRun", "DefectRun", "run_book_code"]

IMPORTS = "import torch\nimport torch.nn.functional as F\nfrom einops import rearrange, repeat, einsum\n"
IMPORTS_TORCH = "import torch\nimport torch.nn.functional as F\n"

# ---- the fixed code: mamba-minimal as it is (cells in the book's order) -----------------------------------------

_CELL_SCAN = """
def selective_scan(self, u, delta, A, B, C, D):
    (b, l, d_in) = u.shape
    n = A.shape[1]

    # Discretize continuous parameters (A, B)
    # - A is discretized using zero-order hold (ZOH) discretization
    # - B is discretized using a simplified Euler discretization instead of ZOH
    deltaA = torch.exp(einsum(delta, A, 'b l d_in, d_in n -> b l d_in n'))
    deltaB_u = einsum(delta, B, u, 'b l d_in, b l n, b l d_in -> b l d_in n')

    # Perform selective scan (sequential)
    x = torch.zeros((b, d_in, n), device=deltaA.device)
    ys = []
    for i in range(l):
        x = deltaA[:, i] * x + deltaB_u[:, i]
        y = einsum(x, C[:, i, :], 'b d_in n, b n -> b d_in')
        ys.append(y)
    y = torch.stack(ys, dim=1)  # shape (b, l, d_in)

    y = y + u * D

    return y
"""

_CELL_SSM = """
def ssm(self, x):
    (d_in, n) = self.A_log.shape

    # Compute ∆ A B C D, the state space parameters.
    A = -torch.exp(self.A_log.float())  # shape (d_in, n)
    D = self.D.float()

    x_dbl = self.x_proj(x)  # (b, l, dt_rank + 2*n)

    (delta, B, C) = x_dbl.split(split_size=[self.args.dt_rank, n, n], dim=-1)
    delta = F.softplus(self.dt_proj(delta))  # (b, l, d_in)

    y = self.selective_scan(x, delta, A, B, C, D)

    return y
"""

_CELL_BLOCK = """
def make_A_log(d_state, d_inner):
    A = repeat(torch.arange(1, d_state + 1), 'n -> d n', d=d_inner)
    return torch.log(A)


def forward(self, x):
    (b, l, d) = x.shape

    x_and_res = self.in_proj(x)  # shape (b, l, 2 * d_in)
    (x, res) = x_and_res.split(split_size=[self.args.d_inner, self.args.d_inner], dim=-1)

    x = rearrange(x, 'b l d_in -> b d_in l')
    x = self.conv1d(x)[:, :, :l]
    x = rearrange(x, 'b d_in l -> b l d_in')

    x = F.silu(x)

    y = self.ssm(x)

    y = y * F.silu(res)

    output = self.out_proj(y)

    return output
"""

FIXED_CODE = _CELL_SCAN + _CELL_SSM + _CELL_BLOCK

# ---- the four defects: (name, fixed text, defective text) --------------------------------------------------------

DEFECTS: dict[int, tuple[str, str, str]] = {
    1: (
        "dedented return",
        "    y = y + u * D\n\n    return y\n",
        "    y = y + u * D\n\nreturn y\n",
    ),
    2: (
        "einsum pattern broken across a line",
        "    deltaB_u = einsum(delta, B, u, 'b l d_in, b l n, b l d_in -> b l d_in n')\n",
        "    deltaB_u = einsum(delta, B, u, 'b l d_in, b l n,\n b l d_in -> b l d_in n')\n",
    ),
    3: (
        "d_in undefined after renaming",
        "    (b, l, d_in) = u.shape\n",
        "    (b, l, d_model) = u.shape\n",
    ),
    4: (
        "repeat axis names do not match",
        "    A = repeat(torch.arange(1, d_state + 1), 'n -> d n', d=d_inner)\n",
        "    A = repeat(torch.arange(1, d_state + 1), 'd_state -> d_model d_state', d=d_inner)\n",
    ),
}


def _with_defects(code: str, defects: tuple[int, ...]) -> str:
    for k in defects:
        _, good, bad = DEFECTS[k]
        assert good in code, f"defect {k}: its fixed text is not in the code"
        code = code.replace(good, bad, 1)
    return code


BOOK_CODE = _with_defects(FIXED_CODE, (1, 2, 3, 4))  # as printed: no imports, all four defects

# ---- the same fixed code without einops (only when einops is not installed) -------------------------------------

FIXED_CODE_TORCH = (
    FIXED_CODE.replace("einsum(delta, A, 'b l d_in, d_in n -> b l d_in n')", "torch.einsum('bld,dn->bldn', delta, A)")
    .replace(
        "einsum(delta, B, u, 'b l d_in, b l n, b l d_in -> b l d_in n')",
        "torch.einsum('bld,bln,bld->bldn', delta, B, u)",
    )
    .replace("einsum(x, C[:, i, :], 'b d_in n, b n -> b d_in')", "torch.einsum('bdn,bn->bd', x, C[:, i, :])")
    .replace(
        "repeat(torch.arange(1, d_state + 1), 'n -> d n', d=d_inner)",
        "torch.arange(1, d_state + 1).repeat(d_inner, 1)",
    )
    .replace("rearrange(x, 'b l d_in -> b d_in l')", "x.transpose(1, 2)")
    .replace("rearrange(x, 'b d_in l -> b l d_in')", "x.transpose(1, 2)")
)


def einops_available() -> bool:
    return importlib.util.find_spec("einops") is not None


@dataclass
class DefectRun:
    """One defect alone (the other three fixed): where it fails and the exception actually raised."""

    defect: int
    name: str
    stage: str  # "compile" (SyntaxError before anything runs), "run", or "not run"
    error_type: str | None
    error: str | None
    line: int | None = None  # the line in the code that was run (the printed code, or the variant with this defect)
    note: str | None = None


@dataclass
class BookRun:
    """The book's code as printed, each defect alone, and the fixed code checked against our MambaLM."""

    einops_available: bool
    as_printed: DefectRun
    defects: list[DefectRun]
    fixed_variant: str  # "einops" (mamba-minimal as is) or "torch" (the transcription)
    fixed_vs_ours_max_diff: float  # MambaBlock output, every layer
    fixed_lm_vs_ours_max_diff: float  # the whole LM's logits with the book's mixer
    a_log_max_diff: float  # the book's S4D-real init vs our A_log init
    dtype: str
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "einops_available": self.einops_available,
            "as_printed": self.as_printed.__dict__,
            "defects": [d.__dict__ for d in self.defects],
            "fixed_variant": self.fixed_variant,
            "fixed_vs_ours_max_diff": self.fixed_vs_ours_max_diff,
            "fixed_lm_vs_ours_max_diff": self.fixed_lm_vs_ours_max_diff,
            "a_log_max_diff": self.a_log_max_diff,
            "dtype": self.dtype,
        }


def _load(code: str, namespace_extra: dict | None = None) -> dict:
    """compile + exec the cells into a fresh namespace (the code defines functions; nothing else runs)."""
    ns: dict = dict(namespace_extra or {})
    exec(compile(code, "<book 16.5>", "exec"), ns)  # our own fixed strings, never user input
    return ns


def _adapter(ns: dict, mixer) -> types.SimpleNamespace:
    """An object that looks like mamba-minimal's `self` (args, the layers, bound `ssm`/`selective_scan`) built on
    our MambaBlock's weights, so the book's functions run on exactly our parameters."""
    spec = mixer.spec
    obj = types.SimpleNamespace(
        args=types.SimpleNamespace(d_inner=spec.d_inner, dt_rank=spec.rank, d_state=spec.d_state),
        in_proj=mixer.in_proj,
        conv1d=mixer.conv1d,
        x_proj=mixer.x_proj,
        dt_proj=mixer.dt_proj,
        out_proj=mixer.out_proj,
        A_log=mixer.A_log,
        D=mixer.D,
    )
    obj.selective_scan = types.MethodType(ns["selective_scan"], obj)
    obj.ssm = types.MethodType(ns["ssm"], obj)
    return obj


def _exercise(ns: dict, model, x: torch.Tensor) -> torch.Tensor:
    """Call every cell: the A init, then the block forward (which calls ssm and selective_scan)."""
    spec = model.spec
    ns["make_A_log"](spec.d_state, spec.d_inner)
    return ns["forward"](_adapter(ns, model.backbone.layers[0].mixer), x)


def _error(exc: BaseException) -> tuple[str, str, int | None]:
    if isinstance(exc, SyntaxError):  # exc.msg: the message without Python's "(file, line N)" suffix
        return type(exc).__name__, exc.msg, exc.lineno
    line = getattr(exc, "lineno", None)
    if line is None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<book 16.5>"]
        line = frames[-1].lineno if frames else None
    return type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "", line


def _run_variant(code: str, imports: str, model, x: torch.Tensor, defect: int, name: str) -> DefectRun:
    try:  # the cells alone first, so a SyntaxError's line numbers are the printed code's
        compile(code, "<book 16.5>", "exec")
    except SyntaxError as exc:
        etype, msg, line = _error(exc)
        return DefectRun(defect, name, "compile", etype, msg, line)
    compiled = compile(imports + code, "<book 16.5>", "exec")
    ns: dict = {}
    try:
        exec(compiled, ns)  # our own fixed strings
        _exercise(ns, model, x)
    except Exception as exc:  # the point: record what the defective code really raises
        etype, msg, line = _error(exc)
        return DefectRun(defect, name, "run", etype, msg, None if line is None else line - imports.count("\n"))
    return DefectRun(defect, name, "run", None, None, None, note="ran without an error")


def run_book_code(model=None, dtype: torch.dtype = torch.float64, seed: int = 0) -> BookRun:
    """Run the book's code: as printed, each defect alone, and fixed (checked equal to our MambaLM)."""
    from engine.ssm.mamba import MambaLM, MambaSpec

    has_einops = einops_available()
    if model is None:
        torch.manual_seed(seed)
        model = MambaLM(MambaSpec(vocab_size=64, d_model=16, n_layer=2, d_state=8, dt_min=0.1, dt_max=1.0))
    model = model.to(dtype).eval()
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(2, 12, model.spec.d_model, generator=g, dtype=dtype)  # (B, L, d_model)

    # as printed: no imports and all four defects; Python stops at the first SyntaxError
    as_printed = _run_variant(BOOK_CODE, "", model, x, 0, "as printed (no imports, four defects)")

    runs = []
    for k, (name, _, _) in DEFECTS.items():
        if has_einops:
            runs.append(_run_variant(_with_defects(FIXED_CODE, (k,)), IMPORTS, model, x, k, name))
        elif k in (1, 2, 3):
            # 1 and 2 fail at compile time, before einops would be imported; 3 is a plain NameError: the torch
            # transcription shows it just the same
            base = FIXED_CODE if k in (1, 2) else FIXED_CODE_TORCH
            run = _run_variant(_with_defects(base, (k,)), IMPORTS if k in (1, 2) else IMPORTS_TORCH, model, x, k, name)
            if k == 3:
                run.note = "shown on the torch transcription (einops is not installed)"
            runs.append(run)
        else:
            runs.append(
                DefectRun(k, name, "not run", None, None, None, note="an einops error: einops is not installed here")
            )

    # fixed: run on our weights, compare every layer's mixer and the whole LM
    code, imports = (FIXED_CODE, IMPORTS) if has_einops else (FIXED_CODE_TORCH, IMPORTS_TORCH)
    ns = _load(imports + code)
    layer_diff = 0.0
    with torch.no_grad():
        for layer in model.backbone.layers:
            ours = layer.mixer(x, scan="sequential")
            book = ns["forward"](_adapter(ns, layer.mixer), x)
            layer_diff = max(layer_diff, float((ours - book).abs().max()))
        ids = torch.randint(0, model.spec.vocab_size, (2, 12), generator=g)
        h = model.backbone.embeddings(ids)
        for layer in model.backbone.layers:  # mamba-minimal's ResidualBlock: mixer(norm(x)) + x
            h = ns["forward"](_adapter(ns, layer.mixer), layer.norm(h)) + h
        logits_book = model.lm_head(model.backbone.norm_f(h))[..., : model.spec.vocab_size]
        lm_diff = float((model(ids) - logits_book).abs().max())
        a_log = ns["make_A_log"](model.spec.d_state, model.spec.d_inner)
        a_diff = float((a_log.to(dtype) - model.backbone.layers[0].mixer.A_log.detach()).abs().max())
    return BookRun(
        einops_available=has_einops,
        as_printed=as_printed,
        defects=runs,
        fixed_variant="einops" if has_einops else "torch",
        fixed_vs_ours_max_diff=layer_diff,
        fixed_lm_vs_ours_max_diff=lm_diff,
        a_log_max_diff=a_diff,
        dtype=str(dtype).removeprefix("torch."),
    )
