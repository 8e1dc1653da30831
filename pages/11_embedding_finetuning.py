"""Chapter 11 — your own embedding model: MNR fine-tuning, an LM turned embedding model, reranking, Korean search."""

import pandas as pd
import streamlit as st

from engine.core import InputError, load_constitution
from engine.models import load_sentence_embedder
from engine.retrieval import (
    DEV_QUESTIONS,
    METHODS,
    TEST_QUESTIONS,
    TrainConfig,
    build_index,
    evaluate_pipelines,
    finetune_mnr,
    hit_rates,
    index_built,
    lm_mean_pooled,
    load_index,
    load_questions,
    load_reranker,
    nearest_morphemes,
    synthetic_text_pairs,
    train_encoder,
    train_reranker,
)
from ui import charts
from ui.cache import causal_lm, shared
from ui.i18n import t
from ui.layout import chapter_header, friendly_errors, notice, progress_callback, quiz, section_header, show_code
from ui.search import hits_table
from ui.state import param

ch = chapter_header("11")


def _run(key: tuple, factory, label: str):
    bar = st.progress(0.0, text=label)
    try:
        return shared(key, factory, progress_callback(bar))
    finally:
        bar.empty()


def _index():
    if not index_built("constitution"):
        return None
    return shared(("search_index", "constitution"), lambda p: load_index("constitution", p), lambda *_: None)


def _metrics_table(before: dict, after: dict) -> pd.DataFrame:
    return pd.DataFrame([{"": t("ch11.before"), **before}, {"": t("ch11.after"), **after}]).round(3)


# --- contrastive learning: MNR fine-tuning of MiniLM ------------------------------------------------------------
section_header(ch, "contrastive")
param("m_pairs", 192, int)
param("m_epochs", 1, int)
param("m_lr", 1e-4, float)
c1, c2, c3 = st.columns(3)
c1.select_slider(t("ch11.pairs"), [64, 128, 192, 256, 384], key="m_pairs")
c2.slider(t("ch11.epochs"), 1, 3, key="m_epochs")
c3.select_slider(t("ch11.lr"), [3e-5, 1e-4, 3e-4], key="m_lr")
mnr_key = ("mnr", st.session_state["m_pairs"], st.session_state["m_epochs"], st.session_state["m_lr"])
if st.button(t("ch11.mnr_run"), type="primary", key="m_run"):
    st.session_state["m_done"] = mnr_key
if st.session_state.get("m_done") == mnr_key:
    with friendly_errors():

        def _finetune(p):
            docs = load_constitution()
            pairs = synthetic_text_pairs(docs, st.session_state["m_pairs"], progress=lambda f, m: p(0.05 * f, m))
            model = load_sentence_embedder("embed")  # a fresh copy: the shared one stays untouched
            return finetune_mnr(
                model,
                docs,
                pairs,
                load_questions(DEV_QUESTIONS),
                epochs=st.session_state["m_epochs"],
                lr=st.session_state["m_lr"],
                progress=p,
            )

        res = _run(mnr_key, _finetune, t("ch11.mnr_run"))
        st.caption(t("ch11.mnr_stats", pairs=res.pairs, steps=res.steps, seconds=res.seconds))
        st.dataframe(_metrics_table(res.before, res.after), hide_index=True)
        if res.losses:
            st.plotly_chart(charts.line(res.losses, "step", "loss", title=t("ch11.loss_curve")), width="stretch")
        with st.expander(t("ch11.examples")):
            st.dataframe(pd.DataFrame(res.examples, columns=["query", "doc_id"]), hide_index=True)
else:
    st.caption(t("ch11.mnr_idle"))
notice("common.notice", t("ch11.notice_mnr"))
quiz("11", "contrastive")

# --- a language model turned into an embedding model -------------------------------------------------------------
section_header(ch, "lm_embedding")
with friendly_errors():
    idx = _index()
    if idx is None:
        st.info(t("ch11.index_missing"))
        if st.button(t("ch11.build"), type="primary", key="l_build"):
            _run(("search_index", "constitution"), lambda p: build_index("constitution", p), t("ch11.building"))
            st.rerun()
    else:
        info = idx.korean.info
        if info:
            st.caption(t("ch11.build_info", seconds=info.seconds, pairs=info.pairs, vocab=info.vocab, kiwi=info.kiwi))
            st.plotly_chart(charts.line(info.history, "epoch", "loss", title=t("ch11.loss_curve")), width="stretch")
        param("l_word", "세금", str)
        st.text_input(t("ch11.morpheme"), key="l_word", max_chars=20)
        try:
            near = nearest_morphemes(st.session_state["l_word"], top_n=8)
            st.dataframe(
                pd.DataFrame([{"morpheme": form, "cos": round(cos, 3)} for form, cos in near]), hide_index=True
            )
            st.caption(t("ch11.neighbours_of"))
        except InputError:
            st.caption(t("ch11.morpheme_unknown", word=st.session_state["l_word"].strip()))
        if st.button(t("ch11.zero_shot_run"), key="l_zero"):
            st.session_state["l_zero_done"] = True
        if st.session_state.get("l_zero_done"):

            def _compare(p):
                docs, dev = idx.docs, load_questions(DEV_QUESTIONS)
                zero = train_encoder(docs, TrainConfig(epochs=0), p, vectors=idx.korean.vectors)
                return hit_rates(zero.encode, docs, dev), hit_rates(idx.korean.encode, docs, dev)

            before, after = _run(("korean_zero_shot",), _compare, t("ch11.zero_shot_run"))
            st.subheader(t("ch11.before_after"))
            st.dataframe(_metrics_table(before, after), hide_index=True)
        param("l_layer", 6, int)
        st.slider(t("ch11.gemma_layer"), 1, 18, key="l_layer")
        if st.button(t("ch11.gemma_run"), key="l_gemma"):
            st.session_state["l_gemma_done"] = True
        if st.session_state.get("l_gemma_done"):
            lm = causal_lm("base-ko", t("common.loading_model"))
            texts = [
                "대통령의 임기는 5년으로 한다.",
                "대통령은 몇 년 동안 일하나요?",
                "모든 국민은 종교의 자유를 가진다.",
                "국교는 인정되지 아니한다.",
                "국회의원의 임기는 4년으로 한다.",
            ]
            vec = lm_mean_pooled(lm, texts, layer=st.session_state["l_layer"])
            st.plotly_chart(
                charts.heatmap(
                    (vec @ vec.T).round(3),
                    [x[:14] for x in texts],
                    title=t("ch11.gemma_heatmap", layer=st.session_state["l_layer"]),
                ),
                width="stretch",
            )
