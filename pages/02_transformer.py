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
    model_attentions,
    parallel_pairs,
    position_view,
    token_cost,
)
from ui import charts
from ui.cache import causal_lm, tokenizers
from ui.flow import flow_section
from ui.i18n import t
from ui.jobs import STOPPED, last_job, run_job, show_job_status
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, seed, show_code, truncation_note
from ui.state import param, sync

MODELS = {"chat": "SmolLM2-135M-Instruct", "base-ko": "Gemma-3-270M"}
PALETTE = ["#fde2e4", "#e2ece9", "#dfe7fd", "#fff1c1", "#e8dff5", "#d7f9f1"]


def tok_name(name: str) -> str:
    """A tokenizer's display name in the learner's language ("SmolLM2 (byte-level BPE)" -> ch2.tok_smollm2)."""
    return t(f"ch2.tok_{name.split()[0].lower()}")


def shown(text: str) -> str:
    return text.replace(" ", "␣").replace("\n", "↵") or "∅"


def token_chips(groups) -> str:
    """One chip per readable piece; byte pieces of one character share a dashed chip, raw tokens on hover."""
    spans = []
    for i, g in enumerate(groups):
        tip = " ".join(g.raw) + (f" · ID {' '.join(map(str, g.ids))}" if g.ids else "")
        tip += f" · {t('ch2.chip_bytes')} {g.hex}" if g.hex else ""
        border = "border:1px dashed #444;" if len(g.positions) > 1 else ""
        spans.append(
            f'<span title="{html.escape(tip)}" style="background:{PALETTE[i % len(PALETTE)]};{border}padding:1px 2px;'
            f'margin:1px;border-radius:3px;display:inline-block;color:#111">{html.escape(shown(g.text))}</span>'
        )
    return '<div style="line-height:1.9">' + "".join(spans) + "</div>"


def token_table(groups) -> pd.DataFrame:
    """One row per readable piece: its text, raw vocabulary entries, ids and bytes (empty columns dropped)."""
    rows = [(shown(g.text), " ".join(g.raw), " ".join(map(str, g.ids)), g.hex) for g in groups]
    frame = pd.DataFrame(rows, columns=[t("ch2.col_text"), t("ch2.col_raw"), "ID", t("ch2.col_bytes")])
    return frame.loc[:, (frame != "").any()]


def axes(fig, x: str = "ch2.key", y: str = "ch2.query"):
    """Axis titles from the strings; by default an attention matrix's (rows are queries, columns are keys)."""
    return fig.update_layout(xaxis_title=t(x), yaxis_title=t(y))


@st.fragment
def live_tokens() -> None:
    """The text box and its tokens rerun alone as the learner types (`live`: committed after a 250 ms pause)."""
    param("tok_text", t("ch2.default_text"), str)
    st.text_input(t("ch2.tok_text"), key="tok_text", live=True, help=t("ch2.text_live_help"))
    sync(["tok_text"])  # a fragment rerun skips app.py's sync: keep the share link current here
    with friendly_errors():
        toks = tokenizers(t("common.loading_tokenizers"))
        results, note = compare_tokenizers(st.session_state["tok_text"], toks)
        truncation_note(note)
        charts.table(
            [
                {
                    t("ch2.col_tokenizer"): tok_name(r.name),
                    t("ch2.col_algorithm"): t(f"ch2.algo_{r.name.split()[0].lower()}"),
                    t("ch2.col_count"): r.count,
                    t("ch2.col_cpt"): round(r.chars_per_token, 2),
                    t("ch2.col_vocab"): "—" if r.vocab_size is None else f"{r.vocab_size:,}",
                    "ms": round(r.seconds * 1000, 1),
                }
                for r in results
            ]
        )
        if any(r.vocab_size is None for r in results):
            st.caption(t("ch2.vocab_none"))
        for r in results:
            with st.expander(t("ch2.tokens_of", name=tok_name(r.name), n=r.count)):
                st.html(token_chips(r.groups))
                st.dataframe(token_table(r.groups), hide_index=True, width="stretch")
        st.caption(t("ch2.chips_help"))


