"""The capstone page's helpers (pages/99_capstone.py): the CSV, the run as one job, its results, the REST API.

A result is one plain dict {"steps", "summary", "losses", "answers"} whether it is the shipped run
(assets/precomputed/hc_capstone.json) or this session's, so a fresh page and a page after a run look the same.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import streamlit as st

from engine.capstone import read_qa_csv
from engine.capstone.pipeline import CapstoneConfig, Step, run_capstone
from engine.capstone.sft import SftConfig
from engine.core import load_precomputed
from engine.core.config import get_settings
from ui import charts
from ui.i18n import t
from ui.layout import precomputed_note

SS = st.session_state
PRECOMPUTED = "hc_capstone"
DOWNLOADS = ("train.csv", "heldout.csv", "baseline.csv", "answers.csv", "adapter.zip", "summary.json")
MAX_DOWNLOAD_BYTES = 50_000_000  # larger files (the GGUF, the merged model) are served by the API, not the page


def session_dir() -> Path:
    """One run folder per browser session (a new run replaces the old one: disk on a course server is finite)."""
    sid = SS.setdefault("hc_sid", secrets.token_hex(6))
    return get_settings().cache_dir / "capstone" / sid


def dataset(source: str, upload) -> tuple[bytes | str, object]:
    """(what run_capstone reads, the parsed QASet); raises the InputError of a bad file."""
    if source == "upload":
        data = upload.getvalue()
        key = hashlib.sha1(data).hexdigest()
        cache = SS.setdefault("hc_parsed", {})
        if key not in cache:
            cache.clear()
            cache[key] = read_qa_csv(data)
        return data, cache[key]
    return "sample", read_qa_csv("sample")


def show_dataset(qa) -> None:
    s = qa.summary()
    c = st.columns(4)
    c[0].metric(t("hc.pairs"), s["pairs"])
    c[1].metric(t("hc.train_rows"), s["train"])
    c[2].metric(t("hc.heldout_rows"), s["heldout"])
    c[3].metric(t("hc.encoding"), s["encoding"])
    if s["dropped"]:
        st.warning(
            t("hc.dropped", rows=", ".join(f"{t(f'hc.reason_{k}')} {v}" for k, v in s["dropped"].items())), icon="🧹"
        )
    if s["split"] == "random":
        st.info(t("hc.split_random"), icon="ℹ️")
    rows = [(t("hc.split_train"), p.question, p.answer) for p in qa.train[:8]]
    rows += [(t("hc.split_heldout"), p.question, p.answer) for p in qa.heldout[:8]]
    charts.table(rows, [t("hc.col_split"), t("hc.col_question"), t("hc.col_answer")])


def run_work(source, cfg: CapstoneConfig):
    """work(progress, on_row, should_stop) for ui.jobs: every finished step is a row; the result is the run dict."""

    def work(progress, on_row, should_stop):
        out = session_dir()
        steps, summary = [], {}
        for item in run_capstone(source, out, cfg, progress, should_stop):
            if isinstance(item, Step):
                row = {"step": item.step, "seconds": item.seconds, "ok": item.ok, "detail": item.detail}
                steps.append(row)
                on_row(row)
            else:
                summary = item
        return collect(out, steps, summary)

    return work


def collect(out: Path, steps: list[dict], summary: dict) -> dict:
    import csv

    answers = []
    if (out / "answers.csv").is_file():
        with open(out / "answers.csv", encoding="utf-8-sig") as f:
            answers = list(csv.DictReader(f))
    losses = json.loads((out / "losses.json").read_text()) if (out / "losses.json").is_file() else []
    return {"steps": steps, "summary": summary, "losses": losses, "answers": answers, "out_dir": str(out)}


def config(base: str, epochs: int, lr: float, rank: int, quant: str) -> CapstoneConfig:
    sft = SftConfig(epochs=epochs, lr=lr, rank=rank, alpha=2 * rank)
    # the page serves the model in its own section, and keeps only the 4-bit file of the intermediate models
    return CapstoneConfig(base=base, sft=sft, quant=quant, serve=False, keep_intermediate=False)


def shipped():
    pre = load_precomputed(PRECOMPUTED)
    if pre is not None:
        precomputed_note(pre)
    return pre


def mb(n) -> str:
    return f"{n / 1e6:,.0f} MB" if isinstance(n, int | float) else "—"


def show_result(run: dict) -> None:
    s = run.get("summary") or {}
    base = s.get("baseline_f1", {})
    c = st.columns(4)
    c[0].metric(t("hc.before"), f"{s.get('heldout_before', 0):.3f}")
    c[1].metric(
        t("hc.after"),
        f"{s.get('heldout_after', 0):.3f}",
        delta=f"{s.get('heldout_after', 0) - s.get('heldout_before', 0):+.3f}",
    )
    c[2].metric(t("hc.retrieval"), f"{base.get('embedding', 0):.3f}")
    c[3].metric(t("hc.tps"), f"{s.get('tokens_per_second', 0):.1f}")
    c = st.columns(4)
    c[0].metric(t("hc.fp32"), mb(s.get("fp32_bytes")))
    c[1].metric(t("hc.f16"), mb(s.get("f16_bytes")))
    c[2].metric(t("hc.q4", quant=s.get("quant", "4-bit")), mb(s.get("gguf_bytes")))
    c[3].metric(t("hc.ratio"), f"{100 * s.get('gguf_vs_fp32', 0):.1f} %")
    steps = run.get("steps") or []
    if steps:
        total = sum(r["seconds"] for r in steps)
        st.caption(t("hc.total", seconds=total, minutes=total / 60))
        charts.table(
            [(t(f"hc.step_{r['step']}"), r["seconds"], "✅" if r["ok"] else "❌") for r in steps],
            [t("hc.col_step"), t("hc.col_seconds"), t("hc.col_ok")],
        )
    losses = run.get("losses") or []
    if losses:
        rows = [{"step": i + 1, "loss": v} for i, v in enumerate(losses)]
        charts.show(
            st,
            charts.line(
                rows,
                "step",
                "loss",
                title=t("hc.loss_title"),
                labels={"step": t("hc.col_step_no"), "loss": t("hc.col_loss")},
            ),
            key="hc_loss",
        )
    answers = run.get("answers") or []
    if answers:
        st.subheader(t("hc.answers"))
        keys = ["question", "reference", "before", "after", "retrieval", "before_f1", "after_f1", "retrieval_f1"]
        charts.table([[r.get(k) for k in keys] for r in answers], [t(f"hc.col_{k}") for k in keys])


def downloads(run: dict) -> None:
    out = Path(run.get("out_dir") or "")
    files = [out / n for n in DOWNLOADS if (out / n).is_file() and (out / n).stat().st_size <= MAX_DOWNLOAD_BYTES]
    if not files:
        return
    cols = st.columns(len(files))
    for col, f in zip(cols, files, strict=True):
        col.download_button(f.name, f.read_bytes(), f.name, key=f"hc_dl_{f.name}")
    big = [p for p in (out / "model.gguf", out / "model-f16.gguf") if p.is_file()]
    if big:
        st.caption(
            t("hc.big_files", files=", ".join(f"{p.name} ({mb(p.stat().st_size)})" for p in big), folder=str(out))
        )
