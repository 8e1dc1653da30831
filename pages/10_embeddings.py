"""Chapter 10 — from one-hot to hybrid search: text vectors, word2vec, pooling, BM25, dense and fusion."""

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from engine.core import load_constitution
from engine.models import load_sentence_embedder
from engine.retrieval import (
    DEV_QUESTIONS,
    POOLINGS,
    BM25Index,
    Word2VecConfig,
    bm25_scores,
    build_index,
    fusion_study,
    get_tokenizer,
    index_built,
    load_index,
    load_questions,
    pooled_embeddings,
    text_vectors,
    train_word2vec,
)
from ui import charts
from ui.cache import shared
from ui.i18n import t
from ui.layout import chapter_header, friendly_errors, notice, progress_callback, quiz, section_header, show_code
from ui.search import hits_table
from ui.state import param

ch = chapter_header("10")
TOKS = ("kiwi", "whitespace", "kiwi-all")


def _run(key: tuple, factory, label: str):
    """A cached engine result; the first caller sees a progress bar."""
    bar = st.progress(0.0, text=label)
    try:
        return shared(key, factory, progress_callback(bar))
    finally:
        bar.empty()


# --- one-hot, bag of words, TF-IDF ------------------------------------------------------------------------------
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
    tab1.plotly_chart(charts.heatmap(tv.one_hot, tv.vocab, tv.tokens[0]), width="stretch")
    tab2.dataframe(pd.DataFrame(tv.bow.astype(int), index=labels, columns=tv.vocab), width="stretch")
    tab3.dataframe(pd.DataFrame(tv.tfidf.round(3), index=labels, columns=tv.vocab), width="stretch")
    d1, d2 = st.columns(2)
    d1.plotly_chart(charts.heatmap(tv.cosine_bow.round(3), labels, title=t("ch10.cos_bow")), width="stretch")
    d2.plotly_chart(charts.heatmap(tv.cosine_tfidf.round(3), labels, title=t("ch10.cos_tfidf")), width="stretch")
notice("common.notice", t("ch10.notice_vectors"))
quiz("10", "vectors")

# --- word2vec -----------------------------------------------------------------------------------------------------
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
cfg = Word2VecConfig(
    dim=st.session_state["w_dim"], window=st.session_state["w_window"], epochs=st.session_state["w_epochs"]
)
w2v_key = ("w2v", cfg.dim, cfg.window, cfg.epochs)
if st.button(t("ch10.w2v_train"), type="primary", key="w_train"):
    st.session_state["w_trained"] = w2v_key
if st.session_state.get("w_trained") == w2v_key:
    with friendly_errors():
        w2v = _run(w2v_key, lambda p: train_word2vec(load_constitution(), cfg, p), t("ch10.w2v_train"))
        st.caption(t("ch10.w2v_stats", vocab=len(w2v.vocab), seconds=w2v.seconds, loss=w2v.losses[-1]))
        n1, n2 = st.columns([1, 2])
        near = w2v.neighbours(st.session_state["w_word"].strip(), 10)
        n1.dataframe(pd.DataFrame(near, columns=[t("ch10.w2v_neighbours"), "cos"]).round(3), hide_index=True)
        words = [st.session_state["w_word"].strip()] + [w for w, _ in near] + w2v.vocab[:25]
        words = list(dict.fromkeys(words))
        xy = w2v.project_2d(words)
        fig = px.scatter(x=xy[:, 0], y=xy[:, 1], text=words, title=t("ch10.w2v_projection"))
        fig.update_traces(textposition="top center")
        n2.plotly_chart(fig, width="stretch")
else:
    st.caption(t("ch10.w2v_not_trained"))
notice("common.notice", t("ch10.notice_w2v"))
quiz("10", "word2vec")

# --- sentence embeddings and pooling ------------------------------------------------------------------------------
section_header(ch, "pooling")
param("p_text", t("ch10.pool_sentences"), str)
param("p_pool", "mean", str, choices=POOLINGS)
p1, p2 = st.columns([3, 1])
p1.text_area(t("ch10.sentences"), key="p_text", height=120, max_chars=4000)
p2.radio(t("ch10.pooling"), POOLINGS, key="p_pool")
with friendly_errors():
    embedder = _run(
        ("sentence_embedder", "embed"), lambda p: load_sentence_embedder("embed", p), t("common.loading_model")
    )
    pe = pooled_embeddings(embedder, st.session_state["p_text"].splitlines(), st.session_state["p_pool"])
    labels = [s[:24] for s in pe.sentences]
    st.plotly_chart(
        charts.heatmap(pe.similarity.round(3), labels, title=t("ch10.heatmap", pooling=pe.pooling)),
        width="stretch",
    )
    with st.expander(t("ch10.tokens_seen")):
        for s, toks in zip(pe.sentences, pe.tokens, strict=True):
            st.markdown(f"**{s}** → `{' '.join(toks)}`")
    st.caption(t("common.produced_by", model="all-MiniLM-L6-v2", device=str(embedder.device), source="offline"))