def tokenization_section(ch) -> None:
    """Tokenization."""
    section_header(ch, "tokenization")
    live_tokens()
    with friendly_errors():
        toks = tokenizers(t("common.loading_tokenizers"))
        rows = [
            {**r, "tokenizer": tok_name(r["tokenizer"]), "lang": t(f"ch2.lang_{r['lang']}")}
            for r in token_cost(parallel_pairs(), toks)
        ]
        labels = {"tokenizer": t("ch2.col_tokenizer"), "tokens": t("ch2.col_count"), "lang": t("ch2.col_lang")}
        fig = charts.grouped_bars(rows, "tokenizer", "tokens", "lang", t("ch2.cost_title"), labels=labels)
        charts.show(st, fig, width="stretch")
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
        first8 = [", ".join(f"{x:+.3f}" for x in v) for v in emb.vectors]
        rows = zip(emb.tokens, emb.hex, emb.ids, [round(n, 3) for n in emb.norms], first8, strict=True)
        with e1:
            charts.table(rows, [t("ch2.col_token"), t("ch2.col_bytes"), "ID", t("ch2.col_norm"), t("ch2.col_first8")])
        cosine = charts.heatmap(emb.cosine, emb.tokens, None, t("ch2.emb_cosine"), "RdBu", 0.0)
        charts.show(e2, axes(cosine, "ch2.col_token", "ch2.col_token"), width="stretch")
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
    matrix = charts.heatmap(pv.matrix, pv.columns, pv.positions, title, "RdBu", 0.0)
    charts.show(
        q1, axes(matrix, "ch2.axis_pair" if kind == "rope" else "ch2.axis_dim", "ch2.axis_pos"), width="stretch"
    )
    sim = charts.heatmap(pv.similarity, pv.positions, None, t("ch2.pos_similarity"), "RdBu", 0.0)
    charts.show(q2, axes(sim, "ch2.axis_pos", "ch2.axis_pos"), width="stretch")
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
        step, shape = t("ch2.col_step"), t("ch2.col_shape")
        st.dataframe(pd.DataFrame(wt.head_shapes, columns=[step, shape]).astype(str), hide_index=True)
        labels = wt.tokens
        b1, b2, b3 = st.columns(3)
        charts.show(b1, axes(charts.heatmap(av.scaled, labels, None, "① QKᵀ/√D", "RdBu", 0.0)), width="stretch")
        charts.show(b2, axes(charts.heatmap(av.masked, labels, None, t("ch2.masked"), "RdBu", 0.0)), width="stretch")
        charts.show(b3, axes(charts.heatmap(av.weights, labels, title="③ softmax")), width="stretch")
        st.markdown(t("ch2.block_steps"))
        names = {"step": step, "shape": shape, "mean": t("ch2.col_mean"), "std": t("ch2.col_std")}
        st.dataframe(pd.DataFrame(av.block_rows).rename(columns=names), hide_index=True, width="stretch")
    notice("common.notice", t("ch2.notice_attention"))
    quiz("02", "attention")


def architectures_section(ch) -> None:
    """Architectures and masks."""
    section_header(ch, "architectures")
    cols = st.columns(len(MASK_KINDS))
    for col, mk in zip(cols, MASK_KINDS, strict=True):
        m = mask_pattern(mk, 6).int().tolist()
        fig = charts.mask_grid(m, t(f"ch2.mask_name_{mk}"), query=t("ch2.query"), key=t("ch2.key"))
        charts.show(col, fig, width="stretch", key=f"mask_{mk}")
        col.caption(t(f"ch2.mask_{mk}"))
    words = st.session_state["att_text"].split()[:12] or t("ch2.default_att_text").split()
    ex = mlm_vs_clm_example(words, 0.3, seed=0)
    st.dataframe(
        pd.DataFrame(
            {
                t("ch2.col_token"): ex["tokens"],
                t("ch2.col_mlm_input"): ex["mlm"]["input"],
                t("ch2.col_mlm_target"): [x or "" for x in ex["mlm"]["targets"]],
                t("ch2.col_clm_target"): [*ex["clm"]["targets"], "⟨eos⟩"],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(t("ch2.predictions", mlm=ex["n_predictions"]["mlm"], clm=ex["n_predictions"]["clm"]))
    notice("common.notice", t("ch2.notice_masks"))


def attention_stack(lm, text: str):
    """Every layer's attention for (model, text): one forward pass with progress and Stop, kept in the session so
    the layer/head sliders are instant; the default text's result is shared by every session."""
    key = (lm.role, text)
    job = last_job("ch2_hm")
    if job.complete and job.result[0] == key:
        return job.result[1]
    if job.status == STOPPED and not st.button(t("ch2.hm_run")):
        show_job_status("ch2_hm")
        return None
    slot = st.empty()  # the progress bar and its Stop button go away once the maps are there
    with slot.container():
        job = run_job(
            "ch2_hm",
            lambda progress, _row, stop: (key, model_attentions(lm, text, progress, stop)),
            label=t("ch2.hm_running"),
            shared_key=("ch2_attention", *key) if text == t("ch2.default_hm_text") else None,
        )
    slot.empty()
    return job.result[1] if job.complete else None


def heatmap_section(ch) -> None:
    """Attention in real models."""
    section_header(ch, "heatmap")
    param("hm_role", "base-ko", str, choices=tuple(MODELS))
    param("hm_text", t("ch2.default_hm_text"), str)
    param("hm_layer", 0, int)
    param("hm_head", -1, int)
    h1, h2 = st.columns([2, 1])
    h1.text_input(t("ch2.text"), key="hm_text", max_chars=5_000)
    h2.selectbox(t("common.model"), list(MODELS), format_func=lambda r: t(f"ch2.role_{r}"), key="hm_role")
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
        stack = attention_stack(lm, st.session_state["hm_text"])
        if stack is not None:
            am = stack.pick(st.session_state["hm_layer"], head)
            if am.truncated_tokens:
                truncation_note(t("ch2.tokens_cut", n=am.truncated_tokens))
            name = MODELS[lm.role]
            which = "mean" if head is None else "head"
            title = t(f"ch2.hm_title_{which}", model=name, layer=am.layer, head=am.head)
            charts.show(st, axes(charts.heatmap(am.matrix, am.tokens, title=title)), width="stretch")
            st.caption(t("ch2.hm_once"))
            st.caption(t("common.produced_by", model=name, device=lm.device, source=lm.resolved.source))
    notice("common.notice", t("ch2.notice_heatmap"))
    quiz("02", "heatmap")


ch = chapter_header("02")
tokenization_section(ch)
positions_section(ch)
attention_section(ch)
architectures_section(ch)
heatmap_section(ch)
flow_section(ch)
show_code(ch)
