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
    Word2VecConfig,
    bm25_ranking,
    check_query,
    constitution_bm25,
    fusion_study,
    kiwi,
    load_questions,
    pooled_embeddings,
    text_vectors,
    train_word2vec,
    word_map,
)
from ui import charts
from ui.cache import cached
from ui.i18n import t
from ui.jobs import run_job, show_job_status
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, show_code
from ui.search import build_index_button, constitution_index, hits_table, metrics_chart, shipped, show_rows
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
        with st.spinner(t("ch10.loading_kiwi")):  # the first Kiwi takes seconds: say so
            cached(("kiwi",), lambda p: kiwi(), "Kiwi")
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
    slot = st.container()
    with friendly_errors():
        if st.button(t("ch10.w2v_train"), type="primary", key="w_train"):
            train = lambda p, on_row, stop: train_word2vec(load_constitution(), cfg, p, stop)  # noqa: E731
            if run_job("ch10_w2v", train, label=t("ch10.w2v_train"), shared_key=w2v_key).complete:
                ss["w_trained"] = w2v_key
        show_job_status("ch10_w2v")
        if ss.get("w_trained") == w2v_key:
            w2v = cached(w2v_key, lambda p: train_word2vec(load_constitution(), cfg, p), t("ch10.w2v_train"))
            st.caption(t("ch10.w2v_stats", vocab=len(w2v.vocab), seconds=w2v.seconds, loss=w2v.losses[-1]))
            wm = word_map(w2v, ss["w_word"], 10)
            word_map_view(wm.neighbours, wm.words, wm.xy)
        else:
            with slot:
                pre = shipped("ch10_word2vec")
            if pre is None:
                st.caption(t("ch10.w2v_not_trained"))
            else:
                d = pre.data
                st.caption(t("ch10.w2v_stats", vocab=d["vocab"], seconds=d["seconds"], loss=d["loss"]))
                c = d["config"]
                if (d["word"], c["dim"], c["window"], c["epochs"]) != (ss["w_word"].strip(), *w2v_key[1:]):
                    st.caption(t("ch10.w2v_shipped_other", word=d["word"], **d["config"]))
                word_map_view(d["neighbours"], d["words"], np.array(d["xy"]))
    notice("common.notice", t("ch10.notice_w2v"))
    quiz("10", "word2vec")


def word_map_view(neighbours, words, xy) -> None:
    """The nearest words as a table, and the word among its neighbours and frequent words on a 2-D map."""
    n1, n2 = st.columns([1, 2])
    n1.dataframe(pd.DataFrame(neighbours, columns=[t("ch10.w2v_neighbours"), "cos"]).round(3), hide_index=True)
    labels = {"x": t("ch10.pc1"), "y": t("ch10.pc2")}
    fig = px.scatter(x=xy[:, 0], y=xy[:, 1], text=words, title=t("ch10.w2v_projection"), labels=labels)
    fig.update_traces(textposition="top center")
    charts.show(n2, fig, width="stretch")


def pooling_section(ch) -> None:
    """Sentence embeddings and pooling."""
    section_header(ch, "pooling")
    param("p_text", t("ch10.pool_sentences"), str)
    param("p_pool", "mean", str, choices=POOLINGS)
    p1, p2 = st.columns([3, 1])
    p1.text_area(t("ch10.sentences"), key="p_text", height=120, max_chars=4000)
    p2.radio(t("ch10.pooling"), POOLINGS, key="p_pool", format_func=lambda x: t(f"ch10.pool_{x}"))
    with friendly_errors():
        embedder = cached(
            ("sentence_embedder", "embed"), lambda p: load_sentence_embedder("embed", p), t("common.loading_model")
        )
        text, pooling = st.session_state["p_text"], st.session_state["p_pool"]
        # Encoding ten long sentences takes a second or two on 2 cores: once per (text, pooling), not on every rerun
        with st.spinner(t("ch10.encoding")):
            pe = cached(
                ("pooled", text, pooling), lambda p: pooled_embeddings(embedder, text.splitlines(), pooling), ""
            )
        labels = [s[:24] for s in pe.sentences]
        title = t("ch10.heatmap", pooling=t(f"ch10.pool_{pe.pooling}"))
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
            show_rows(ranking.rows, where=col)
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
            pre = shipped("ch10_hybrid")
            build_index_button(t("ch10.build_index"), t("ch10.building"), "h_build")
            if pre is not None:
                shipped_hybrid(pre.data)
        else:
            hybrid_results(idx)
    notice("common.notice", t("ch10.notice_hybrid"))
    quiz("10", "hybrid")


def shipped_hybrid(d: dict) -> None:
    """What the default query gives once the index is built: hits, breakdown, and the fusion study."""
    st.caption(t("ch10.index_shipped"))
    st.caption(
        t("ch10.shipped_query", query=d["query"], fusion=t(f"ch10.fusion_{d['fusion']}"), rrf_k=d["rrf_k"], k=d["k"])
    )
    st.caption(t("ch10.alpha", alpha=d["alpha"]) + " · " + t("ch10.latency", ms=d["ms"]))
    st.subheader(t("ch10.results"))
    hits_table(d["hits"], 80)
    st.subheader(t("ch10.breakdown"))
    show_rows(d["breakdown"])
    st.subheader(t("ch10.study_title"))
    study_view(d["study"])


def study_view(rows: list[dict]) -> None:
    show_rows(rows)
    charts.show(st, metrics_chart(rows), width="stretch")


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
    show_rows(idx.breakdown(ss["h_query"], ss["h_k"], rrf_k=ss["h_rrf_k"]))
    st.subheader(t("ch10.study_title"))
    rrf_k = ss["h_rrf_k"]
    study_key = ("fusion_study", rrf_k)
    slot = st.container()
    if st.button(t("ch10.study_run"), key="h_study"):
        study = lambda p, on_row, stop: fusion_study(idx, load_questions(DEV_QUESTIONS), rrf_k=rrf_k, progress=p)  # noqa: E731
        if run_job("ch10_study", study, label=t("ch10.study_run"), shared_key=study_key).complete:
            ss["h_study_run"] = study_key
    show_job_status("ch10_study")
    if ss.get("h_study_run") == study_key:
        st.caption(t("ch10.study_cached"))
        study_view(cached(study_key, lambda p: fusion_study(idx, load_questions(DEV_QUESTIONS), rrf_k=rrf_k), ""))
    else:
        with slot:
            pre = shipped("ch10_hybrid")
        if pre is not None:
            study_view(pre.data["study"])


ch = chapter_header("10")
vectors_section(ch)
word2vec_section(ch)
pooling_section(ch)
bm25_section(ch)
hybrid_section(ch)
show_code(ch)
