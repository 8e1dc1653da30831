"""Chapter 2 — the transformer, live: tokenizers, positions, attention step by step, masks, real heatmaps."""

import html

import pandas as pd
import streamlit as st

from engine.lm import (
    MASK_KINDS,
    attention_view,
    compare_tokenizers,
    embedding_lookup,
    mask_pattern,
    mlm_vs_clm_example,
    model_attention,
    parallel_pairs,
    position_view,
    token_cost,
)
from ui import charts
from ui.cache import causal_lm, tokenizers
from ui.i18n import t
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, seed, show_code, truncation_note
from ui.state import param

ROLES = {"chat": "SmolLM2-135M-Instruct (chat)", "base-ko": "Gemma-3-270M (base-ko)"}
PALETTE = ["#fde2e4", "#e2ece9", "#dfe7fd", "#fff1c1", "#e8dff5", "#d7f9f1"]


def token_chips(pieces: list[str]) -> str:
    spans = [
        f'<span style="background:{PALETTE[i % len(PALETTE)]};padding:1px 2px;margin:1px;border-radius:3px;'
        f'display:inline-block;color:#111">{html.escape(p).replace(" ", "␣") or "∅"}</span>'
        for i, p in enumerate(pieces[:400])
    ]
    return '<div style="line-height:1.9">' + "".join(spans) + "</div>"


def tokenization_section(ch) -> None:
    """Tokenization."""
    section_header(ch, "tokenization")
    param("tok_text", t("ch2.default_text"), str)
    st.text_area(t("ch2.text"), key="tok_text", height=90)
    with friendly_errors():
        toks = tokenizers(t("common.loading_tokenizers"))
        results, note = compare_tokenizers(st.session_state["tok_text"], toks)
        truncation_note(note)
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("ch2.col_tokenizer"): r.name,
                        t("ch2.col_algorithm"): r.algorithm,
                        t("ch2.col_count"): r.count,
                        t("ch2.col_cpt"): round(r.chars_per_token, 2),
                        t("ch2.col_vocab"): r.vocab_size,
                        "ms": round(r.seconds * 1000, 1),
                    }
                    for r in results
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        for r in results:
            with st.expander(f"{r.name} — {r.count} tokens"):
                st.html(token_chips(r.pieces))
                st.dataframe(
                    pd.DataFrame({"token": r.tokens[:200], "piece": r.pieces[:200], "id": r.ids[:200]}),
                    hide_index=True,
                    width="stretch",
                )
        cost = token_cost(parallel_pairs(), toks)
        charts.show(st, charts.grouped_bars(cost, "tokenizer", "tokens", "lang", t("ch2.cost_title")), width="stretch")
    notice("common.notice", t("ch2.notice_tokens"))
    quiz("02", "tokenization")


def positions_section(ch) -> None:
    """Embeddings and positions."""
    section_header(ch, "positions")
    param("emb_text", t("ch2.default_emb_text"), str)
    st.text_input(t("ch2.emb_text"), key="emb_text", max_chars=2_000)
    with friendly_errors():
        emb = embedding_lookup(causal_lm("chat", t("common.loading_model")), st.session_state["emb_text"])
        st.markdown(t("ch2.emb_shape", V=emb.shape[0], C=emb.shape[1]))
        e1, e2 = st.columns([3, 2])
        e1.dataframe(
            pd.DataFrame(
                {
                    "token": emb.tokens,
                    "id": emb.ids,
                    "‖E[id]‖": [round(n, 3) for n in emb.norms],
                    "E[id][:8]": [", ".join(f"{x:+.3f}" for x in v) for v in emb.vectors],
                }
            ),
            hide_index=True,
            width="stretch",
        )
        charts.show(
            e2,
            charts.heatmap(emb.cosine, emb.tokens, title=t("ch2.emb_cosine"), colorscale="RdBu", zmid=0.0),
            width="stretch",
        )
    param("pos_kind", "sinusoidal", str, choices=("sinusoidal", "learned", "rope"))
    param("pos_T", 32, int)
    param("pos_C", 64, int)
    p1, p2, p3 = st.columns(3)
    p1.radio(
        t("ch2.pos_kind"), ["sinusoidal", "learned", "rope"], key="pos_kind", format_func=lambda k: t(f"ch2.pos_{k}")
    )
    p2.slider(t("ch2.positions"), 2, 256, key="pos_T")
    p3.slider(t("ch2.width"), 2, 256, step=2, key="pos_C")
    T, C, kind = st.session_state["pos_T"], st.session_state["pos_C"], st.session_state["pos_kind"]
    pv = position_view(kind, T, C)
    q1, q2 = st.columns(2)
    title = t("ch2.rope_angles") if kind == "rope" else t("ch2.pos_matrix")
    charts.show(q1, charts.heatmap(pv.matrix, pv.columns, pv.positions, title, "RdBu", 0.0), width="stretch")
    charts.show(
        q2,
        charts.heatmap(pv.similarity, pv.positions, title=t("ch2.pos_similarity"), colorscale="RdBu", zmid=0.0),
        width="stretch",
    )
    notice("common.notice", t(f"ch2.notice_pos_{kind}"))
    quiz("02", "positions")


