"""What pages 10 and 11 share: result tables with translated headers, the Korean search index (loaded once, built
with a progress bar and a Stop button), and the shipped results a section shows until the learner runs its demo.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ui.i18n import t

# Engine row keys (engine/retrieval: hits, breakdowns, evaluations) in the order a table shows them (a shipped
# file's rows come with their keys sorted); all but the hit@k metrics have a translated header (ch10.col_<key>).
ORDER = (  # noqa: SIM905 - one string reads as the table it is
    "rank query doc_id title set method hybrid_rank score BM25 bm25_rank bm25_score dense_rank dense_score rrf_rank "
    "rrf_score convex_rank convex_score bm25 dense lm_maxsim answer_type final mix hit@1 hit@5 hit@10 mrr ms "
    "morpheme cos text"
).split()
COLUMNS = [c for c in ORDER if not c.startswith("hit@")]
# English fragments of the engine's method names (engine/retrieval/studies.py, rerank.py, views.py) -> string keys.
_METHOD_WORDS = {
    "MiniLM (English)": "ch10.m_minilm_en",
    "Korean morpheme encoder": "ch10.m_korean_encoder",
    "Korean": "ch10.m_korean",
    "convex": "ch10.m_convex",
    "cross-encoder": "ch10.m_cross_encoder",
    "late interaction": "ch10.m_late_interaction",
    "test (held-out)": "ch10.m_test",
    "dev": "ch10.m_dev",
    "hybrid": "ch10.m_hybrid",
    "dense": "ch10.m_dense",
    "rerank": "ch10.m_rerank",
}


def method_name(name: str) -> str:
    """An engine method or set name in the learner's language ("RRF(BM25, Korean) k=60" -> "RRF(BM25, 한국어) k=60")."""
    for english, key in _METHOD_WORDS.items():
        name = name.replace(english, t(key))
    return name


def frame(rows: list[dict], text_chars: int | None = None) -> pd.DataFrame:
    """Engine rows as a table: translated headers, method/set names in words, long texts cut."""
    df = pd.DataFrame(rows)
    df = df[sorted(df.columns, key=lambda c: ORDER.index(c) if c in ORDER else len(ORDER))]
    for col in ("method", "set"):
        if col in df:
            df[col] = [method_name(str(v)) for v in df[col]]
    if text_chars and "text" in df:
        df["text"] = [str(x)[:text_chars] for x in df["text"]]
    return df.rename(columns={c: t(f"ch10.col_{c}") for c in df.columns if c in COLUMNS})


def show_rows(rows: list[dict], text_chars: int | None = None, where=st) -> None:
    where.dataframe(frame(rows, text_chars), hide_index=True)


def hit_dicts(hits) -> list[dict]:
    """Hits (engine Hit objects or the shipped dicts) as rank · doc_id · score · text rows."""
    return [
        h if isinstance(h, dict) else {"rank": h.rank, "doc_id": h.doc_id, "score": round(h.score, 4), "text": h.text}
        for h in hits
    ]


def hits_table(hits, text_chars: int = 80) -> None:
    """rank · doc_id · score · the start of the document's text, for a list of engine.retrieval Hit (or dicts)."""
    cols = ["rank", "doc_id", "score", "text"]
    show_rows([{c: r[c] for c in cols} for r in hit_dicts(hits)], text_chars)


def metrics_chart(rows: list[dict], with_set: bool = False):
    """hit@1 / hit@5 bars per method (per set · method with `with_set`), axes named in the learner's language."""
    from ui import charts

    def label(r: dict) -> str:
        name = method_name(str(r["method"]))
        return f"{method_name(str(r['set']))} · {name}" if with_set else name

    labels = {"method": t("ch10.col_method"), "metric": t("ch10.metric"), "value": t("ch10.hit_rate")}
    return charts.metric_bars(rows, "method", label, labels=labels)


def shipped(name: str):
    """The shipped result `name` (assets/precomputed), labelled as such; None when none is shipped."""
    from engine.core import load_precomputed
    from ui.layout import precomputed_note

    pre = load_precomputed(name)
    if pre is not None:
        precomputed_note(pre)
    return pre


INDEX_KEY = ("search_index", "constitution")


def constitution_index():
    """The built Korean search index, loaded once per process and shared by pages 10 and 11; None if not built."""
    from engine.core import null_progress
    from engine.retrieval import index_built, load_index
    from ui.cache import shared

    if not index_built("constitution"):
        return None
    return shared(INDEX_KEY, lambda p: load_index("constitution", p), null_progress)


def build_index_button(button: str, label: str, key: str) -> None:
    """The index build behind a button: a progress bar and a Stop button (minutes on 2 cores); the parts it
    finished are cached on disk, so a stopped build resumes where it stopped. Reruns the page once it is built."""
    from engine.retrieval import build_index
    from ui.jobs import run_job, show_job_status

    if st.button(button, type="primary", key=key):
        job = run_job("search_index", lambda p, on_row, stop: build_index("constitution", p), label=label)
        if job.complete:
            st.rerun()
    show_job_status("search_index")


# --- chapter 11's views: each draws a live result and its shipped copy alike --------------------------------------
def before_after(before: dict, after: dict) -> None:
    """Hit rates before and after training, one row each."""
    df = frame([before, after]).round(3)
    df.insert(0, t("ch11.model_state"), [t("ch11.before"), t("ch11.after")])
    st.dataframe(df, hide_index=True)


def loss_curve(rows: list[dict], x: str, title: str) -> None:
    """A loss curve over steps or epochs (`x`), axes named with their units."""
    from ui import charts

    labels = {x: t(f"ch11.ax_{x}"), "loss": t("ch11.ax_loss")}
    charts.show(st, charts.line(rows, x, "loss", title=title, labels=labels), width="stretch")


def mnr_view(d: dict) -> None:
    """MNR fine-tuning: its size and time, hit rates before/after, the loss curve and training pairs."""
    st.caption(t("ch11.mnr_stats", pairs=d["pairs"], steps=d["steps"], seconds=d["seconds"]))
    before_after(d["before"], d["after"])
    if d["losses"]:
        loss_curve(d["losses"], "step", t("ch11.loss_curve"))
    with st.expander(t("ch11.examples")):
        show_rows([{"query": q, "doc_id": doc} for q, doc in d["examples"]])


def encoder_view(info: dict | None) -> None:
    """How the index's Korean encoder was trained: time, pairs, vocabulary, loss per epoch."""
    if info:
        kw = {k: info[k] for k in ("seconds", "pairs", "vocab", "kiwi")}
        st.caption(t("ch11.build_info", **kw))
        loss_curve(info["history"], "epoch", t("ch11.loss_curve"))


def cross_encoder_view(info: dict, mix) -> None:
    st.caption(t("ch11.rerank_info", seconds=info.get("seconds", 0), pairs=info.get("pairs", 0), mix=mix))
    if info.get("mix_table"):
        st.dataframe(frame(info["mix_table"]).round(3), hide_index=True)


def lm_rerank_view(model: str, weights, epochs: int, rows: list[dict]) -> None:
    st.caption(t("ch11.lm_rerank_info", model=model, weights=", ".join(f"{w:g}" for w in weights), epochs=epochs))
    show_rows(rows)


def eval_view(rows: list[dict]) -> None:
    st.dataframe(frame(rows), hide_index=True)


def search_metrics_view(rows: list[dict]) -> None:
    from ui import charts

    show_rows(rows)
    charts.show(st, metrics_chart(rows, with_set=True), width="stretch")
