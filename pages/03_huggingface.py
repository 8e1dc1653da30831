"""Chapter 3 — the Hugging Face way: datasets, tokenizers, Trainer vs a plain loop, pipeline, save/reload."""

import html

import pandas as pd
import plotly.express as px
import streamlit as st

from engine.training import (
    FINISHED,
    ClassifierConfig,
    classify,
    compare_loops,
    dataset_overview,
    padded_batch,
    roundtrip_check,
)
from ui import charts
from ui import training as tr
from ui.cache import shared
from ui.i18n import t
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, seed, show_code
from ui.state import param

ch = chapter_header("03")
LRS = [1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0, 10.0, 100.0]


def chips(tokens: list[str], mask: list[int]) -> str:
    spans = []
    for tok, m in zip(tokens, mask, strict=True):
        style = "background:#dfe7fd;color:#111" if m else "background:#eeeeee;color:#999;text-decoration:line-through"
        spans.append(
            f'<span style="{style};padding:1px 3px;margin:1px;border-radius:3px;display:inline-block">'
            f"{html.escape(tok)}</span>"
        )
    return '<div style="line-height:1.9">' + "".join(spans) + "</div>"


# --- model, tokenizer and datasets ----------------------------------------------------------------------------
section_header(ch, "datasets")
param("hf_min_per_class", 15, int)
param("hf_pad_side", "right", str, choices=("right", "left"))
param("hf_max_len", 24, int)
d1, d2, d3 = st.columns(3)
d1.slider(t("ch03.min_per_class"), 5, 40, key="hf_min_per_class", help=t("ch03.min_per_class_help"))
d2.radio(t("ch03.padding_side"), ["right", "left"], key="hf_pad_side", horizontal=True)
d3.slider(t("ch03.max_length"), 8, 64, key="hf_max_len")
with friendly_errors():
    mpc = st.session_state["hf_min_per_class"]
    bar, report = tr.progress_bar()
    overview = shared(("ch03_overview", mpc), lambda p: dataset_overview(mpc), report)
    bar.empty()
    counts = [{**c, "status": t("ch03.kept") if c["kept"] else t("ch03.dropped")} for c in overview.counts]
    fig = px.bar(
        counts,
        x="paragraphs",
        y="label",
        color="status",
        orientation="h",
        title=t("ch03.counts_title"),
        color_discrete_map={t("ch03.kept"): "#1f77b4", t("ch03.dropped"): "#bbbbbb"},
    )
    fig.update_layout(yaxis={"autorange": "reversed"}, height=360, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(fig, width="stretch")
    with c2:
        st.caption(t("ch03.dataset_repr"))
        st.code(str(overview.dataset), language="text")
        st.caption(t("ch03.vocab", n=len(overview.tokenizer)))
    st.caption(t("ch03.source"))
    train = overview.dataset["train"]
    st.markdown(f"**{t('ch03.examples')}**")
    st.dataframe(
        pd.DataFrame(
            {
                "text": train["text"][:6],
                "label": [overview.labels[i] for i in train["label"][:6]],
                "article": train["article"][:6],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    texts = [train["text"][i] for i in (0, 1, 2)]
    batch = padded_batch(overview.tokenizer, texts, st.session_state["hf_max_len"], st.session_state["hf_pad_side"])
    st.markdown(f"**{t('ch03.batch_title')}**")
    for i, (tokens, mask) in enumerate(zip(batch.tokens, batch.attention_mask, strict=True)):
        cut = f" ✂️ {t('ch03.truncated')}" if batch.truncated[i] else ""
        st.html(f"<div><b>#{i}</b>{cut}</div>" + chips(tokens, mask))
    st.plotly_chart(
        charts.heatmap(
            batch.attention_mask,
            [str(j) for j in range(len(batch.attention_mask[0]))],
            [f"#{i}" for i in range(len(texts))],
            t("ch03.mask_title"),
            "Blues",
        ),
        width="stretch",
    )
    with st.expander("input_ids"):
        st.dataframe(pd.DataFrame(batch.input_ids), width="stretch")
notice("common.notice", t("ch03.notice_data"))
quiz("03", "datasets")

# --- the same classifier trained two ways ---------------------------------------------------------------------
section_header(ch, "two_loops")
param("hf_epochs", 12, int)
param("hf_lr", 2e-3, float, choices=tuple(LRS))
param("hf_dropout", 0.1, float)
e1, e2, e3 = st.columns(3)
e1.slider(t("train.epochs"), 1, 20, key="hf_epochs")
e2.select_slider(t("train.lr"), LRS, key="hf_lr", format_func=lambda v: f"{v:g}")
e3.slider(t("ch03.dropout"), 0.0, 0.5, step=0.05, key="hf_dropout")
with e1:
    hf_seed = seed("hf_seed")
KEY = "ch03_loops"
start = tr.controls(KEY, t("ch03.train_both"))
loss_curves = tr.LiveCurves(KEY, [("loss", t("ch03.loss_title"))], color="run", every=5, columns=1)
acc_curves = tr.LiveCurves(
    KEY, [("accuracy", t("ch03.acc_title"))], color="run", x="epoch", every=1, columns=1, kind="eval"
)


def _on_row(row: dict) -> None:
    loss_curves(row)
    if row.get("kind") == "eval":
        acc_curves.draw()


if start:
    tr.begin(KEY)
    cfg = ClassifierConfig(
        epochs=st.session_state["hf_epochs"],
        lr=st.session_state["hf_lr"],
        dropout=st.session_state["hf_dropout"],
        seed=hf_seed,
        min_per_class=st.session_state["hf_min_per_class"],
    )
    with friendly_errors():
        bar, report = tr.progress_bar()
        res = compare_loops(cfg, report, tr.should_stop(KEY), _on_row)
        bar.empty()
        worst = next((log for log in (res.trainer, res.loop) if log.status != FINISHED), res.loop)
        tr.end(KEY, worst.status, worst.message, res)
loss_curves.draw()
acc_curves.draw()
tr.show_status(KEY)
res = tr.result(KEY)
if res is not None:
    rows = [
        {
            t("ch03.col_run"): log.label,
            t("ch03.col_status"): log.status,
            t("ch03.col_steps"): len(log.train_rows()),
            t("ch03.col_acc"): log.last("accuracy"),
            t("ch03.col_seconds"): round(res.seconds.get(log.label, 0.0), 1),
        }
        for log in (res.trainer, res.loop)
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    test_labels = list(res.prep.dataset["test"]["label"])
    st.caption(t("ch03.majority", acc=max(test_labels.count(i) for i in set(test_labels)) / len(test_labels)))
    if res.max_loss_gap == res.max_loss_gap:  # not NaN
        st.caption(t("ch03.gap_same" if res.max_loss_gap < 1e-5 else "ch03.gap_differs", gap=res.max_loss_gap))
    st.caption(
        t(
            "ch03.produced_by",
            hidden=res.cfg.hidden,
            layers=res.cfg.layers,
            params=sum(p.numel() for p in res.loop_model.parameters()),
            device=str(next(res.loop_model.parameters()).device),
        )
    )
notice("common.notice", t("ch03.notice_loops"))
quiz("03", "two_loops")

# --- pipeline inference, save and reload ----------------------------------------------------------------------
section_header(ch, "pipeline")
res = tr.result(KEY)
if res is None:
    st.info(t("ch03.need_training"))
else:
    param("hf_text", t("ch03.default_text"), str)
    param("hf_which", "loop", str, choices=("loop", "trainer"))
    p1, p2 = st.columns([3, 1])
    p1.text_area(t("ch03.new_text"), key="hf_text", height=110, max_chars=4000)
    p2.radio(
        t("ch03.which_model"),
        ["loop", "trainer"],
        key="hf_which",
        format_func=lambda k: {"loop": "PyTorch loop", "trainer": "Trainer"}[k],
    )
    model = res.loop_model if st.session_state["hf_which"] == "loop" else res.trainer_model
    lines = [x.strip() for x in st.session_state["hf_text"].splitlines() if x.strip()][:20]
    with friendly_errors():
        preds = classify(model, res.prep.tokenizer, lines)
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("ch03.col_text"): line,
                        t("ch03.col_top"): " · ".join(f"{p['label']} {p['score']:.0%}" for p in top),
                    }
                    for line, top in zip(lines, preds, strict=True)
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        if st.button(t("ch03.roundtrip"), key="hf_roundtrip"):
            check = roundtrip_check(model, res.prep.tokenizer, lines)
            if check["same_labels"] and check["max_abs_diff"] < 1e-5:
                st.success(
                    t(
                        "ch03.roundtrip_ok",
                        files=", ".join(check["files"]),
                        kb=check["bytes"] / 1024,
                        diff=check["max_abs_diff"],
                    )
                )
            else:
                st.error(t("ch03.roundtrip_bad", diff=check["max_abs_diff"]))
notice("common.notice", t("ch03.notice_pipeline"))
quiz("03", "pipeline")
show_code(ch)
