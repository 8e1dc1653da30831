"""Chapter 16 page through AppTest, driven like a learner: a fresh page opens every section in both languages with
its cheap live computations (S4's two views and their difference, HiPPO, the scan check, Mamba vs transformers, the
book's code) and the shipped bench and training results; absurd values from a shared link fall back to the defaults;
a Δ far too large and a token position outside the sequence give the translated message and the page keeps working;
a short training run through the page's own run path keeps its rows.
"""

from __future__ import annotations

import pytest

from tests.pages.conftest import clean, exceptions, message_start, metric_value, warnings_of
from ui.i18n import strings

PAGE = "pages/16_mamba.py"
SECTIONS = ("why", "s4", "selection", "mamba", "training")


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_fresh_page_renders_every_section_and_refuses_a_far_too_large_step(open_page, lang):
    at = open_page(PAGE, lang)
    clean(at)
    assert [h.proto.anchor for h in at.header] == list(SECTIONS)
    assert not warnings_of(at), warnings_of(at)
    # S4: recurrence = convolution (float64 rounding), the scan, Mamba vs transformers, the fixed book code
    for key in ("ch16.diff_conv", "ch16.diff_fft", "ch16.scan_diff", "ch16.scan_grad_diff"):
        assert float(metric_value(at, key)) < 1e-10, key
    for key in ("ch16.mb_forward", "ch16.mb_grad", "ch16.mb_step", "ch16.book_block_diff", "ch16.book_lm_diff"):
        assert float(metric_value(at, key)) < 1e-10, key
    defects = next(d.value for d in at.dataframe if d.value.shape == (4, 5))
    errors = defects.iloc[:, 3].tolist()
    assert errors[0].startswith("SyntaxError") and errors[1].startswith("SyntaxError")
    assert errors[2] == "NameError: name 'd_in' is not defined"
    from engine.ssm.book165 import einops_available

    assert errors[3].startswith("EinopsError") if einops_available() else errors[3] == "—"  # "—": not run here
    assert len(at.get("plotly_chart")) >= 6
    # the shipped bench: the KV cache grows in proportion to the context, the Mamba state not at all
    bench = next(d.value for d in at.dataframe if d.value.shape[1] == 5 and d.value.shape[0] >= 4)
    mamba_label, transformer_label = strings()["ch16.arch_mamba"][lang], strings()["ch16.arch_transformer"][lang]
    per_arch = {}
    for label, length, _, nbytes, _ in bench.values.tolist():
        per_arch.setdefault(label, []).append((int(length.replace(",", "")), int(nbytes.replace(",", ""))))
    assert len({b for _, b in per_arch[mamba_label]}) == 1
    assert len({b // n for n, b in per_arch[transformer_label]}) == 1 and len(per_arch[transformer_label]) >= 2
    # the shipped training run: both models, accuracy at the trained length and at 2x, 4x, 8x
    trained = next(d.value for d in at.dataframe if d.value.shape[0] == 2 and d.value.shape[1] == 9)
    assert trained.iloc[:, 2].tolist() == ["2400", "2400"]  # steps
    assert [int("".join(ch for ch in c if ch.isdigit())) for c in trained.columns[5:]] == [64, 128, 256, 512]
    assert trained.columns[5].endswith("★")  # the trained length
    # Δ far too large: the engine refuses it in the learner's language, the rest of the page still draws
    at.select_slider(key="s4_dt").set_value(100000.0).run()
    assert not at.exception, exceptions(at)
    assert any(message_start("ssm.step_too_large", lang) in w for w in warnings_of(at)), warnings_of(at)
    assert [h.proto.anchor for h in at.header] == list(SECTIONS)
    at.select_slider(key="s4_dt").set_value(0.1).run()  # and a sensible Δ brings the S4 numbers back
    clean(at)
    assert not warnings_of(at), warnings_of(at)
    assert float(metric_value(at, "ch16.diff_conv")) < 1e-10
    # a token position outside the sequence: the message, then back
    at.slider(key="se_len").set_value(8).run()
    at.number_input(key="se_p2").set_value(100).run()
    assert not at.exception, exceptions(at)
    assert any(message_start("ssm.position_out_of_range", lang) in w for w in warnings_of(at)), warnings_of(at)
    at.number_input(key="se_p2").set_value(5).run()
    clean(at)
    assert not warnings_of(at), warnings_of(at)


def test_absurd_url_values_fall_back(open_page, monkeypatch):
    from streamlit.testing.v1 import AppTest

    import ui.i18n
    from tests.pages.conftest import ROOT, TIMEOUT

    monkeypatch.setattr(ui.i18n, "DEFAULT_LANG", "en")
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=TIMEOUT)
    at.session_state["lang"] = "en"
    absurd = {
        "s4_n": "1000000",
        "s4_dt": "1e308",
        "s4_len": "-5",
        "s4_method": "euler",
        "s4_a": "nan",
        "s4_dtype": "float8",
        "hp_n": "99999",
        "hp_mem_n": "nan",
        "hp_signal": "white",
        "se_len": "1000000000",
        "se_p1": "-3",
        "se_p2": "x",
        "se_dtype": "int4",
        "mb_dtype": "bfloat16",
        "wh_len": "7",
        "tr_task": "copying",
        "tr_steps_selective_copy": "1000000000",
        "tr_steps_induction": "-1",
    }
    for key, value in absurd.items():
        at.query_params[key] = value
    at.run()
    clean(at)
    assert not warnings_of(at), warnings_of(at)
    expected = {"s4_n": 8, "s4_dt": 0.03, "s4_len": 64, "s4_method": "zoh", "s4_a": "hippo", "s4_dtype": "float64"}
    expected |= {"hp_n": 8, "hp_mem_n": 32, "hp_signal": "sine", "se_len": 16, "se_p1": 2, "se_p2": 9}
    expected |= {"se_dtype": "float64", "mb_dtype": "float64", "wh_len": 256, "tr_task": "selective_copy"}
    expected |= {"tr_steps_selective_copy": 2400}  # the shipped run's steps
    for key, value in expected.items():
        assert at.session_state[key] == value, key


TINY_TRAINING = {"length": 16, "eval_lengths": (16, 32), "eval_sequences": 4, "batch_size": 4, "log_every": 1}


def test_a_short_training_run_keeps_its_rows(open_page, monkeypatch):
    import ui.ssm

    monkeypatch.setattr(ui.ssm, "TRAIN_OVERRIDES", {**TINY_TRAINING, "steps": 3})
    at = open_page(PAGE, "en")
    at.radio(key="tr_task").set_value("induction").run()
    at.button(key="tr_mamba").click().run()
    clean(at)
    result = at.session_state["ch16_tr_induction_mamba"]
    assert result["status"] == "finished" and result["steps"] == 3
    assert [r["step"] for r in result["curve"]] == [1, 2, 3]
    assert sorted(result["accuracy_by_length"]) == ["16", "32"]
    table = at.dataframe[-1].value
    mine = table[table.iloc[:, 0] == "Mamba"].values.tolist()
    assert mine and mine[0][2] == "3", table.values.tolist()  # the table shows this run, not a shipped one
    assert "ch16_tr_induction_transformer" not in at.session_state  # one button, one model
    # the page's time limit: training ends where it is and the model is still evaluated
    monkeypatch.setattr(ui.ssm, "TRAIN_OVERRIDES", {**TINY_TRAINING, "steps": 50, "max_seconds": 1e-6})
    at.button(key="tr_mamba").click().run()
    clean(at)
    assert not warnings_of(at), warnings_of(at)
    result = at.session_state["ch16_tr_induction_mamba"]
    assert result["time_limited"] and result["steps"] == 1 and sorted(result["accuracy_by_length"]) == ["16", "32"]
    limit = strings()["ch16.deadline"]["en"].split("{seconds}")[0].replace("{model}", "Mamba")
    assert any(c.value.startswith(limit) for c in at.caption), [c.value for c in at.caption]


def test_a_stopped_training_run_keeps_the_finished_rows(open_page, monkeypatch):
    import ui.ssm

    monkeypatch.setattr(ui.ssm, "TRAIN_OVERRIDES", {**TINY_TRAINING, "steps": 50})
    real = ui.ssm.train_one

    def stop_after_two(arch, cfg, progress, on_row, should_stop):
        rows = []

        def keep(row):
            rows.append(row)
            on_row(row)

        return real(arch, cfg, progress, keep, lambda: len(rows) >= 2)  # the learner presses ⏹ after two rows

    monkeypatch.setattr(ui.ssm, "train_one", stop_after_two)
    at = open_page(PAGE, "ko")
    at.button(key="tr_mamba").click().run()
    clean(at)
    assert "ch16_tr_selective_copy_mamba" not in at.session_state  # no result: it was stopped
    stopped = strings()["job.stopped"]["ko"].split("{")[0].strip()
    assert any(stopped in w for w in warnings_of(at)), warnings_of(at)
    job = at.session_state["_job_ch16_train_selective_copy_mamba"]
    assert [r["step"] for r in job.rows] == [1, 2]
    at.run()  # a rerun (any click) still shows the finished rows
    clean(at)
    assert [r["step"] for r in at.session_state["_job_ch16_train_selective_copy_mamba"].rows] == [1, 2]


def test_mamba_vs_transformers_runs_live_in_float32(open_page):
    at = open_page(PAGE, "en")
    at.radio(key="mb_dtype").set_value("float32").run()
    clean(at)
    assert float(metric_value(at, "ch16.mb_forward")) < 1e-4  # the shipped float32 report
    at.button(key="mb_run").click().run()
    clean(at)
    assert strings()["ch16.mb_live"]["en"] in [c.value for c in at.caption]
    assert at.session_state["ch16_mb_float32"]["dtype"] == "float32"
    for key in ("ch16.mb_forward", "ch16.mb_grad", "ch16.mb_step"):
        assert float(metric_value(at, key)) < 1e-4, key  # float32 rounding, not a different computation


@pytest.mark.slow
def test_live_bench_measures_the_same_state_bytes_as_the_shipped_one(open_page):
    at = open_page(PAGE, "en")
    at.select_slider(key="wh_len").set_value(256)
    at.button(key="wh_run").click().run()
    clean(at)
    live = at.session_state["ch16_bench"]
    assert sorted(r["arch"] for r in live["decode"]) == ["mamba", "transformer"]
    assert sorted(r["arch"] for r in live["train_step"]) == ["mamba_parallel", "mamba_sequential", "transformer"]
    same = strings()["ch16.bench_same"]["en"].split(" ")[0]
    assert sum(c.value.startswith(same) for c in at.caption) == 2, [c.value for c in at.caption]