notice("common.notice", t("ch10.notice_pooling"))
quiz("10", "pooling")

# --- BM25: whitespace vs morphemes --------------------------------------------------------------------------------
section_header(ch, "bm25")
param("b_query", t("ch10.default_query"), str)
param("b_k", 5, int)
st.text_input(t("ch10.query"), key="b_query", max_chars=500)
st.slider(t("ch10.k"), 1, 10, key="b_k")
with friendly_errors():
    from engine.retrieval import check_query

    query, notes = check_query(st.session_state["b_query"])
    for note in notes:
        st.caption("ℹ️ " + note)
    docs = load_constitution()
    cols = st.columns(2)
    for col, tok_name in zip(cols, ("whitespace", "kiwi"), strict=True):
        tok = get_tokenizer(tok_name)
        index = _run(("bm25", tok_name), lambda p, tok=tok: BM25Index.build([tok(d.text) for d in docs]), "BM25")
        qt = tok(query)
        scores = index.scores(qt)
        col.subheader(t("ch10.bm25_side", tok=t(f"ch10.tok_{tok_name}")))
        col.caption(t("ch10.query_tokens", tokens=" · ".join(qt)))
        order = np.argsort(-scores, kind="stable")[: st.session_state["b_k"]]
        col.dataframe(
            pd.DataFrame(
                [
                    {"doc_id": docs[i].doc_id, "BM25": round(float(scores[i]), 3), "text": docs[i].text[:60]}
                    for i in order
                ]
            ),
            hide_index=True,
        )
        reference = bm25_scores(index.stats, qt)
        col.caption(
            t(
                "ch10.bm25_equal",
                equal=bool(np.array_equal(reference, scores)),
                diff=float(np.abs(reference - scores).max()),
            )
        )
notice("common.notice", t("ch10.notice_bm25"))
quiz("10", "bm25")

# --- dense and hybrid ---------------------------------------------------------------------------------------------
section_header(ch, "hybrid")
param("h_query", t("ch10.default_query"), str)
param("h_fusion", "convex", str, choices=("convex", "rrf"))
param("h_rrf_k", 60, int)
param("h_k", 5, int)
with friendly_errors():
    idx = (
        shared(("search_index", "constitution"), lambda p: load_index("constitution", p), lambda *_: None)
        if index_built("constitution")
        else None
    )
    if idx is None:
        st.info(t("ch10.index_missing"))
        if st.button(t("ch10.build_index"), type="primary", key="h_build"):
            idx = _run(("search_index", "constitution"), lambda p: build_index("constitution", p), t("ch10.building"))
            st.rerun()
    else:
        st.text_input(t("ch10.query"), key="h_query", max_chars=500)
        f1, f2, f3 = st.columns(3)
        f1.radio(t("ch10.fusion"), ("convex", "rrf"), key="h_fusion", format_func=lambda x: t(f"ch10.fusion_{x}"))
        f2.slider(t("ch10.rrf_k"), 0, 200, key="h_rrf_k", help=t("ch10.rrf_k_help"))
        f3.slider(t("ch10.k"), 1, 10, key="h_k")
        st.caption(t("ch10.alpha", alpha=idx.alpha))
        result = idx.search(
            st.session_state["h_query"],
            "hybrid",
            st.session_state["h_k"],
            fusion=st.session_state["h_fusion"],
            rrf_k=st.session_state["h_rrf_k"],
        )
        st.caption(t("ch10.latency", ms=result.seconds * 1000))
        st.subheader(t("ch10.results"))
        hits_table(result.hits, 80)
        st.subheader(t("ch10.breakdown"))
        st.dataframe(
            pd.DataFrame(
                idx.breakdown(st.session_state["h_query"], st.session_state["h_k"], rrf_k=st.session_state["h_rrf_k"])
            ),
            hide_index=True,
        )
        st.subheader(t("ch10.study_title"))
        study_key = ("fusion_study", st.session_state["h_rrf_k"])
        if st.button(t("ch10.study_run"), key="h_study"):
            st.session_state["h_study_run"] = study_key
        if st.session_state.get("h_study_run") == study_key:
            dev = load_questions(DEV_QUESTIONS)
            rows = _run(
                study_key,
                lambda p: fusion_study(idx, dev, rrf_k=st.session_state["h_rrf_k"], progress=p),
                t("ch10.study_run"),
            )
            st.caption(t("ch10.study_cached"))
            st.dataframe(pd.DataFrame(rows), hide_index=True)
            st.plotly_chart(
                charts.grouped_bars(
                    [{"method": r["method"], "metric": m, "value": r[m]} for r in rows for m in ("hit@1", "hit@5")],
                    "method",
                    "value",
                    "metric",
                ),
                width="stretch",
            )
notice("common.notice", t("ch10.notice_hybrid"))
quiz("10", "hybrid")
show_code(ch)
