"""Chapter 11 — your own embedding model: MNR fine-tuning, an LM turned embedding model, reranking, Korean search."""

import pandas as pd
import streamlit as st

from engine.core import InputError, null_progress
from engine.retrieval import (
    DEV_QUESTIONS,
    METHODS,
    dev_and_test_metrics,
    evaluate_pipelines,
    lm_similarity,
    load_questions,
    load_reranker,
    mnr_experiment,
    nearest_morphemes,
    train_reranker,
    zero_shot_comparison,
)
from ui import charts
from ui.cache import cached, causal_lm, shared
from ui.i18n import t
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, show_code
from ui.search import build_constitution_index, constitution_index, hits_table
from ui.state import param


def _metrics_table(before: dict, after: dict) -> pd.DataFrame:
    return pd.DataFrame([{"": t("ch11.before"), **before}, {"": t("ch11.after"), **after}]).round(3)


def contrastive_section(ch) -> None:
    """Contrastive learning: MNR fine-tuning of MiniLM."""
    section_header(ch, "contrastive")
    param("m_pairs", 192, int)
    param("m_epochs", 1, int)
    param("m_lr", 1e-4, float)
    c1, c2, c3 = st.columns(3)
    c1.select_slider(t("ch11.pairs"), [64, 128, 192, 256, 384], key="m_pairs")
    c2.slider(t("ch11.epochs"), 1, 3, key="m_epochs")
    c3.select_slider(t("ch11.lr"), [3e-5, 1e-4, 3e-4], key="m_lr")
    ss = st.session_state
    mnr_key = ("mnr", ss["m_pairs"], ss["m_epochs"], ss["m_lr"])
    if st.button(t("ch11.mnr_run"), type="primary", key="m_run"):
        ss["m_done"] = mnr_key
    if ss.get("m_done") == mnr_key:
        with friendly_errors():
            _, n_pairs, epochs, lr = mnr_key
            res = cached(mnr_key, lambda p: mnr_experiment(n_pairs, epochs, lr, p), t("ch11.mnr_run"))
            st.caption(t("ch11.mnr_stats", pairs=res.pairs, steps=res.steps, seconds=res.seconds))
            st.dataframe(_metrics_table(res.before, res.after), hide_index=True)
            if res.losses:
                charts.show(st, charts.line(res.losses, "step", "loss", title=t("ch11.loss_curve")), width="stretch")
            with st.expander(t("ch11.examples")):
                st.dataframe(pd.DataFrame(res.examples, columns=["query", "doc_id"]), hide_index=True)
    else:
        st.caption(t("ch11.mnr_idle"))
    notice("common.notice", t("ch11.notice_mnr"))
    quiz("11", "contrastive")


def lm_embedding_section(ch) -> None:
    """A language model turned into an embedding model."""
    section_header(ch, "lm_embedding")
    with friendly_errors():
        idx = constitution_index()
        if idx is None:
            st.info(t("ch11.index_missing"))
            if st.button(t("ch11.build"), type="primary", key="l_build"):
                build_constitution_index(t("ch11.building"))
                st.rerun()
        else:
            lm_embedding_results(idx)
    notice("common.notice", t("ch11.notice_lm"))
    quiz("11", "lm_embedding")


def lm_embedding_results(idx) -> None:
    ss = st.session_state
    info = idx.korean.info
    if info:
        st.caption(t("ch11.build_info", seconds=info.seconds, pairs=info.pairs, vocab=info.vocab, kiwi=info.kiwi))
        charts.show(st, charts.line(info.history, "epoch", "loss", title=t("ch11.loss_curve")), width="stretch")
    param("l_word", "세금", str)
    st.text_input(t("ch11.morpheme"), key="l_word", max_chars=20)
    try:
        near = nearest_morphemes(ss["l_word"], top_n=8)
        st.dataframe(pd.DataFrame([{"morpheme": form, "cos": round(cos, 3)} for form, cos in near]), hide_index=True)
        st.caption(t("ch11.neighbours_of"))
    except InputError:
        st.caption(t("ch11.morpheme_unknown", word=ss["l_word"].strip()))
    if st.button(t("ch11.zero_shot_run"), key="l_zero"):
        ss["l_zero_done"] = True
    if ss.get("l_zero_done"):
        before, after = cached(("korean_zero_shot",), lambda p: zero_shot_comparison(idx, p), t("ch11.zero_shot_run"))
        st.subheader(t("ch11.before_after"))
        st.dataframe(_metrics_table(before, after), hide_index=True)
    param("l_layer", 6, int)
    st.slider(t("ch11.gemma_layer"), 1, 18, key="l_layer")
    if st.button(t("ch11.gemma_run"), key="l_gemma"):
        ss["l_gemma_done"] = True
    if ss.get("l_gemma_done"):
        sim = lm_similarity(causal_lm("base-ko", t("common.loading_model")), ss["l_layer"])
        title = t("ch11.gemma_heatmap", layer=ss["l_layer"])
        charts.show(st, charts.heatmap(sim.matrix, sim.labels, title=title), width="stretch")


