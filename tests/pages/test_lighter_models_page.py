"""pages/07_lighter_models.py with AppTest: light default load, buttons that run, bad input as messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui.i18n import strings

ROOT = Path(__file__).resolve().parents[2]
PAGE = "pages/07_lighter_models.py"


def _problems(at) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]


@pytest.fixture
def page(open_page):
    at = open_page(PAGE, "en")
    assert not _problems(at)
    return at


def test_default_load_shows_measured_kv_cache(page):
    metrics = {m.label: m.value for m in page.metric}
    measured = next(v for k, v in metrics.items() if k.startswith("Measured"))
    formula = next(v for k, v in metrics.items() if k == "Formula")
    assert measured == formula and measured.endswith(" B")
    assert not page.warning  # nothing to complain about on the default input


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_default_load_shows_every_demo_shipped(open_page, lang):
    at = open_page(PAGE, lang)
    assert not _problems(at)
    notes = [c.value for c in at.caption if c.value.startswith("📦")]
    # generation (in the page language), KV sweep, batch sweep, quantization, GPTQ/AWQ, distillation
    assert len(notes) == 6 and sum("--lang " + lang in n for n in notes) == 1
    headers = {c for d in at.dataframe for c in d.value.columns}
    assert {
        strings()[f"ch07.col_{k}"][lang] for k in ("new_tokens", "speedup", "precision", "heldout_error")
    } <= headers
    at.text_area(key="gen_prompt").set_value("다른 프롬프트").run()
    assert len([c for c in at.caption if c.value.startswith("📦")]) == 5  # shipped only for the default prompt


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"gen_max": 0}, "at least 1"),
        ({"gen_max": 100_000}, "at most"),
        ({"gen_strategy": "sample", "gen_temp": 0.0}, "greedy"),
        ({"gen_strategy": "sample", "gen_topp": 1.5}, "top-p"),
        ({"gen_strategy": "sample", "gen_topp": 0.0}, "top-p"),
        ({"gen_prompt": "가나다 abc " * 12_500, "gen_max": 4}, "context window"),
        ({"gen_prompt": ""}, "empty"),
    ],
)
def test_bad_generation_settings_give_a_message(page, settings, needle):
    for key, value in settings.items():
        page.session_state[key] = value
    page.run()
    page.button(key="gen_run").click().run()
    assert not _problems(page)
    assert any(needle in w.value for w in page.warning), [w.value for w in page.warning]


def test_generate_greedy_and_beam(page):
    page.session_state["gen_max"] = 3
    page.run()
    page.button(key="gen_run").click().run()
    assert not _problems(page)
    assert any(m.value.startswith("**Output:**") for m in page.markdown)
    page.radio(key="gen_strategy").set_value("beam").run()
    page.button(key="gen_run").click().run()
    assert not _problems(page)


def test_kv_sweep_and_layer_quant_buttons(page):
    page.text_input(key="kv_counts").set_value("2,3").run()
    page.button(key="kv_run").click().run()
    assert not _problems(page) and not page.warning
    page.slider(key="gq_layer").set_value(0).run()
    page.button(key="gq_run").click().run()
    assert not _problems(page)
    assert len(page.dataframe) >= 3


def test_bad_kv_counts_and_batch_sizes(page):
    page.text_input(key="kv_counts").set_value("0").run()
    page.button(key="kv_run").click().run()  # a message shows in the run the button started
    assert not _problems(page) and any("at least 1" in w.value for w in page.warning)
    page.text_input(key="bt_sizes").set_value("1,999").run()
    page.button(key="bt_run").click().run()
    assert not _problems(page) and any("32" in w.value and "999" in w.value for w in page.warning)  # limit and value


def test_out_of_range_url_values_fall_back():
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=240)
    at.query_params["kv_calc_tokens"] = "99999999"
    at.query_params["gq_layer"] = "-4"
    at.query_params["kd_temp"] = "abc"
    at.run()
    assert not _problems(at)
    assert at.slider(key="kv_calc_tokens").value == 4096 and at.slider(key="gq_layer").value == 2
