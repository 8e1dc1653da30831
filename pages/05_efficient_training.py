"""Chapter 5 — fitting training into memory: where the bytes go, accumulation, checkpointing, ZeRO, LoRA, QLoRA."""

import streamlit as st

from engine.core import get_settings
from engine.llmops import log_adapter, modes_batch_version
from engine.training import (
    LLAMA_LINEARS,
    MODES,
    LoraSpec,
    QuantSpec,
    accumulation_view,
    book_lines,
    book_reference,
    checkpointing_lines,
    compare_checkpointing,
    load_training_model,
    loaded_weights,
    lora_merge_demo,
    lora_view,
    measured_view,
    memory_estimate,
    memory_profile,
    mode_statuses,
    qlora_weights,
    run_accumulation_demo,
    shipped_demo,
    train_modes,
    train_view,
    zero_view,
)
from ui import charts_efficient as draw
from ui.cache import cached
from ui.i18n import t
from ui.jobs import STOPPED, last_job, run_job, show_job_status
from ui.layout import chapter_header, friendly_errors, notice, precomputed_note, quiz, section_header, show_code
from ui.state import param
from ui.tracking import Track, track_toggle, tracked, tracked_note

MODELS = {"chat": "SmolLM2-135M-Instruct (chat)", "tiny": t("ch05.model_tiny")}
SEQS = (16, 32, 64, 128, 256, 512, 1024)
LRS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)
mode_label, component_label = draw.mode_label, draw.component_label


def lora_spec() -> LoraSpec:
    targets = tuple(x for x in str(st.session_state["lora_targets"]).split(",") if x in LLAMA_LINEARS)
    return LoraSpec(
        r=st.session_state["lora_r"], alpha=st.session_state["lora_alpha"], targets=targets or ("q_proj", "v_proj")
    )


def quant_spec() -> QuantSpec:
    return QuantSpec(quant_type=st.session_state["q_type"], double_quant=st.session_state["q_double"])


def own_or_shipped(result, demo: str, slot):
    """The learner's own run when there is one; otherwise the result shipped with the app, labelled in `slot`
    (just above the run button), so no section opens empty."""
    if result:
        return result
    shipped = shipped_demo(demo)
    if shipped is None:
        return None
    with slot.container() if slot else st.container():
        precomputed_note(shipped.pre)
    return shipped.result


def breakdown_section(ch) -> None:
    """Where the memory goes: estimated at once, measured on request."""
    section_header(ch, "breakdown")
    param("mem_model", "chat", str, choices=tuple(MODELS))
    param("mem_batch", 4, int)
    param("mem_seq", 32, int, choices=SEQS)
    param("mem_ckpt", False)
    c1, c2, c3, c4 = st.columns(4)
    c1.selectbox(t("common.model"), list(MODELS), format_func=MODELS.get, key="mem_model")
    c2.number_input(t("ch05.batch"), min_value=1, max_value=4096, step=1, key="mem_batch", help=t("ch05.batch_help"))
    c3.select_slider(t("ch05.seq_len"), SEQS, key="mem_seq")
    c4.toggle(t("ch05.checkpointing"), key="mem_ckpt")
    with friendly_errors():
        source, batch, seq = (
            st.session_state["mem_model"],
            int(st.session_state["mem_batch"]),
            st.session_state["mem_seq"],
        )
        ckpt = st.session_state["mem_ckpt"]
        est = memory_estimate(source, batch, seq, lora_spec(), quant_spec(), ckpt)
        draw.show_estimate(est, batch, seq)

        param("mem_modes", "full,lora,qlora", str)
        st.session_state.setdefault("mem_modes_ms", [m for m in st.session_state["mem_modes"].split(",") if m in MODES])
        chosen = st.multiselect(t("ch05.modes_to_measure"), list(MODES), format_func=mode_label, key="mem_modes_ms")
        st.session_state["mem_modes"] = ",".join(chosen)
        slot = st.empty()
        if st.button(t("ch05.measure"), type="primary", key="mem_measure", disabled=not chosen):
            lora, quant = lora_spec(), quant_spec()
            run_job(
                "ch05_measure",
                lambda p, on_row, stop: memory_profile(
                    source, chosen, [batch], seq, lora, quant, ckpt, progress=p, should_stop=stop, on_row=on_row
                ),
                heavy=True,
            )
        job = last_job("ch05_measure")
        rows = job.result.rows if job.result is not None else job.rows
        view = measured_view(own_or_shipped(rows, "measure", slot) or [])
        draw.show_measured(view, MODELS.get(view.model, view.model))
        if job.status == STOPPED or (job.result is not None and job.result.cancelled):
            st.info(t("ch05.cancelled"))
    notice("common.notice", t("ch05.notice_breakdown"))
    quiz("05", "breakdown")