notice("common.notice", t("ch11.notice_lm"))
quiz("11", "lm_embedding")

# --- rerankers: the book's cross-encoder (trained live) and the late-interaction LM reranker of the index ----------
section_header(ch, "rerank")
with friendly_errors():
    idx = _index()
    if idx is None:
        st.info(t("ch11.index_missing"))
    else:
        # The cross-encoder is this section's lesson; it never replaces idx.reranker (the LM late-interaction
        # reranker that `search --method hybrid` uses), so both can be compared side by side.
        ce = shared(("cross_encoder", "constitution"), lambda p: load_reranker(idx.docs), lambda *_: None)
        if st.button(t("ch11.rerank_run"), type="primary", key="r_train"):
            ce = _run(("cross_encoder_train",), lambda p: train_reranker(idx, progress=p), t("ch11.rerank_run"))
            st.session_state["r_trained"] = True
        if st.session_state.get("r_trained"):
            ce = shared(("cross_encoder_train",), lambda p: train_reranker(idx, progress=p), lambda *_: None)
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
            st.caption(
                t(
                    "ch11.lm_rerank_info",
                    model=lm.info.get("model", "Gemma-3-270M"),
                    weights=", ".join(f"{w:g}" for w in lm.weights),
                    epochs=len(idx.adapter_history),
                )
            )
            param("r_query", t("ch11.rerank_query"), str)
            st.text_input(t("ch11.query"), key="r_query", max_chars=500)
            if lm.encoder is None:  # first use in this process: load Gemma-3-270M once (≈10 s)
                with st.spinner(t("common.loading_model")):
                    lm.ensure_encoder()
            st.dataframe(pd.DataFrame(idx.rerank_breakdown(st.session_state["r_query"], 5)), hide_index=True)
        if st.button(t("ch11.rerank_eval"), key="r_eval"):
            st.session_state["r_eval_done"] = True
        if st.session_state.get("r_eval_done"):
            rows = _run(
                ("rerank_eval", ce.mix if ce else None, lm is not None),
                lambda p: evaluate_pipelines(idx, ce, load_questions(DEV_QUESTIONS)),
                t("ch11.rerank_eval"),
            )
            st.dataframe(
                pd.DataFrame(rows).rename(columns={"ms": t("ch11.ms_per_query")}),
                hide_index=True,
            )
notice("common.notice", t("ch11.notice_rerank"))
quiz("11", "rerank")

# --- Korean hybrid search, measured -------------------------------------------------------------------------------
section_header(ch, "korean_search")
with friendly_errors():
    idx = _index()
    if idx is None:
        st.info(t("ch11.index_missing"))
    else:
        param("s_query", t("ch11.default_query"), str)
        param("s_method", "hybrid", str, choices=METHODS)
        s1, s2 = st.columns([3, 1])
        s1.text_input(t("ch11.query"), key="s_query", max_chars=500)
        methods = [m for m in METHODS if m != "rerank" or idx.reranker is not None]
        if st.session_state["s_method"] not in methods:
            st.session_state["s_method"] = "hybrid"
        s2.radio(t("ch11.method"), methods, key="s_method", format_func=lambda m: t(f"ch11.method_{m}"))
        with st.spinner(t("common.loading_model")):  # `rerank` loads Gemma-3-270M on its first query (≈10 s)
            res = idx.search(st.session_state["s_query"], st.session_state["s_method"], 5)
        for note in res.notes:
            st.caption("ℹ️ " + note)
        st.caption(f"{res.seconds * 1000:.1f} ms")
        hits_table(res.hits, 90)
        st.subheader(t("ch11.metrics_title"))
        if st.button(t("ch11.metrics_run"), key="s_eval"):
            st.session_state["s_eval_done"] = True
        if st.session_state.get("s_eval_done"):

            def _both(p):
                rows = []
                for i, (name, path) in enumerate((("dev", DEV_QUESTIONS), ("test (held-out)", TEST_QUESTIONS))):
                    p(i / 2, name)
                    for method, m in idx.evaluate(load_questions(path), tuple(methods)).items():
                        rows.append({"set": name, "method": method, **m})
                return rows

            rows = _run(("korean_eval", tuple(methods)), _both, t("ch11.metrics_run"))
            st.dataframe(pd.DataFrame(rows), hide_index=True)
            st.plotly_chart(
                charts.grouped_bars(
                    [
                        {"x": f"{r['set']} · {r['method']}", "metric": k, "value": r[k]}
                        for r in rows
                        for k in ("hit@1", "hit@5")
                    ],
                    "x",
                    "value",
                    "metric",
                ),
                width="stretch",
            )
notice("common.notice", t("ch11.notice_search"))
quiz("11", "korean_search")
show_code(ch)
