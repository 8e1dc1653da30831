"""Chapter 10 — from one-hot to hybrid search: text vectors, word2vec, pooling, BM25, dense and fusion."""

import pandas as pd
import plotly.express as px
import streamlit as st

from engine.core import load_constitution
from engine.models import load_sentence_embedder
from engine.retrieval import (
    DEV_QUESTIONS,
    POOLINGS,
    Word2VecConfig,
    bm25_ranking,
    check_query,
    constitution_bm25,
    fusion_study,
    load_questions,
    pooled_embeddings,
    text_vectors,
    train_word2vec,
    word_map,
)
from ui import charts
from ui.cache import cached
from ui.i18n import t
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, show_code
from ui.search import build_constitution_index, constitution_index, hits_table
from ui.state import param

TOKS = ("kiwi", "whitespace", "kiwi-all")


def vectors_section(ch) -> None:
    """One-hot, bag of words, TF-IDF."""
    section_header(ch, "vectors")
    param("v_text", t("ch10.default_sentences"), str)
    param("v_tok", "kiwi", str, choices=TOKS)
    c1, c2 = st.columns([3, 1])
    c1.text_area(t("ch10.sentences"), key="v_text", height=130, max_chars=4000)
    c2.radio(t("ch10.tokenizer"), TOKS, key="v_tok", format_func=lambda x: t(f"ch10.tok_{x}"))
    with friendly_errors():
        tv = text_vectors(st.session_state["v_text"].splitlines(), st.session_state["v_tok"])
        labels = [f"S{i + 1}" for i in range(len(tv.sentences))]
        tab1, tab2, tab3 = st.tabs([t("ch10.one_hot"), t("ch10.bow"), t("ch10.tfidf")])
        charts.show(tab1, charts.heatmap(tv.one_hot, tv.vocab, tv.tokens[0]), width="stretch")
        tab2.dataframe(pd.DataFrame(tv.bow.astype(int), index=labels, columns=tv.vocab), width="stretch")
        tab3.dataframe(pd.DataFrame(tv.tfidf.round(3), index=labels, columns=tv.vocab), width="stretch")
        d1, d2 = st.columns(2)
        charts.show(d1, charts.heatmap(tv.cosine_bow.round(3), labels, title=t("ch10.cos_bow")), width="stretch")
        charts.show(d2, charts.heatmap(tv.cosine_tfidf.round(3), labels, title=t("ch10.cos_tfidf")), width="stretch")
    notice("common.notice", t("ch10.notice_vectors"))
    quiz("10", "vectors")


def word2vec_section(ch) -> None:
    section_header(ch, "word2vec")
    param("w_dim", 64, int)
    param("w_window", 3, int)
    param("w_epochs", 4, int)
    param("w_word", "대통령", str)
    w1, w2, w3, w4 = st.columns(4)
    w1.select_slider(t("ch10.w2v_dim"), [16, 32, 64, 128], key="w_dim")
    w2.slider(t("ch10.w2v_window"), 1, 6, key="w_window")
    w3.slider(t("ch10.w2v_epochs"), 1, 8, key="w_epochs")
    w4.text_input(t("ch10.w2v_word"), key="w_word", max_chars=20)
    ss = st.session_state
    cfg = Word2VecConfig(dim=ss["w_dim"], window=ss["w_window"], epochs=ss["w_epochs"])
    w2v_key = ("w2v", cfg.dim, cfg.window, cfg.epochs)
    if st.button(t("ch10.w2v_train"), type="primary", key="w_train"):
        ss["w_trained"] = w2v_key
    if ss.get("w_trained") == w2v_key:
        with friendly_errors():
            w2v = cached(w2v_key, lambda p: train_word2vec(load_constitution(), cfg, p), t("ch10.w2v_train"))
            st.caption(t("ch10.w2v_stats", vocab=len(w2v.vocab), seconds=w2v.seconds, loss=w2v.losses[-1]))
            n1, n2 = st.columns([1, 2])
            wm = word_map(w2v, ss["w_word"], 10)
            n1.dataframe(
                pd.DataFrame(wm.neighbours, columns=[t("ch10.w2v_neighbours"), "cos"]).round(3), hide_index=True
            )
            fig = px.scatter(x=wm.xy[:, 0], y=wm.xy[:, 1], text=wm.words, title=t("ch10.w2v_projection"))
            fig.update_traces(textposition="top center")
            charts.show(n2, fig, width="stretch")
    else:
        st.caption(t("ch10.w2v_not_trained"))
    notice("common.notice", t("ch10.notice_w2v"))
    quiz("10", "word2vec")