def accumulation_section(ch) -> None:
    """Gradient accumulation: the same gradient from micro-batches."""
    section_header(ch, "accumulation")
    param("acc_batch", 8, int, choices=(4, 8, 16))
    param("acc_micro", 2, int, choices=(1, 2, 4, 8))
    param("acc_dtype", "float64", str, choices=("float32", "float64"))
    a1, a2, a3 = st.columns(3)
    a1.selectbox(t("ch05.big_batch"), (4, 8, 16), key="acc_batch")
    a2.selectbox(t("ch05.micro_batch"), (1, 2, 4, 8), key="acc_micro")
    a3.radio(t("ch05.dtype"), ("float64", "float32"), key="acc_dtype", horizontal=True)
    slot = st.empty()
    if st.button(t("ch05.run_accumulation"), key="acc_run"):
        batch, micro, dtype = (
            st.session_state["acc_batch"],
            st.session_state["acc_micro"],
            st.session_state["acc_dtype"],
        )
        with friendly_errors():
            run_job(
                "ch05_acc",
                lambda p, _row, _stop: run_accumulation_demo("tiny", batch, micro, seq_len=32, dtype=dtype, progress=p),
            )
    acc = own_or_shipped(last_job("ch05_acc").result, "accumulation", slot)
    if acc:
        draw.show_accumulation(acc, accumulation_view(acc))
    notice("common.notice", t("ch05.notice_accumulation"))
    quiz("05", "accumulation")


def checkpointing_section(ch) -> None:
    """Gradient checkpointing: activations saved vs time spent."""
    section_header(ch, "checkpointing")
    param("ck_model", "chat", str, choices=tuple(MODELS))
    param("ck_batch", 1, int, choices=(1, 2, 4))
    param("ck_seq", 64, int, choices=SEQS[:5])
    k1, k2, k3 = st.columns(3)
    k1.selectbox(t("common.model"), list(MODELS), format_func=MODELS.get, key="ck_model")
    k2.selectbox(t("ch05.batch"), (1, 2, 4), key="ck_batch")
    k3.select_slider(t("ch05.seq_len"), SEQS[:5], key="ck_seq")
    slot = st.empty()
    if st.button(t("ch05.run_checkpointing"), key="ck_run"):
        source, batch, seq = st.session_state["ck_model"], st.session_state["ck_batch"], st.session_state["ck_seq"]
        with friendly_errors():
            run_job(
                "ch05_ck",
                lambda p, _row, _stop: compare_checkpointing(source, "full", batch, seq, progress=p),
                heavy=True,
            )
    ck = own_or_shipped(last_job("ch05_ck").result, "checkpointing", slot)
    if ck and ck.runs:
        draw.show_checkpointing(ck, checkpointing_lines(ck), MODELS.get(ck.model, ck.model))
    notice("common.notice", t("ch05.notice_checkpointing"))
    quiz("05", "checkpointing")


