"""Hands-On LLM ch.5 — clustering and topic modelling of Korean text with BERTopic: Korean embeddings -> UMAP ->
HDBSCAN -> c-TF-IDF over Kiwi morphemes, re-ranked by KeyBERTInspired and MMR (optionally named by the instruct
model). A run takes about a minute on 2 cores (the first one in a process compiles UMAP's numba code), so it goes
behind a button as a job; a fresh page shows the shipped run (assets/precomputed/h5_topics.json)."""

import streamlit as st

from engine.handson import CORPORA, TopicConfig
from ui import topics as view
from ui.i18n import t
from ui.jobs import last_job, run_and_keep
from ui.layout import chapter_header, friendly_errors, live_section, notice, quiz, section_header, seed, show_code
from ui.state import clamped, param

SS = st.session_state


def current() -> dict | None:
    """This session's run, else the shipped one (labelled), else None."""
    if SS.get("h5_run"):
        st.caption(t("h5.live_result"))
        return SS["h5_run"]
    pre = view.shipped()
    return pre.data if pre else None


@live_section
def clusters_section(ch) -> None:
    section_header(ch, "clusters")
    param("cl_corpus", TopicConfig.corpus, str, choices=list(CORPORA))
    clamped("cl_min_size", TopicConfig.min_cluster_size, 3, 40, int)
    param("cl_llm", False, bool)
    c1, c2, c3 = st.columns([2, 2, 1])
    c1.selectbox(t("h5.corpus"), list(CORPORA), key="cl_corpus", format_func=lambda c: t(f"h5.corpus_{c}"))
    c2.slider(t("h5.min_cluster_size"), 3, 40, key="cl_min_size", help=t("h5.min_cluster_size_help"))
    with c3:
        run_seed = seed("cl_seed")
    st.toggle(t("h5.llm"), key="cl_llm", help=t("h5.llm_help"))
    if st.button(t("h5.run"), key="cl_run", type="primary", help=t("h5.run_help")):
        args = (SS["cl_corpus"], SS["cl_min_size"], run_seed, SS["cl_llm"])
        work = lambda p, r, s: view.run(*args, p)  # noqa: E731
        run_and_keep("h5_topics", work, t("h5.running"), "h5_run", heavy=True)
    last_job("h5_topics")
    data = current()
    if data:
        view.topic_map(data)
    else:
        st.info(t("h5.none"), icon="🗺️")
    st.code("python -m engine topics --json", language="bash")
    notice("common.notice", t("h5.notice_clusters"))
    quiz("H5", "clusters")


@live_section
def topics_section(ch) -> None:
    section_header(ch, "topics")
    data = current()
    if not data:
        st.info(t("h5.none"), icon="🏷️")
    else:
        view.topics_table(data)
        ids = [x["topic"] for x in data["topics"]]
        param("tp_topic", ids[0], int, choices=ids)
        topic = st.selectbox(t("h5.pick_topic"), ids, key="tp_topic", format_func=lambda k: view.topic_name(k, data))
        view.representative(data, topic)
    notice("common.notice", t("h5.notice_topics"))
    quiz("H5", "topics")


@live_section
def ctfidf_section(ch) -> None:
    section_header(ch, "ctfidf")
    st.latex(view.FORMULA)
    data = current()
    if not data:
        st.info(t("h5.none"), icon="🧮")
    else:
        ids = [x["topic"] for x in data["topics"]]
        param("cf_topic", ids[-1], int, choices=ids)
        topic = st.selectbox(t("h5.pick_topic"), ids, key="cf_topic", format_func=lambda k: view.topic_name(k, data))
        with friendly_errors():
            view.ctfidf_demo(data, topic)
    notice("common.notice", t("h5.notice_ctfidf"))
    quiz("H5", "ctfidf")


ch = chapter_header("H5")
clusters_section(ch)
topics_section(ch)
ctfidf_section(ch)
with friendly_errors():
    show_code(ch)
