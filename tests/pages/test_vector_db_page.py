"""Chapter 12 page, driven like a learner: step-through modes, sweep refusal and run, store CRUD and recovery.

The default run in both languages is covered by test_smoke.py; these interactions embed the Constitution with the
real MiniLM and build real indexes, so they are slow.
"""

from __future__ import annotations

import pytest

PAGE = "pages/12_vector_db.py"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    monkeypatch.delenv("PINECONE_API_KEY", raising=False)
    return tmp_path


def _clean(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _button(at, label):
    return next(b for b in at.button if b.label == label)


@pytest.mark.slow
def test_step_through_modes(open_page, cache):
    at = open_page(PAGE, "en")
    _clean(at)
    for key, value in (("hs_mode", "insert"), ("hs_kind", "nsw"), ("hs_data", "corpus"), ("hs_mode", "search")):
        at.radio(key=key).set_value(value).run()
        _clean(at)
    at.slider(key="hs_step").set_value(2).run()
    _clean(at)


@pytest.mark.slow
def test_sweep_refuses_then_runs(open_page, cache):
    at = open_page(PAGE, "en")
    at.number_input(key="sw_n").set_value(1_000_000_000).run()
    at.button(key="sw_run").click().run()
    _clean(at)
    assert any("1,000,000,000" in w.value for w in at.warning)
    at.number_input(key="sw_n").set_value(1_000).run()
    at.text_input(key="sw_ef").set_value("8,32").run()
    at.button(key="sw_run").click().run()
    _clean(at)
    rows = at.session_state["_job_ch12_sweep"].result.rows
    assert {r["library"] for r in rows} == {"hnswlib", "faiss"} and len(rows) == 8


@pytest.mark.slow
def test_store_crud_and_recovery(open_page, cache):
    at = open_page(PAGE, "en")
    _clean(at)
    at.button(key="vs_load").click().run()
    _clean(at)
    assert any("136" in s.value for s in at.success)
    at.radio(key="vs_part").set_value("addenda").run()
    ids = list(at.dataframe[-1].value["Document ID"])  # the hits table's first column (en header)
    assert ids and all(i.startswith("부칙") for i in ids)

    at.text_input(key="vs_add_id").input("note-1")
    at.text_area(key="vs_add_text").input("The president serves a single five-year term.")
    _button(at, "Insert").click().run()
    _clean(at)
    assert any("note-1" in s.value for s in at.success)
    at.text_input(key="vs_add_id").input("note-1")
    at.text_area(key="vs_add_text").input("again")
    _button(at, "Insert").click().run()
    assert any("already in the store" in w.value for w in at.warning)
    at.text_input(key="vs_del_id").input("no-such-id")
    _button(at, "Delete").click().run()
    assert any("nothing was deleted" in w.value for w in at.warning)

    path = cache / "vector_store" / "constitution.sqlite"
    at2 = open_page(PAGE, "en")  # a new session finds the same documents on disk
    _clean(at2)
    assert "137 documents" in " ".join(c.value for c in at2.caption)

    path.write_bytes(b"garbage" * 1000)
    path.with_name(path.name + "-wal").unlink(missing_ok=True)
    at3 = open_page(PAGE, "en")
    assert any("not a readable vector store" in w.value for w in at3.warning)
    at3.checkbox(key="vs_reset_sure").check().run()
    at3.button(key="vs_reset").click().run()
    _clean(at3)
    assert list(path.parent.glob("constitution.sqlite.bak-*"))


@pytest.mark.slow
def test_large_knn_settings_wait_for_the_button(open_page, cache):
    """n = 100,000 × 384 takes minutes: a slider move shows the shipped measurement and a run button, and
    measures nothing; efSearch picks another point of the same measurement."""
    at = open_page(PAGE, "ko")
    at.select_slider(key="ka_n").set_value(100_000).run()
    at.select_slider(key="ka_dim").set_value(384).run()
    at.select_slider(key="ka_ef").set_value(256).run()
    _clean(at)
    assert (100_000, 384) not in at.session_state["ka_measured"]
    assert any(b.key == "ka_run" for b in at.button)
    assert any("knn_ann" in c.value for c in at.caption if c.value.startswith("📦"))
    assert at.dataframe[0].value.shape == (6, 4)  # one row per efSearch of the shipped grid
    at.select_slider(key="ka_n").set_value(1_000).run()  # small: measured live, no button
    _clean(at)
    assert (1_000, 384) in at.session_state["ka_measured"] and not any(b.key == "ka_run" for b in at.button)
