"""Chapter 3 — the Hugging Face way: datasets, tokenizers, Trainer vs a plain loop, pipeline, save/reload."""

from dataclasses import asdict

import pandas as pd
import streamlit as st

from engine.core import load_precomputed
from engine.llmops import classifier_record, classifier_statuses
from engine.training import (
    ClassifierConfig,
    classify_lines,
    compare_loops,
    dataset_examples,
    dataset_overview,
    first_texts,
    loop_status,
    loop_summary,
    loops_from_shipped,
    padded_batch,
    roundtrip_report,
    text_lines,
)
from ui import charts
from ui import charts_training as draw
from ui.cache import cached
from ui.i18n import t
from ui.jobs import last_job
from ui.layout import chapter_header, friendly_errors, notice, quiz, section_header, seed, show_code
from ui.state import param
from ui.tracking import Track
from ui.training import LiveCurves, training_demo

LRS = [1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0, 10.0, 100.0]
KEY = "ch03_loops"


def datasets_section(ch) -> None:
    """Model, tokenizer and datasets."""
    section_header(ch, "datasets")
    param("hf_min_per_class", 15, int)
    param("hf_pad_side", "right", str, choices=("right", "left"))
    param("hf_max_len", 24, int)
    d1, d2, d3 = st.columns(3)
    d1.slider(t("ch03.min_per_class"), 5, 40, key="hf_min_per_class", help=t("ch03.min_per_class_help"))
    d2.radio(
        t("ch03.padding_side"),
        ["right", "left"],
        key="hf_pad_side",
        horizontal=True,
        format_func=lambda s: t(f"ch03.pad_{s}"),
    )
    d3.slider(t("ch03.max_length"), 8, 64, key="hf_max_len")
    with friendly_errors():
        mpc = st.session_state["hf_min_per_class"]
        overview = cached(("ch03_overview", mpc), lambda p: dataset_overview(mpc), t("common.loading_tokenizers"))
        axes = {"paragraphs": t("ch03.axis_paragraphs"), "label": t("ch03.axis_chapter"), "status": t("ch03.legend")}
        fig = draw.label_counts(overview.counts, t("ch03.kept"), t("ch03.dropped"), t("ch03.counts_title"), axes)
        c1, c2 = st.columns([3, 2])
        charts.show(c1, fig, width="stretch")
        with c2:
            st.caption(t("ch03.dataset_repr"))
            st.code(str(overview.dataset), language="text")
            st.caption(t("ch03.vocab", n=len(overview.tokenizer)))
        st.caption(t("ch03.source"))
        st.markdown(f"**{t('ch03.examples')}**")
        charts.table(dataset_examples(overview), [t("ch03.col_paragraph"), t("ch03.col_label"), t("ch03.col_article")])
        texts = first_texts(overview)
        max_len, side = st.session_state["hf_max_len"], st.session_state["hf_pad_side"]
        batch = padded_batch(overview.tokenizer, texts, max_len, side)
        st.markdown(f"**{t('ch03.batch_title')}**")
        for i, (tokens, mask) in enumerate(zip(batch.tokens, batch.attention_mask, strict=True)):
            cut = f" ✂️ {t('ch03.truncated')}" if batch.truncated[i] else ""
            st.html(f"<div><b>#{i}</b>{cut}</div>" + draw.token_chips(tokens, mask))
        fig = charts.heatmap(
            batch.attention_mask,
            [str(j) for j in range(len(batch.attention_mask[0]))],
            [f"#{i}" for i in range(len(texts))],
            t("ch03.mask_title"),
            "Blues",
        )
        fig.update_layout(xaxis_title=t("ch03.axis_position"), yaxis_title=t("ch03.axis_text"))
        charts.show(st, fig, width="stretch")
        with st.expander("input_ids"):
            st.dataframe(pd.DataFrame(batch.input_ids), width="stretch")
    notice("common.notice", t("ch03.notice_data"))
    quiz("03", "datasets")


def run_name(run: str) -> str:
    """The engine's run labels ("Trainer", "PyTorch loop") as the legend and table show them."""
    return {"Trainer": "🤗 Trainer", "PyTorch loop": t("ch03.run_loop")}.get(run, run)