def pooling_section(ch) -> None:
    """Sentence embeddings and pooling."""
    section_header(ch, "pooling")
    param("p_text", t("ch10.pool_sentences"), str)
    param("p_pool", "mean", str, choices=POOLINGS)
    p1, p2 = st.columns([3, 1])
    p1.text_area(t("ch10.sentences"), key="p_text", height=120, max_chars=4000)
    p2.radio(t("ch10.pooling"), POOLINGS, key="p_pool")
    with friendly_errors():
        embedder = cached(
            ("sentence_embedder", "embed"), lambda p: load_sentence_embedder("embed", p), t("common.loading_model")
        )
        pe = pooled_embeddings(embedder, st.session_state["p_text"].splitlines(), st.session_state["p_pool"])
        labels = [s[:24] for s in pe.sentences]
        title = t("ch10.heatmap", pooling=pe.pooling)
        charts.show(st, charts.heatmap(pe.similarity.round(3), labels, title=title), width="stretch")
        with st.expander(t("ch10.tokens_seen")):
            for s, toks in zip(pe.sentences, pe.tokens, strict=True):
                st.markdown(f"**{s}** → `{' '.join(toks)}`")
        st.caption(t("common.produced_by", model="all-MiniLM-L6-v2", device=str(embedder.device), source="offline"))
    notice("common.notice", t("ch10.notice_pooling"))
    quiz("10", "pooling")


def bm25_section(ch) -> None:
    """BM25: whitespace vs morphemes."""
    section_header(ch, "bm25")
    param("b_query", t("ch10.default_query"), str)
    param("b_k", 5, int)
    st.text_input(t("ch10.query"), key="b_query", max_chars=500)
    st.slider(t("ch10.k"), 1, 10, key="b_k")
    with friendly_errors():
        query, notes = check_query(st.session_state["b_query"])
        for note in notes:
            st.caption("ℹ️ " + note)
        for col, tok in zip(st.columns(2), ("whitespace", "kiwi"), strict=True):
            index = cached(("bm25", tok), lambda p, tok=tok: constitution_bm25(tok, p), "BM25")
            ranking = bm25_ranking(index, tok, query, st.session_state["b_k"])
            col.subheader(t("ch10.bm25_side", tok=t(f"ch10.tok_{tok}")))
            col.caption(t("ch10.query_tokens", tokens=" · ".join(ranking.tokens)))
            col.dataframe(pd.DataFrame(ranking.rows), hide_index=True)
            col.caption(t("ch10.bm25_equal", equal=ranking.equal, diff=ranking.max_diff))
    notice("common.notice", t("ch10.notice_bm25"))
    quiz("10", "bm25")


def hybrid_section(ch) -> None:
    """Dense and hybrid."""
    section_header(ch, "hybrid")
    param("h_query", t("ch10.default_query"), str)
    param("h_fusion", "convex", str, choices=("convex", "rrf"))
    param("h_rrf_k", 60, int)
    param("h_k", 5, int)
    with friendly_errors():
        idx = constitution_index()
        if idx is None:
            st.info(t("ch10.index_missing"))
            if st.button(t("ch10.build_index"), type="primary", key="h_build"):
                build_constitution_index(t("ch10.building"))
                st.rerun()
        else:
            hybrid_results(idx)
    notice("common.notice", t("ch10.notice_hybrid"))
    quiz("10", "hybrid")


def hybrid_results(idx) -> None:
    """Hybrid search over the built index, its score breakdown, and the fusion study on the dev questions."""
    ss = st.session_state
    st.text_input(t("ch10.query"), key="h_query", max_chars=500)
    f1, f2, f3 = st.columns(3)
    f1.radio(t("ch10.fusion"), ("convex", "rrf"), key="h_fusion", format_func=lambda x: t(f"ch10.fusion_{x}"))
    f2.slider(t("ch10.rrf_k"), 0, 200, key="h_rrf_k", help=t("ch10.rrf_k_help"))
    f3.slider(t("ch10.k"), 1, 10, key="h_k")
    st.caption(t("ch10.alpha", alpha=idx.alpha))
    result = idx.search(ss["h_query"], "hybrid", ss["h_k"], fusion=ss["h_fusion"], rrf_k=ss["h_rrf_k"])
    st.caption(t("ch10.latency", ms=result.seconds * 1000))
    st.subheader(t("ch10.results"))
    hits_table(result.hits, 80)
    st.subheader(t("ch10.breakdown"))
    st.dataframe(pd.DataFrame(idx.breakdown(ss["h_query"], ss["h_k"], rrf_k=ss["h_rrf_k"])), hide_index=True)
    st.subheader(t("ch10.study_title"))
    study_key = ("fusion_study", ss["h_rrf_k"])
    if st.button(t("ch10.study_run"), key="h_study"):
        ss["h_study_run"] = study_key
    if ss.get("h_study_run") == study_key:
        dev = load_questions(DEV_QUESTIONS)
        rrf_k = ss["h_rrf_k"]
        rows = cached(study_key, lambda p: fusion_study(idx, dev, rrf_k=rrf_k, progress=p), t("ch10.study_run"))
        st.caption(t("ch10.study_cached"))
        st.dataframe(pd.DataFrame(rows), hide_index=True)
        charts.show(st, charts.metric_bars(rows, "method"), width="stretch")


ch = chapter_header("10")
vectors_section(ch)
word2vec_section(ch)
pooling_section(ch)
bm25_section(ch)
hybrid_section(ch)
show_code(ch)