def attention_section(ch) -> None:
    """Attention step by step."""
    section_header(ch, "attention")
    param("att_text", t("ch2.default_att_text"), str)
    param("att_causal", True)
    param("att_heads", 2, int, choices=(1, 2, 4, 8))
    st.text_input(t("ch2.sentence"), key="att_text", max_chars=500)
    a1, a2, a3 = st.columns(3)
    a1.toggle(t("ch2.causal"), key="att_causal")
    a2.select_slider(t("ch2.heads"), [1, 2, 4, 8], key="att_heads")
    with a3:
        att_seed = seed("att_seed")
    with friendly_errors():
        toks = tokenizers(t("common.loading_tokenizers"))
        av = attention_view(
            st.session_state["att_text"], toks, st.session_state["att_heads"], st.session_state["att_causal"], att_seed
        )
        wt = av.walkthrough
        if wt.truncated_tokens:
            truncation_note(t("ch2.tokens_cut", n=wt.truncated_tokens))
        st.markdown(
            t("ch2.shapes_intro", T=len(wt.tokens), C=wt.config.n_embd, H=wt.config.n_head, D=wt.config.head_dim)
        )
        st.dataframe(pd.DataFrame(wt.head_shapes, columns=["step", "shape"]).astype(str), hide_index=True)
        labels = wt.tokens
        b1, b2, b3 = st.columns(3)
        charts.show(
            b1, charts.heatmap(av.scaled, labels, title="① QKᵀ/√D", colorscale="RdBu", zmid=0.0), width="stretch"
        )
        charts.show(
            b2, charts.heatmap(av.masked, labels, title=t("ch2.masked"), colorscale="RdBu", zmid=0.0), width="stretch"
        )
        charts.show(b3, charts.heatmap(av.weights, labels, title="③ softmax"), width="stretch")
        st.markdown(t("ch2.block_steps"))
        st.dataframe(pd.DataFrame(av.block_rows), hide_index=True, width="stretch")
    notice("common.notice", t("ch2.notice_attention"))
    quiz("02", "attention")


def architectures_section(ch) -> None:
    """Architectures and masks."""
    section_header(ch, "architectures")
    cols = st.columns(len(MASK_KINDS))
    for col, mk in zip(cols, MASK_KINDS, strict=True):
        m = mask_pattern(mk, 6).int().tolist()
        charts.show(col, charts.mask_grid(m, title=mk), width="stretch", key=f"mask_{mk}")
        col.caption(t(f"ch2.mask_{mk}"))
    words = st.session_state["att_text"].split()[:12] or ["the", "cat", "sat"]
    ex = mlm_vs_clm_example(words, 0.3, seed=0)
    st.dataframe(
        pd.DataFrame(
            {
                "token": ex["tokens"],
                "MLM input": ex["mlm"]["input"],
                "MLM target": [x or "" for x in ex["mlm"]["targets"]],
                "CLM target (next)": [*ex["clm"]["targets"], "⟨eos⟩"],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(t("ch2.predictions", mlm=ex["n_predictions"]["mlm"], clm=ex["n_predictions"]["clm"]))
    notice("common.notice", t("ch2.notice_masks"))


def heatmap_section(ch) -> None:
    """Attention in real models."""
    section_header(ch, "heatmap")
    param("hm_role", "base-ko", str, choices=tuple(ROLES))
    param("hm_text", t("ch2.default_hm_text"), str)
    param("hm_layer", 0, int)
    param("hm_head", -1, int)
    h1, h2 = st.columns([2, 1])
    h1.text_input(t("ch2.text"), key="hm_text", max_chars=5_000)
    h2.selectbox(t("common.model"), list(ROLES), format_func=ROLES.get, key="hm_role")
    with friendly_errors():
        lm = causal_lm(st.session_state["hm_role"], t("common.loading_model"))
        n_layers = lm.model.config.num_hidden_layers
        n_heads = lm.model.config.num_attention_heads
        st.session_state["hm_layer"] = min(st.session_state["hm_layer"], n_layers - 1)
        st.session_state["hm_head"] = min(st.session_state["hm_head"], n_heads - 1)
        g1, g2 = st.columns(2)
        g1.slider(t("ch2.layer"), 0, n_layers - 1, key="hm_layer")
        g2.slider(t("ch2.head"), -1, n_heads - 1, key="hm_head", help=t("ch2.head_help"))
        head = None if st.session_state["hm_head"] < 0 else st.session_state["hm_head"]
        am = model_attention(lm, st.session_state["hm_text"], st.session_state["hm_layer"], head)
        if am.truncated_tokens:
            truncation_note(t("ch2.tokens_cut", n=am.truncated_tokens))
        title = f"{ROLES[lm.role]} · layer {am.layer} · " + ("mean of heads" if head is None else f"head {am.head}")
        charts.show(st, charts.heatmap(am.matrix, am.tokens, title=title), width="stretch")
        st.caption(t("common.produced_by", model=ROLES[lm.role], device=lm.device, source=lm.resolved.source))
    notice("common.notice", t("ch2.notice_heatmap"))
    quiz("02", "heatmap")


ch = chapter_header("02")
tokenization_section(ch)
positions_section(ch)
attention_section(ch)
architectures_section(ch)
heatmap_section(ch)
show_code(ch)