def zero_section(ch) -> None:
    """ZeRO: sharding the optimizer, gradients and weights over GPUs."""
    section_header(ch, "zero")
    param("zero_params_b", 7.5, float)
    param("zero_gpus", 64, int)
    param("zero_gpu_gb", 32.0, float)
    z1, z2, z3 = st.columns(3)
    z1.number_input(t("ch05.zero_params"), min_value=0.001, max_value=100_000.0, step=0.5, key="zero_params_b")
    z2.number_input(t("ch05.zero_gpus"), min_value=1, max_value=100_000, step=1, key="zero_gpus")
    z3.number_input(t("ch05.zero_gpu_gb"), min_value=1.0, max_value=1_000.0, step=8.0, key="zero_gpu_gb")
    with friendly_errors():
        gpus = int(st.session_state["zero_gpus"])
        lines = zero_view(st.session_state["zero_params_b"], gpus, st.session_state["zero_gpu_gb"])
        draw.show_zero(lines, gpus)
    notice("common.notice", t("ch05.notice_zero"))
    quiz("05", "zero")


def lora_section(ch) -> None:
    """LoRA: how few weights train, and merging the adapters back."""
    section_header(ch, "lora")
    l1, l2, l3 = st.columns([1, 1, 2])
    l1.select_slider(t("ch05.lora_r"), (1, 2, 4, 8, 16, 32, 64, 128), key="lora_r")
    l2.select_slider(t("ch05.lora_alpha"), (1, 2, 4, 8, 16, 32, 64, 128, 256), key="lora_alpha")
    st.session_state.setdefault(
        "lora_targets_ms", [x for x in st.session_state["lora_targets"].split(",") if x in LLAMA_LINEARS]
    )
    targets = l3.multiselect(t("ch05.lora_targets"), list(LLAMA_LINEARS), key="lora_targets_ms")
    st.session_state["lora_targets"] = ",".join(targets) or "q_proj,v_proj"
    slot = None  # the note's place beside the button (None if the section failed before drawing it)
    with friendly_errors():
        spec = lora_spec()
        view = lora_view("chat", spec)
        q1, q2, q3 = st.columns(3)
        q1.metric(t("ch05.trainable"), f"{view.trainable:,}")
        q2.metric(t("ch05.trainable_share"), f"{view.share:.3%}")
        q3.metric(t("ch05.scaling"), f"{view.scaling:g}")
        st.caption(t("ch05.lora_caption", total=f"{view.total:,}"))
        slot = st.empty()
        if st.button(t("ch05.run_merge"), key="lora_merge"):
            run_job("ch05_merge", lambda p, _row, _stop: lora_merge_demo("chat", spec), label=t("common.loading_model"))
    merge = own_or_shipped(last_job("ch05_merge").result, "merge", slot)
    if merge:
        diff, delta, counted = f"{merge.max_abs_diff:.2e}", f"{merge.delta_norm:.3f}", f"{merge.counted:,}"
        st.success(t("ch05.merge_result", diff=diff, delta=delta, counted=counted))
    notice("common.notice", t("ch05.notice_lora"))
    quiz("05", "lora")


def qlora_section(ch) -> None:
    """QLoRA: 4-bit base weights, then full / LoRA / QLoRA training side by side and the book's numbers."""
    section_header(ch, "qlora")
    w1, w2 = st.columns(2)
    w1.radio(t("ch05.quant_type"), ("nf4", "fp4"), key="q_type", horizontal=True)
    w2.toggle(t("ch05.double_quant"), key="q_double")
    slot = None
    with friendly_errors():
        weights = qlora_weights("chat", lora_spec(), quant_spec())
        e1, e2, e3 = st.columns(3)
        e1.metric(t("ch05.fp32_weights"), f"{weights.fp32} MiB")
        e2.metric(t("ch05.q_weights"), f"{weights.quantized} MiB")
        e3.metric(t("ch05.q_ratio"), f"{weights.ratio:.1%}")
        slot = st.empty()
        if st.button(t("ch05.run_qlora_load"), key="q_load"):
            q, lora = quant_spec(), lora_spec()
            model = cached(
                ("ch05_qlora", q, lora),
                lambda p: load_training_model("chat", "qlora", lora, q, progress=p),
                t("common.loading_model"),
            )
            st.session_state["ch05_qload"] = loaded_weights(model, "chat", q)
    qload = own_or_shipped(st.session_state.get("ch05_qload"), "qlora_load", slot)
    if qload:
        ratio, kinds = f"{qload.ratio:.1%}", ", ".join(qload.kinds)
        st.success(t("ch05.qlora_loaded", measured=qload.measured, ratio=ratio, kinds=kinds, qtype=qload.quant_type))
    training_demo()
    draw.show_book(book_lines(), book_reference())
    st.caption(t("ch05.settings_note", device=get_settings().device))
    notice("common.notice", t("ch05.notice_qlora"))
    quiz("05", "qlora")


