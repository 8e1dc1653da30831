"""Hugging Face safetensors -> GGUF -> 4-bit, with llama.cpp's own tools.

1. **Convert**: llama.cpp's `convert_hf_to_gguf.py` (with its `conversion/` package and its own `gguf-py`) maps each
   tensor name and layout to GGUF's and writes the tokenizer and chat template into the file's metadata. The pip
   wheel of llama-cpp-python does not ship the script; its *source distribution* does (vendor/llama.cpp/), the very
   version our llama.cpp was compiled from. `install_converter()` takes it from there once, at install time
   (`make install` runs `python -m engine capstone-tools`); nothing is downloaded while the app runs.
2. **Quantize**: `llama_cpp.llama_model_quantize`, the C function behind llama.cpp's `llama-quantize` tool, through
   the ctypes binding of the installed llama-cpp-python. Q4_K_M stores most weights in 4-bit blocks of 256 with
   6-bit scales ("K-quants"), and keeps a few sensitive tensors (parts of attention V and the FFN down projection)
   at 6 bits; tensors whose rows are not a multiple of 256 fall back to 32-wide blocks (the log says how many).
"""

from __future__ import annotations

import ctypes
import importlib.metadata as md
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from engine.core.assets import ROOT
from engine.core.errors import UserError

QUANT_TYPES = ("Q4_K_M", "Q4_0", "Q5_K_M", "Q8_0")
KEEP = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")  # what the converter needs


class ToolMissing(UserError):
    default_code = "capstone.no_converter"


@dataclass(frozen=True)
class ExportStep:
    path: Path
    bytes: int
    seconds: float
    log_tail: str = ""


def llama_cpp_version() -> str:
    try:
        return md.version("llama-cpp-python")
    except md.PackageNotFoundError as exc:
        raise ToolMissing("capstone.no_llama_cpp") from exc


def converter_dir() -> Path:
    """Where the converter of the installed llama-cpp-python version lives (inside the virtual environment)."""
    return Path(sys.prefix) / "share" / "llmlab" / f"llama.cpp-convert-{llama_cpp_version()}"


def converter_script() -> Path:
    script = converter_dir() / "convert_hf_to_gguf.py"
    if not script.is_file():
        raise ToolMissing("capstone.no_converter", path=str(converter_dir()))
    return script


def locked_sdist_hash(lock: Path = ROOT / "requirements" / "lock.txt") -> str | None:
    """The sha256 the lock pins for llama-cpp-python (it is built from its sdist, so the hash is the sdist's)."""
    if not lock.is_file():
        return None
    text = lock.read_text(encoding="utf-8")
    m = re.search(r"^llama-cpp-python==[^\s\\]+\s*\\\s*\n\s*--hash=sha256:([0-9a-f]{64})", text, re.MULTILINE)
    return m.group(1) if m else None


def extract_converter(sdist: Path, target: Path | None = None) -> Path:
    """Copy vendor/llama.cpp/{convert_hf_to_gguf.py, conversion/, gguf-py/, LICENSE} out of the sdist."""
    target = target or converter_dir()
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=_parent(target)))
    try:
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                _, sep, rel = member.name.partition("/vendor/llama.cpp/")
                if not sep or not rel.startswith(KEEP) or not (member.isfile() or member.isdir()):
                    continue
                if ".." in Path(rel).parts:  # never write outside the target
                    continue
                dest = tmp / rel
                if member.isdir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
        if not (tmp / "convert_hf_to_gguf.py").is_file():
            raise ToolMissing("capstone.no_converter", path=str(sdist))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _parent(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.parent


def install_converter(sdist: Path | None = None, log=print) -> Path:
    """Install the converter once: from a given sdist, or the locked sdist fetched with pip (install time only)."""
    target = converter_dir()
    if (target / "convert_hf_to_gguf.py").is_file():
        return target
    if sdist is None:
        version = llama_cpp_version()
        with tempfile.TemporaryDirectory() as tmpdir:
            req = Path(tmpdir) / "req.txt"
            digest = locked_sdist_hash()
            req.write_text(f"llama-cpp-python=={version}" + (f" --hash=sha256:{digest}\n" if digest else "\n"))
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
            cmd += ["-d", tmpdir, "-r", str(req)] + (["--require-hashes"] if digest else [])
            log(f"fetching the llama-cpp-python {version} source distribution for its GGUF converter")
            done = subprocess.run(cmd, capture_output=True, text=True)
            found = sorted(Path(tmpdir).glob("llama_cpp_python-*.tar.gz"))
            if not found:
                raise ToolMissing("capstone.no_converter", path=(done.stderr or done.stdout)[-300:])
            return extract_converter(found[0], target)
    return extract_converter(sdist, target)


def convert_to_gguf(hf_dir: Path, out: Path, outtype: str = "f16", timeout: float = 600) -> ExportStep:
    """Run llama.cpp's converter in a child process (it imports its own gguf-py, not the installed `gguf`)."""
    script = converter_script()
    start = time.perf_counter()
    cmd = [sys.executable, str(script), str(hf_dir), "--outfile", str(out), "--outtype", outtype]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=script.parent)
    tail = "\n".join(line for line in (done.stderr or "").splitlines()[-8:] if "Writing:" not in line)
    if done.returncode != 0 or not out.is_file():
        raise UserError("capstone.convert_failed", detail=tail[-600:])
    return ExportStep(out, out.stat().st_size, round(time.perf_counter() - start, 2), tail)


def quantize(src: Path, out: Path, qtype: str = "Q4_K_M", threads: int = 0) -> ExportStep:
    """llama.cpp's quantizer, called in-process through llama_cpp.llama_model_quantize (returns 0 on success)."""
    import llama_cpp

    if qtype not in QUANT_TYPES:
        raise UserError("input.unknown_choice", name="quantization", value=qtype, choices=list(QUANT_TYPES))
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype}")
    params.nthread = threads
    start = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(), ctypes.byref(params))
    if rc != 0 or not out.is_file():
        raise UserError("capstone.quantize_failed", detail=f"llama_model_quantize returned {rc}")
    return ExportStep(out, out.stat().st_size, round(time.perf_counter() - start, 2))