def loop_results(s) -> None:
    """The table and captions under the curves (a run of the learner's own, or the shipped one)."""
    columns = [t(c) for c in ("ch03.col_run", "ch03.col_status", "ch03.col_steps", "ch03.col_acc", "ch03.col_seconds")]
    rows = [(run_name(r.label), t(f"train.status_{r.status}"), r.steps, r.accuracy, r.seconds) for r in s.runs]
    charts.table(rows, columns)
    st.caption(t("ch03.majority", acc=s.majority))
    if s.max_loss_gap is not None:
        st.caption(t("ch03.gap_same" if s.same_losses else "ch03.gap_differs", gap=s.max_loss_gap))
    st.caption(t("ch03.produced_by", hidden=s.hidden, layers=s.layers, params=s.params, device=s.device))


def loops_section(ch) -> None:
    """The same classifier trained two ways."""
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
    axes = {"step": t("ch03.axis_step"), "epoch": t("ch03.axis_epoch"), "loss": t("ch03.axis_loss")}
    common = {"color": "run", "columns": 1, "labels": {**axes, "accuracy": t("ch03.axis_accuracy")}, "names": run_name}
    cfg = ClassifierConfig(
        epochs=st.session_state["hf_epochs"],
        lr=st.session_state["hf_lr"],
        dropout=st.session_state["hf_dropout"],
        seed=hf_seed,
        min_per_class=st.session_state["hf_min_per_class"],
    )
    job, pre = training_demo(
        KEY,
        t("ch03.train_both"),
        "ch03_loops",
        lambda: (
            LiveCurves(KEY, [("loss", t("ch03.loss_title"))], every=5, **common),
            LiveCurves(KEY, [("accuracy", t("ch03.acc_title"))], x="epoch", every=1, kind="eval", **common),
        ),
        lambda p, row, stop: compare_loops(cfg, p, stop, row),
        loop_status,
        track=Track(
            "ch03",
            "hf-train",
            asdict(cfg),
            by="run",
            status=classifier_statuses,
            finish=classifier_record,
            command="pages/03_huggingface.py",
        ),
    )
    if job.result is not None:
        loop_results(loop_summary(job.result))
    elif pre is not None:
        loop_results(loops_from_shipped(pre.data).summary)
    notice("common.notice", t("ch03.notice_loops"))
    quiz("03", "two_loops")


def predictions_table(preds) -> None:
    top = [" · ".join(f"{label} {score:.0%}" for label, score in p.top) for p in preds]
    charts.table(list(zip([p.text for p in preds], top, strict=True)), [t("ch03.col_text"), t("ch03.col_top")])


def pipeline_section(ch) -> None:
    """Pipeline inference, save and reload."""
    section_header(ch, "pipeline")
    res = last_job(KEY).result
    if res is None:
        pre = load_precomputed("ch03_loops") if last_job(KEY).status is None else None
        if pre is None:
            st.info(t("ch03.need_training"))
        else:  # the default run's model on the default sentences; a model of one's own classifies any text
            st.caption("📦 " + t("ch03.shipped_predictions", command=pre.command, made=pre.made, machine=pre.machine))
            predictions_table(loops_from_shipped(pre.data).predictions)
    else:
        param("hf_text", t("ch03.default_text"), str)
        param("hf_which", "loop", str, choices=("loop", "trainer"))
        p1, p2 = st.columns([3, 1])
        p1.text_area(t("ch03.new_text"), key="hf_text", height=110, max_chars=4000)
        p2.radio(
            t("ch03.which_model"),
            ["loop", "trainer"],
            key="hf_which",
            format_func=lambda k: run_name({"loop": "PyTorch loop", "trainer": "Trainer"}[k]),
        )
        model = res.loop_model if st.session_state["hf_which"] == "loop" else res.trainer_model
        lines = text_lines(st.session_state["hf_text"])
        with friendly_errors():
            predictions_table(classify_lines(model, res.prep.tokenizer, lines))
            if st.button(t("ch03.roundtrip"), key="hf_roundtrip"):
                check = roundtrip_report(model, res.prep.tokenizer, lines)
                if check.ok:
                    files = ", ".join(check.files)
                    st.success(t("ch03.roundtrip_ok", files=files, kb=check.kb, diff=check.max_abs_diff))
                else:
                    st.error(t("ch03.roundtrip_bad", diff=check.max_abs_diff))
    notice("common.notice", t("ch03.notice_pipeline"))
    quiz("03", "pipeline")


ch = chapter_header("03")
datasets_section(ch)
loops_section(ch)
pipeline_section(ch)
show_code(ch)
