"""Page 08 (serving) through AppTest: bad input gives messages, a server that is down gives a clear error, and
the heavy buttons run (slow) with results kept in the session."""

from __future__ import annotations

import socket

import pytest

PAGE = "pages/08_serving.py"


def _messages(at) -> list[str]:
    return [m.value for m in [*at.warning, *at.error]]


def _no_exception(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_default_load_is_light_and_complete(open_page, lang):
    at = open_page(PAGE, lang)
    _no_exception(at)
    assert len(at.header) == 6 and not at.error and not at.warning
    assert len(at.tabs) >= 3  # one timeline per batching policy


def test_shipped_runs_heavy_settings_and_every_block_size(open_page):
    at = open_page(PAGE, "ko")
    notes = [c.value for c in at.caption if c.value.startswith("📦")]
    assert len(notes) == 3 and all("serving-demo" in n for n in notes)  # speculative speed, offline, load test
    headers = {c for d in at.dataframe for c in d.value.columns}
    assert {"배치 방식", "동시 요청 수", "수락률", "생성 토큰 수"} <= headers  # tables drawn with translated headers
    at.radio(key="pa_block").set_value(2).run()  # 24 blocks: the story reaches copy-on-write and preemption
    _no_exception(at)
    # 64 × 64 Python-level tiles take tens of seconds: a button (with progress and Stop), not a stall
    at.slider(key="fa_T").set_value(256)
    at.select_slider(key="fa_bq").set_value(4)
    at.select_slider(key="fa_bk").set_value(4).run()
    _no_exception(at)
    assert "heavy_ch08_flash_check" in {b.key for b in at.button}
    at.select_slider(key="sp_n").set_value(20000).run()
    _no_exception(at)
    assert "heavy_ch08_toy" in {b.key for b in at.button}


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("sv_levels", "100", "between 1 and 64"),
        ("sv_levels", "0,4", "between 1 and 64"),
        ("sv_levels", "a,b", "comma-separated integers"),
        ("sv_levels", "", "at least one"),
    ],
)
def test_bad_concurrency_is_refused_with_a_message(open_page, key, value, fragment):
    at = open_page(PAGE, "en")
    at.text_input(key=key).set_value(value).run()
    at.button(key="sv_run").click().run()
    _no_exception(at)
    assert any(fragment in m for m in _messages(at)), _messages(at)


@pytest.mark.parametrize(
    ("p", "q", "fragment"),
    [
        ("0.5, x", "0.5, 0.5", "comma-separated"),
        ("1", "1", "2 to 64"),
        ("0.5, 0.5", "0.3, 0.3, 0.4", "same length"),
        ("-1, 2", "0.5, 0.5", "non-negative"),
    ],
)
def test_bad_toy_distributions(open_page, p, q, fragment):
    at = open_page(PAGE, "en")
    at.text_input(key="sp_p").set_value(p)
    at.text_input(key="sp_q").set_value(q).run()
    _no_exception(at)
    assert any(fragment in m for m in _messages(at)), _messages(at)


def test_server_down_gives_a_clear_error(open_page, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LLMLAB_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    at = open_page(PAGE, "en")
    at.button(key="sv_run").click().run()
    _no_exception(at)
    assert any("does not answer" in m for m in _messages(at)), _messages(at)


@pytest.mark.slow
def test_heavy_buttons_run(open_page):
    at = open_page(PAGE, "en")
    at.button(key="pa_real").click().run()
    _no_exception(at)
    assert "ch8_pa_real" in at.session_state and at.session_state["ch8_pa_real"]["max_abs_diff"] < 1e-5
    at.slider(key="sv_off_n").set_value(2)
    at.slider(key="sv_off_tokens").set_value(4).run()
    at.button(key="sv_off_run").click().run()
    _no_exception(at)
    assert [r["batch_size"] for r in at.session_state["ch8_offline"]] == [1, 2]
    at.text_area(key="sp_prompt").set_value("").run()
    at.button(key="sp_run").click().run()
    _no_exception(at)
    assert any("empty" in m for m in _messages(at))


@pytest.mark.slow
@pytest.mark.server
def test_load_test_button_against_the_real_server(open_page, tmp_path, monkeypatch):
    from engine.serving import stop_server

    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))  # its own server, never a developer's
    try:
        at = open_page(PAGE, "en")
        at.text_input(key="sv_levels").set_value("1,2")
        at.slider(key="sv_requests").set_value(2)
        at.slider(key="sv_tokens").set_value(4).run()
        at.button(key="sv_run").click().run()
        _no_exception(at)
        rows = at.session_state["ch8_load"]
        assert [r["concurrency"] for r in rows] == [1, 2] and all(r["errors"] == 0 for r in rows)
    finally:
        stop_server()