def keep_adapter(mode: str, model) -> None:
    """A LoRA/QLoRA model's adapter into its mode's child run, while the model still exists (no-op untracked)."""
    log_adapter(model, label=mode)


def train_track(source: str, steps: int, lr: float, lora: LoraSpec, quant: QuantSpec) -> Track:
    """What the run logs to MLflow (llmlab-ch05): the settings, each mode's loss per step (a child run per mode),
    the dummy batch's version and the LoRA/QLoRA adapters."""
    params = {"model": source, "steps": steps, "lr": lr, "batch": 2, "seq_len": 32, "modes": ",".join(MODES)}
    params |= {"lora_r": lora.r, "lora_alpha": lora.alpha, "lora_targets": ",".join(lora.targets)}
    params |= {"quant_type": quant.quant_type, "double_quant": quant.double_quant}
    return Track(
        "ch05",
        "train modes",
        params,
        dataset=lambda: modes_batch_version(source),
        by="mode",
        status=mode_statuses,
        command="pages/05_efficient_training.py",
    )


def training_demo() -> None:
    st.subheader(t("ch05.train_title"))
    param("tr_model", "tiny", str, choices=tuple(MODELS))
    param("tr_lr", 1e-3, float, choices=LRS)
    param("tr_steps", 8, int)
    r1, r2, r3 = st.columns(3)
    r1.selectbox(
        t("common.model"), list(MODELS), format_func=MODELS.get, key="tr_model", help=t("ch05.train_model_help")
    )
    r2.select_slider(t("ch05.lr"), LRS, key="tr_lr", format_func=lambda x: f"{x:g}")
    r3.slider(t("ch05.steps"), 1, 30, key="tr_steps")
    slot = st.empty()
    left, right = st.columns([4, 1], vertical_alignment="center")
    clicked = left.button(t("ch05.run_train"), key="tr_run", type="primary")
    on = track_toggle("ch05_track", "ch05_train", right)
    if clicked:
        source, steps, lr = st.session_state["tr_model"], st.session_state["tr_steps"], st.session_state["tr_lr"]
        lora, quant = lora_spec(), quant_spec()
        with friendly_errors():

            def work(p, row, stop):
                return train_modes(source, steps, lr, lora, quant, p, stop, on_row=row, on_model=keep_adapter)

            run_job(
                "ch05_train", tracked("ch05_train", work, train_track(source, steps, lr, lora, quant), on), heavy=True
            )
    show_job_status("ch05_train")
    tracked_note("ch05_train")
    logs = own_or_shipped(last_job("ch05_train").result, "train", slot)
    if logs:
        draw.show_training(train_view(logs))


ch = chapter_header("05")
# The LoRA / QLoRA settings are read by several sections; their widgets live in the LoRA and QLoRA sections.
param("lora_r", 8, int)
param("lora_alpha", 16, int)
param("lora_targets", "q_proj,v_proj", str)
param("q_type", "nf4", str, choices=("nf4", "fp4"))
param("q_double", False)
breakdown_section(ch)
accumulation_section(ch)
checkpointing_section(ch)
zero_section(ch)
lora_section(ch)
qlora_section(ch)
show_code(ch)
