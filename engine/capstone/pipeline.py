"""The capstone end to end: CSV -> baseline -> untuned answers -> LoRA SFT -> merge -> GGUF -> 4-bit -> tuned answers
-> REST API, every step timed and recorded, every artifact left in one folder.

"Before" and "after" are measured the same way: the same held-out questions, the same system prompt, greedy
decoding, llama.cpp, a 4-bit file (the untuned model's official Q4_K_M GGUF vs ours). So the difference is the
fine-tune, not the runtime or the precision.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.capstone.baseline import retrieval_baseline
from engine.capstone.gguf_export import convert_to_gguf, quantize
from engine.capstone.qa_csv import QAPair, QASet, escape_cell, read_qa_csv
from engine.capstone.scoring import char_f1
from engine.capstone.sft import SftConfig, SftResult, fp32_bytes, merge_and_save, messages, train_lora
from engine.core.processes import spawn_owned
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError

BASES = ("instruct", "chat")  # model roles a capstone can start from (or a local Hugging Face directory)


@dataclass(frozen=True)
class CapstoneConfig:
    base: str = "instruct"  # Qwen2.5-Coder-0.5B-Instruct: Korean tokenizes ~1 token per syllable, not 3 bytes
    sft: SftConfig = field(default_factory=SftConfig)
    quant: str = "Q4_K_M"
    max_heldout: int = 40
    answer_tokens: int = 64
    seed: int = 0
    serve: bool = True  # start the REST API once and call it; the CLI's --serve keeps it running
    keep_intermediate: bool = True  # the merged fp16 model (1 GB) and the f16 GGUF (1.3 GB); a course page drops them


@dataclass
class Step:
    step: str
    seconds: float
    ok: bool
    detail: dict = field(default_factory=dict)


@dataclass
class Answers:
    rows: list[dict]  # question, reference, answer, f1
    mean_f1: float
    tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return round(self.tokens / self.seconds, 1) if self.seconds else 0.0


def base_dir(base: str | Path, progress: ProgressFn = null_progress) -> Path:
    """The base model as a Hugging Face directory (a packaged role is dequantized from its GGUF once)."""
    if isinstance(base, Path) or base not in BASES:
        path = Path(base)
        if not (path / "config.json").is_file():
            raise InputError("input.unknown_choice", name="base", value=str(base), choices=list(BASES))
        return path
    from engine.models.loading import converted_dir, load_tokenizer

    load_tokenizer(base, progress)  # converts the packaged GGUF to safetensors once (cached)
    return converted_dir(base)


def answer_all(
    gguf: Path, pairs: list[QAPair], max_tokens: int = 64, on_row: Callable[[int], None] | None = None
) -> Answers:
    """Greedy answers of a GGUF model to each question, with llama.cpp in this process."""
    from llama_cpp import Llama

    llm = Llama(
        str(gguf), n_ctx=512, n_threads=int(os.environ.get("LLMLAB_THREADS", os.cpu_count())), seed=0, verbose=False
    )
    rows, tokens, seconds = [], 0, 0.0
    for i, p in enumerate(pairs):
        start = time.perf_counter()
        out = llm.create_chat_completion(messages(p.question), max_tokens=max_tokens, temperature=0.0)
        seconds += time.perf_counter() - start
        text = (out["choices"][0]["message"]["content"] or "").strip()
        tokens += out.get("usage", {}).get("completion_tokens", 0)
        rows.append(
            {"question": p.question, "reference": p.answer, "answer": text, "f1": round(char_f1(text, p.answer), 4)}
        )
        if on_row:
            on_row(i + 1)
    del llm
    mean = round(sum(r["f1"] for r in rows) / len(rows), 4) if rows else 0.0
    return Answers(rows, mean, tokens, round(seconds, 2))


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with open(path, "w", newline="", encoding="utf-8-sig") as f:  # the BOM lets Excel read Korean as UTF-8
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: escape_cell(v) if isinstance(v, str) else v for k, v in r.items()})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(model: Path, token: str, port: int | None = None, timeout: float = 60.0) -> tuple[subprocess.Popen, str]:
    """`python -m engine capstone-serve` in a child process; returns it and its URL once /health answers."""
    import httpx

    port = port or _free_port()
    env = dict(os.environ, LLMLAB_API_TOKEN=token)
    cmd = [sys.executable, "-m", "engine", "capstone-serve", "--model", str(model), "--port", str(port)]
    # the API dies with its parent (a Streamlit server or a CLI run that ends) instead of holding a port and a model
    proc = spawn_owned(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InputError("capstone.api_failed", detail=(proc.stderr.read() or b"").decode()[-400:])
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise InputError("capstone.api_failed", detail=f"no answer on {url}/health within {timeout:.0f} s")


def call_api(url: str, token: str, question: str, timeout: float = 60.0) -> dict:
    import httpx

    r = httpx.post(
        f"{url}/v1/answer", json={"question": question}, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
    )
    r.raise_for_status()
    return r.json()


def run_capstone(
    csv_source: bytes | str | Path,
    out_dir: Path,
    cfg: CapstoneConfig = CapstoneConfig(),
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] = lambda: False,
    on_sft_step: Callable[[SftResult], None] | None = None,
) -> Iterator[Step | dict]:
    """Yields one `Step` per stage as it finishes, then the final summary dict (the CLI prints each as JSON).

    Progress fractions: data 0-5 %, before 5-15 %, training 15-75 %, export 75-85 %, after 85-97 %, API 97-100 %."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"out_dir": str(out_dir), "base": str(cfg.base), "quant": cfg.quant}

    def check() -> None:
        if should_stop():
            raise Cancelled()

    def timed(name: str, fn, detail=lambda r: {}):
        start = time.perf_counter()
        result = fn()
        step = Step(name, round(time.perf_counter() - start, 2), True, detail(result))
        return result, step

    # 1. the data
    qa, step = timed(
        "read_csv", lambda: read_qa_csv(csv_source, seed=cfg.seed, max_heldout=cfg.max_heldout), QASet.summary
    )
    _write_csv(out_dir / "train.csv", [{"question": p.question, "answer": p.answer} for p in qa.train])
    _write_csv(out_dir / "heldout.csv", [{"question": p.question, "answer": p.answer} for p in qa.heldout])
    progress(0.02, f"{len(qa.train)} training and {len(qa.heldout)} held-out pairs")
    yield step
    check()
    base, _ = timed("base", lambda: base_dir(cfg.base, progress))

    # 2. the retrieval baseline (what a search over the CSV scores without any training)
    def baselines():
        return {m: retrieval_baseline(qa.train, qa.heldout, m) for m in ("embedding", "bm25")}

    res, step = timed("baseline", baselines, lambda r: {m: b.mean_f1 for m, b in r.items()})
    summary["baseline_f1"] = {m: b.mean_f1 for m, b in res.items()}
    _write_csv(out_dir / "baseline.csv", [asdict(r) for r in res["embedding"].rows])
    progress(0.05, f"retrieval baseline: char-F1 {res['embedding'].mean_f1:.3f}")
    yield step
    check()

    # 3. the untuned model, 4-bit, on the held-out questions
    def before_model() -> Path:
        if isinstance(cfg.base, str) and cfg.base in BASES:
            from engine.models.registry import resolve

            return resolve(cfg.base).gguf_path()
        f16 = convert_to_gguf(base, out_dir / "base-f16.gguf").path  # a local model: its own 4-bit file
        q = quantize(f16, out_dir / "base.gguf", cfg.quant).path
        f16.unlink()
        return q

    n = max(1, len(qa.heldout))
    before_gguf = before_model()
    before, step = timed(
        "before",
        lambda: answer_all(
            before_gguf, qa.heldout, cfg.answer_tokens, lambda i: progress(0.05 + 0.1 * i / n, f"untuned: {i}/{n}")
        ),
        lambda a: {"heldout_f1": a.mean_f1, "tokens_per_second": a.tokens_per_second, "model": before_gguf.name},
    )
    summary["heldout_before"] = before.mean_f1
    yield step
    check()

    # 4. LoRA SFT
    def train():
        return train_lora(
            base,
            qa.train,
            cfg.sft,
            lambda f, m: progress(0.15 + 0.6 * f, m),
            should_stop,
            on_sft_step,
        )

    (model, tokenizer, sft), step = timed(
        "train",
        train,
        lambda r: (
            {k: v for k, v in asdict(r[2]).items() if k != "losses"} | {"final_loss": (r[2].losses or [None])[-1]}
        ),
    )
    (out_dir / "losses.json").write_text(json.dumps(sft.losses))
    yield step
    if sft.cancelled:
        raise Cancelled()

    # 5. merge (and keep the adapter on its own: a few MB, loadable on top of the base with peft)
    def merge() -> Path:
        adapter = out_dir / "adapter"
        model.save_pretrained(adapter)
        with zipfile.ZipFile(out_dir / "adapter.zip", "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(adapter.iterdir()):
                z.write(f, f.name)
        summary["fp32_bytes"] = fp32_bytes(model.get_base_model())
        return merge_and_save(model, tokenizer, out_dir / "merged")

    progress(0.76, "merging the adapters into the weights")
    merged, step = timed("merge", merge, lambda p: {"fp32_bytes": summary["fp32_bytes"]})
    model = None  # the fp32 model (~2.5 GB) is not needed any more: free it before the conversion
    yield step
    check()

    # 6. GGUF f16, then 4-bit
    progress(0.78, "converting to GGUF (llama.cpp's convert_hf_to_gguf.py)")
    f16, step = timed(
        "convert", lambda: convert_to_gguf(merged, out_dir / "model-f16.gguf"), lambda s: {"bytes": s.bytes}
    )
    summary["f16_bytes"] = f16.bytes
    yield step
    check()
    progress(0.82, f"quantizing to {cfg.quant} (llama_model_quantize)")
    q4, step = timed(
        "quantize", lambda: quantize(f16.path, out_dir / "model.gguf", cfg.quant), lambda s: {"bytes": s.bytes}
    )
    summary["gguf_bytes"] = q4.bytes
    summary["gguf_vs_fp32"] = round(q4.bytes / summary["fp32_bytes"], 4)
    if not cfg.keep_intermediate:  # 2.3 GB per learner on a shared course server: keep the 4-bit file only
        shutil.rmtree(merged, ignore_errors=True)
        f16.path.unlink(missing_ok=True)
    yield step
    check()

    # 7. the tuned 4-bit model on the same questions
    after, step = timed(
        "after",
        lambda: answer_all(
            q4.path, qa.heldout, cfg.answer_tokens, lambda i: progress(0.85 + 0.12 * i / n, f"tuned: {i}/{n}")
        ),
        lambda a: {"heldout_f1": a.mean_f1, "tokens_per_second": a.tokens_per_second},
    )
    summary["heldout_after"] = after.mean_f1
    summary["tokens_per_second"] = after.tokens_per_second
    rows = [
        {
            "question": b["question"],
            "reference": b["reference"],
            "before": b["answer"],
            "before_f1": b["f1"],
            "after": a["answer"],
            "after_f1": a["f1"],
            "retrieval": r.answer,
            "retrieval_f1": r.f1,
        }
        for b, a, r in zip(before.rows, after.rows, res["embedding"].rows, strict=True)
    ]
    _write_csv(out_dir / "answers.csv", rows)
    yield step

    # 8. the REST API, started once and called with a real HTTP client
    summary["api_url"] = None
    if cfg.serve:
        token = secrets.token_urlsafe(16)
        start = time.perf_counter()
        proc, url = start_api(q4.path, token)
        try:
            reply = call_api(url, token, qa.heldout[0].question)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        summary["api_url"] = url
        summary["api_answer"] = reply["answer"]
        yield Step("serve", round(time.perf_counter() - start, 2), True, {"url": url, "answer": reply["answer"]})
    progress(1.0, "done")
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    yield summary


def remove_run(out_dir: Path) -> None:
    shutil.rmtree(out_dir, ignore_errors=True)
