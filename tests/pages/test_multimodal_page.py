"""Chapter 14 page through AppTest, driven like a learner: a fresh page opens every section in both languages with
the shipped CLIP run (metrics, loss curve, heatmap, held-out classes, search table), zero-shot on a test image with
the shipped checkpoint, and text -> image search; an empty label list, an uploaded file that is not an image and an
empty search query give the translated message and the page keeps working; a short live training run through the
page's own run path keeps its result."""

from __future__ import annotations

import pytest

from tests.pages.conftest import clean, exceptions, message_start, metric_value, warnings_of
from ui.i18n import strings

PAGE = "pages/14_multimodal.py"
SECTIONS = ("clip", "zero_shot", "real_clip", "diffusion", "llava", "search")


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_fresh_page_shows_the_shipped_run_and_answers(open_page, lang):
    at = open_page(PAGE, lang)
    clean(at)
    assert [h.proto.anchor for h in at.header] == list(SECTIONS)
    assert not warnings_of(at), warnings_of(at)
    zero_shot = float(metric_value(at, "ch14.m_zero_shot").rstrip("%")) / 100
    assert zero_shot >= 0.80  # the shipped run's goal
    assert len(at.get("plotly_chart")) >= 6  # loss, scale, heatmap, per class, confusion, zero-shot, ...
    prediction = next(c.value for c in at.caption if c.value.startswith(strings()["ch14.prediction"][lang][:3]))
    assert prediction  # test image 0 (an ankle boot) gets a prediction
    # empty labels: the translated refusal, the rest of the page still draws
    at.text_input(key=f"zs_labels_{lang}").set_value(" , ").run()
    assert not at.exception, exceptions(at)
    assert any(message_start("multimodal.empty_prompt", lang) in w for w in warnings_of(at)), warnings_of(at)
    assert [h.proto.anchor for h in at.header] == list(SECTIONS)
    # an empty search query: the same message
    at.text_input(key=f"zs_labels_{lang}").set_value(strings()["ch14.query_default"][lang]).run()
    at.text_input(key=f"se_query_{lang}").set_value("   ").run()
    assert any(message_start("multimodal.empty_prompt", lang) in w for w in warnings_of(at)), warnings_of(at)


def test_shared_link_with_absurd_values_falls_back(open_page):
    at = open_page(PAGE, "en")
    at.query_params["zs_index"] = "99999999"
    at.query_params["cl_seconds"] = "100000"
    at.query_params["zs_scale"] = "-5"
    at.run()
    clean(at)


TINY = {"steps": 6, "batch_size": 16, "train_limit": 600, "eval_limit": 200, "log_every": 2}


def test_a_short_live_run_keeps_its_result(open_page, monkeypatch):
    import ui.multimodal

    monkeypatch.setattr(ui.multimodal, "TRAIN_OVERRIDES", TINY)
    at = open_page(PAGE, "en")
    at.button(key="cl_train").click().run()
    clean(at)
    run = at.session_state["ch14_clip_live"]
    assert run.result.steps == 6 and [r["step"] for r in run.result.curve] == [2, 4, 6]
    assert run.result.holdout == [6, 7]  # the page's default: sneaker and shirt held out
    assert strings()["ch14.live_result"]["en"] in [c.value for c in at.caption]


def test_a_stopped_live_run_keeps_the_finished_rows(open_page, monkeypatch):
    import ui.multimodal

    monkeypatch.setattr(ui.multimodal, "TRAIN_OVERRIDES", {**TINY, "steps": 100})
    real = ui.multimodal.train_live

    def stop_after_two(seconds, holdout, caption_lang, progress, on_row, should_stop):
        rows = []

        def keep(row):
            rows.append(row)
            on_row(row)

        return real(seconds, holdout, caption_lang, progress, keep, lambda: len(rows) >= 2)

    monkeypatch.setattr(ui.multimodal, "train_live", stop_after_two)
    at = open_page(PAGE, "ko")
    at.button(key="cl_train").click().run()
    clean(at)
    assert "ch14_clip_live" not in at.session_state
    stopped = strings()["job.stopped"]["ko"].split("{")[0].strip()
    assert any(stopped in w for w in warnings_of(at)), warnings_of(at)
    assert [r["step"] for r in at.session_state["_job_ch14_clip"].rows] == [2, 4]


def test_real_clip_offline_message_and_the_tiny_local_clip(open_page, monkeypatch):
    monkeypatch.setenv("LLMLAB_OFFLINE", "1")
    at = open_page(PAGE, "ko")
    at.button(key="hf_hub").click().run()
    clean(at)
    middle = strings()["error.multimodal.hub_offline"]["ko"].split("}")[1][:20]  # after "{model}"
    assert middle.strip() and any(middle in w for w in warnings_of(at)), warnings_of(at)
    at.button(key="hf_tiny").click().run()
    clean(at)
    tiny = at.session_state["ch14_hf_tiny"]
    assert len(tiny["probabilities"]) == 10 and abs(sum(tiny["probabilities"]) - 1) < 1e-5
    assert abs(tiny["scale"] - 1 / 0.07) < 0.01  # a fresh CLIP's logit scale, not the trained 100
