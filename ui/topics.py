"""Hands-On ch.5's page helpers (pages/95_topics.py): the topic map, the topics × representations table (Kiwi vs the
default vectorizer) and c-TF-IDF from scratch next to BERTopic's.

Every result is drawn from one plain dict (`TopicRun.as_dict()`), whichever made it: the shipped run
(assets/precomputed/h5_topics.json) or a run in this session.
"""

from __future__ import annotations

import streamlit as st

from engine.core import load_precomputed
from ui import charts
from ui.i18n import t
from ui.layout import precomputed_note

SS = st.session_state
PRECOMPUTED = "h5_topics"
REPRESENTATIONS = ("ctfidf", "keybert", "mmr", "default")
# c-TF-IDF as BERTopic computes it (both ClassTfidfTransformer switches off): L1 share of the word in the topic × idf
FORMULA = r"W_{x,c} = \frac{n_{x,c}}{\sum_{x'} n_{x',c}} \cdot \log\left(1 + \frac{A}{f_x}\right)"


def shipped():
    pre = load_precomputed(PRECOMPUTED)
    if pre is not None:
        precomputed_note(pre)
    return pre


def topic_name(topic: int, data: dict) -> str:
    if topic == -1:
        return t("h5.outliers")
    words = next((x["words"]["ctfidf"] for x in data["topics"] if x["topic"] == topic), [])
    return f"{topic}: " + " · ".join(words[:3])


def run(corpus: str, min_cluster_size: int, seed: int, llm: bool, progress) -> dict:
    """Work for ui.jobs: one BERTopic run as the page's plain dict."""
    from engine.handson import TopicConfig, run_topics

    cfg = TopicConfig(corpus=corpus, min_cluster_size=min_cluster_size, seed=seed, llm=llm)
    return run_topics(cfg, progress=progress).as_dict()


def topic_map(data: dict) -> None:
    """The 2-D UMAP of every document, coloured by topic (outliers grey), the snippet on hover."""
    import plotly.express as px

    rows = [
        {
            "x": xy[0],
            "y": xy[1],
            "topic": topic_name(k, data),
            "group": g,
            "doc": s,
        }
        for xy, k, g, s in zip(data["coords"], data["doc_topics"], data["groups"], data["snippets"], strict=True)
    ]
    order = sorted({r["topic"] for r in rows}, key=lambda name: (name == t("h5.outliers"), name))
    fig = px.scatter(
        rows,
        x="x",
        y="y",
        color="topic",
        hover_data={"group": True, "doc": True, "x": False, "y": False},
        category_orders={"topic": order},
        labels={
            "x": t("h5.axis_umap1"),
            "y": t("h5.axis_umap2"),
            "topic": t("h5.legend_topic"),
            "group": t("h5.col_group"),
            "doc": t("h5.col_doc"),
        },
        title=t("h5.map_title", n=data["n_docs"], corpus=t(f"h5.corpus_{data['corpus']}")),
    )
    fig.for_each_trace(lambda tr: tr.update(marker_color="lightgrey") if tr.name == t("h5.outliers") else None)
    charts.show(st, fig)
    a = data["agreement"]
    st.caption(
        t(
            "h5.agreement",
            topics=a["n_topics"],
            groups=a["n_groups"],
            ari=f"{a['ari']:.3f}",
            nmi=f"{a['nmi']:.3f}",
            outliers=f"{100 * a['outlier_share']:.0f}",
            seconds=f"{sum(data['seconds'].values()):.0f}",
        )
    )


def topics_table(data: dict) -> None:
    rows = []
    named = any(x.get("label") for x in data["topics"])
    for x in data["topics"]:
        row = {t("h5.col_topic"): topic_name(x["topic"], data).split(":")[0], t("h5.col_size"): x["size"]}
        if named:
            row[t("h5.rep_llm")] = x.get("label") or "—"
        for rep in REPRESENTATIONS:
            row[t(f"h5.rep_{rep}")] = " · ".join(x["words"].get(rep, [])) or "—"
        row[t("h5.col_group")] = f"{x['top_group']} ({100 * x['top_group_share']:.0f}%)"
        rows.append(row)
    charts.table(rows)
    g = data["glued"]
    st.caption(t("h5.glued", kiwi=f"{100 * g['kiwi']:.0f}", default=f"{100 * g['default']:.0f}"))
    if data.get("llm_error"):
        st.warning(t("h5.llm_unavailable", reason=data["llm_error"]), icon="🔌")


def representative(data: dict, topic: int) -> None:
    x = next(x for x in data["topics"] if x["topic"] == topic)
    st.markdown(f"> {x['representative']}")


def ctfidf_demo(data: dict, topic: int) -> None:
    """The chosen topic's top words: weights from scratch next to BERTopic's, recomputed here on the shipped words'
    counts (the same corpus and topics)."""
    import hashlib

    from engine.handson import ctfidf_comparison
    from ui.cache import cached

    run_key = hashlib.sha256(repr((data["corpus"], data["doc_topics"], data["config"])).encode()).hexdigest()[:16]
    rows = cached(("h5_ctfidf", run_key, topic), lambda p: ctfidf_comparison(data, topic), t("h5.ctfidf_loading"))
    charts.table(
        rows,
        [t("h5.col_word"), t("h5.col_count"), t("h5.col_tf"), t("h5.col_idf"), t("h5.col_mine"), t("h5.col_theirs")],
    )
    st.caption(t("h5.max_diff", diff=f"{data['ctfidf_max_diff']:.1e}"))
