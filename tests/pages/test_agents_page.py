"""Chapter 15 page through AppTest, driven like a learner: a fresh page opens every section in both languages with the
shipped results and never waits for the model server; the trajectory matcher and the memory window work live; an
empty task and absurd values from a shared link give the translated message or fall back to the defaults; one real
agent run through the page's own job keeps its trace."""

from __future__ import annotations

import pytest

from tests.pages.conftest import exceptions
from ui.i18n import strings

PAGE = "pages/15_agents.py"
SECTIONS = ("loop", "memory", "tools", "autogen", "evaluation", "safety")


def _clean(at) -> None:
    assert not at.exception, exceptions(at)
    assert not at.error, [e.value for e in at.error]


def _metric(at, key: str) -> str:
    label = strings()[key]
    return next(m.value for m in at.metric if m.label in label.values())


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_fresh_page_renders_every_section(open_page, lang):
    at = open_page(PAGE, lang)
    _clean(at)
    anchors = [h.proto.anchor for h in at.header]
    assert [a for a in anchors if a in SECTIONS] == list(SECTIONS)
    # the trajectory matcher's default example: an extra sql_query call -> only superset matches
    assert [_metric(at, f"ch15.match_{m}") for m in ("strict", "unordered", "subset", "superset")] == [
        "❌",
        "❌",
        "❌",
        "✅",
    ]
    # memory, k=1: the window keeps one turn and forgets the three facts said early
    kept = strings()["ch15.mem_kept"][lang].format(n=1)
    assert any(kept in m.value for m in at.markdown)
    from engine.core import load_precomputed

    if load_precomputed("ch15_eval") is not None:  # the shipped held-out report
        assert _metric(at, "ch15.success_rate").endswith("%")


def test_matcher_memory_and_bad_input(open_page):
    at = open_page(PAGE, "en")
    at.text_input(key="ev_actual").set_value("sql_query, calculator").run()
    at.text_input(key="ev_reference").set_value("calculator, sql_query").run()
    _clean(at)
    assert [_metric(at, f"ch15.match_{m}") for m in ("strict", "unordered", "subset", "superset")] == [
        "❌",
        "✅",
        "✅",
        "✅",
    ]
    at.radio(key="me_k").set_value(3).run()
    _clean(at)
    assert any(strings()["ch15.mem_kept"]["en"].format(n=3) in m.value for m in at.markdown)
    # an empty task: the engine refuses it before any model call, in the learner's language
    at.text_area(key="lo_task").set_value("   ").run()
    at.button(key="lo_run").click().run()
    assert not at.exception, exceptions(at)
    assert any(strings()["error.agents.empty_task"]["en"] in w.value for w in at.warning)


def test_values_from_a_link_fall_back(monkeypatch):
    from streamlit.testing.v1 import AppTest

    import ui.i18n
    from tests.pages.conftest import ROOT, TIMEOUT

    monkeypatch.setattr(ui.i18n, "DEFAULT_LANG", "en")
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=TIMEOUT)
    at.session_state["lang"] = "en"
    for key, value in {"lo_steps": "99", "lo_mode": "magic", "me_k": "7", "ev_limit": "-3", "ev_mode": "x"}.items():
        at.query_params[key] = value
    at.run()
    _clean(at)
    expected = {"lo_steps": 6, "lo_mode": "native", "me_k": 1, "ev_limit": 3, "ev_mode": "native"}
    for key, value in expected.items():
        assert at.session_state[key] == value, key


@pytest.mark.server
def test_a_real_run_through_the_page_keeps_its_trace(open_page, tmp_path):
    from tests.engine._server import own_llama_server

    with own_llama_server(tmp_path / "cache"):
        at = open_page(PAGE, "en")
        at.text_area(key="lo_task").set_value("17 곱하기 23은 얼마인가요?").run()
        at.slider(key="lo_steps").set_value(2).run()
        at.button(key="lo_run").click().run()
        _clean(at)
        assert at.session_state["ch15_loop_run"]["steps"]
        head = strings()["ch15.step_head"]["en"].split("{")[0]
        assert any(m.value.startswith(f"**{head}") for m in at.markdown)