def rerank_section(ch) -> None:
    """Rerankers: the book's cross-encoder (trained live) and the late-interaction LM reranker of the index."""
    section_header(ch, "rerank")
    with friendly_errors():
        idx = constitution_index()
        if idx is None:
            st.info(t("ch11.index_missing"))
        else:
            rerank_results(idx)
    notice("common.notice", t("ch11.notice_rerank"))
    quiz("11", "rerank")


def rerank_results(idx) -> None:
    ss = st.session_state
    # The cross-encoder is this section's lesson; it never replaces idx.reranker (the LM late-interaction
    # reranker that `search --method hybrid` uses), so both can be compared side by side.
    ce = shared(("cross_encoder", "constitution"), lambda p: load_reranker(idx.docs), null_progress)
    if st.button(t("ch11.rerank_run"), type="primary", key="r_train"):
        ce = cached(("cross_encoder_train",), lambda p: train_reranker(idx, progress=p), t("ch11.rerank_run"))
        ss["r_trained"] = True
    if ss.get("r_trained"):
        ce = shared(("cross_encoder_train",), lambda p: train_reranker(idx, progress=p), null_progress)
    if ce is None:
        st.caption(t("ch11.rerank_missing"))
    else:
        info = ce.info
        st.caption(t("ch11.rerank_info", seconds=info.get("seconds", 0), pairs=info.get("pairs", 0), mix=ce.mix))
        if info.get("mix_table"):
            st.dataframe(pd.DataFrame(info["mix_table"]).round(3), hide_index=True)
    lm = idx.reranker
    if lm is None:
        st.caption(t("ch11.lm_rerank_missing"))
    else:
        weights = ", ".join(f"{w:g}" for w in lm.weights)
        model = lm.info.get("model", "Gemma-3-270M")
        st.caption(t("ch11.lm_rerank_info", model=model, weights=weights, epochs=len(idx.adapter_history)))
        param("r_query", t("ch11.rerank_query"), str)
        st.text_input(t("ch11.query"), key="r_query", max_chars=500)
        if lm.encoder is None:  # first use in this process: load Gemma-3-270M once (≈10 s)
            with st.spinner(t("common.loading_model")):
                lm.ensure_encoder()
        st.dataframe(pd.DataFrame(idx.rerank_breakdown(ss["r_query"], 5)), hide_index=True)
    if st.button(t("ch11.rerank_eval"), key="r_eval"):
        ss["r_eval_done"] = True
    if ss.get("r_eval_done"):
        rows = cached(
            ("rerank_eval", ce.mix if ce else None, lm is not None),
            lambda p: evaluate_pipelines(idx, ce, load_questions(DEV_QUESTIONS)),
            t("ch11.rerank_eval"),
        )
        st.dataframe(pd.DataFrame(rows).rename(columns={"ms": t("ch11.ms_per_query")}), hide_index=True)


def korean_search_section(ch) -> None:
    """Korean hybrid search, measured."""
    section_header(ch, "korean_search")
    with friendly_errors():
        idx = constitution_index()
        if idx is None:
            st.info(t("ch11.index_missing"))
        else:
            korean_search_results(idx)
    notice("common.notice", t("ch11.notice_search"))
    quiz("11", "korean_search")


def korean_search_results(idx) -> None:
    ss = st.session_state
    param("s_query", t("ch11.default_query"), str)
    param("s_method", "hybrid", str, choices=METHODS)
    s1, s2 = st.columns([3, 1])
    s1.text_input(t("ch11.query"), key="s_query", max_chars=500)
    methods = [m for m in METHODS if m != "rerank" or idx.reranker is not None]
    if ss["s_method"] not in methods:
        ss["s_method"] = "hybrid"
    s2.radio(t("ch11.method"), methods, key="s_method", format_func=lambda m: t(f"ch11.method_{m}"))
    with st.spinner(t("common.loading_model")):  # `rerank` loads Gemma-3-270M on its first query (≈10 s)
        res = idx.search(ss["s_query"], ss["s_method"], 5)
    for note in res.notes:
        st.caption("ℹ️ " + note)
    st.caption(f"{res.seconds * 1000:.1f} ms")
    hits_table(res.hits, 90)
    st.subheader(t("ch11.metrics_title"))
    if st.button(t("ch11.metrics_run"), key="s_eval"):
        ss["s_eval_done"] = True
    if ss.get("s_eval_done"):
        key = ("korean_eval", tuple(methods))
        rows = cached(key, lambda p: dev_and_test_metrics(idx, tuple(methods), p), t("ch11.metrics_run"))
        st.dataframe(pd.DataFrame(rows), hide_index=True)
        bars = charts.metric_bars(rows, "x", lambda r: f"{r['set']} · {r['method']}")
        charts.show(st, bars, width="stretch")


ch = chapter_header("11")
contrastive_section(ch)
lm_embedding_section(ch)
rerank_section(ch)
korean_search_section(ch)
show_code(ch)
