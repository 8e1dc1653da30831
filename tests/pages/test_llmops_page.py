"""Chapter 13 page through AppTest, driven like a learner: a fresh page opens every section with a cheap live
computation (data versions, the cost calculator, text metrics, kappa, the precision calculator) and no model server;
the shipped results of each section draw in both languages; labels are stored per learner and their agreement shown;
bad input (an empty reference, a bad learner id, unequal label lists, a promotion without who or why, an alias that
does not exist, a corrupted tracking store, absurd values in a shared link, a dead model server) gives a translated
message and the page keeps working. The tracked training run -> register -> promote -> load flow is slow (a real
toy DPO run into a real MLflow store).

Every test runs in its own LLMLAB_CACHE (tmp_path): the tracking store, the label store and the registry's copies
are created there, never in a developer's cache.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

import ui.i18n
from tests.pages.conftest import ROOT, TIMEOUT, exceptions
from ui.i18n import strings

PAGE = "pages/13_llmops.py"
SECTIONS = ("experiments", "registry", "monitoring", "metrics", "benchmark", "human", "judge", "rag")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    for name in ("LLMLAB_TRACKING_URI", "LLMLAB_LLM_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    from engine.llmops import tracking

    tracking.reset()  # stores checked by earlier tests are forgotten
    return tmp_path


def _clean(at) -> None:
    assert not at.exception, exceptions(at)
    assert not at.error, [e.value for e in at.error]


def _warnings(at) -> list[str]:
    return [w.value for w in at.warning]


def _message(code: str, lang: str) -> str:
    """The translated sentence of an error code up to its first placeholder (what the learner reads)."""
    return strings()[f"error.{code}"][lang].split("{")[0].strip()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_fresh_page_renders_every_section(open_page, cache, lang):
    at = open_page(PAGE, lang)
    _clean(at)
    assert [h.proto.anchor for h in at.header] == list(SECTIONS)
    for key in ("ex_run", "ex_refresh", "rg_register", "rg_promote", "rg_load", "mo_read", "mo_drift", "mc_run"):
        assert at.button(key=key) is not None
    for key in ("jd_ask", "jd_run", "ra_run"):
        assert at.button(key=key) is not None
    assert at.button(key="rg_register").disabled  # nothing tracked yet: nothing to register
    # nothing asked: no model, no harness, no training ran
    for key in ("ch13_tracked", "ch13_mc", "ch13_judge", "ch13_rag", "ch13_two", "ch13_monitor", "ch13_drift"):
        assert key not in at.session_state
    assert at.session_state["ch13_runs"] == []  # an empty store reads as no runs (and is not created)
    assert not (cache / "mlflow" / "mlflow.db").exists()
    assert not (cache / "llmops" / "labels.sqlite").exists()  # reading the agreement creates no label store
    # the cheap live computations every section opens with
    digests = [row for frame in (d.value for d in at.dataframe) for row in frame.values.tolist() if len(row) == 3]
    assert len({r[2] for r in digests if isinstance(r[2], str) and len(r[2]) == 16}) == 4  # 4 data versions
    assert at.get("plotly_chart"), "no text-metrics chart"
    assert "κ" in [m.label for m in at.metric]
    if lang == "ko":
        assert at.text_area(key="mt_pred").value == "모든 국민은 근로의 권리를 가진다."


def test_text_metrics_example_chips_and_an_empty_reference(open_page, cache):
    at = open_page(PAGE, "en")
    at.button_group(key="mt_chip").set_value(2).run()
    _clean(at)
    assert at.text_area(key="mt_pred").value == "국회의원의 임기는 4년으로 한다."
    assert at.text_area(key="mt_ref").value == "국회의원 임기는 4년이다."
    at.text_area(key="mt_ref").set_value("   ").run()
    assert not at.exception, exceptions(at)
    start = _message("llmops.metrics.empty_reference", "en")
    assert any(start.split(":")[-1].strip()[:20] in w for w in _warnings(at)), _warnings(at)
    at.text_area(key="mt_ref").set_value("모든 국민은 근로의 권리를 가진다.").run()  # and back: scored again
    _clean(at)
    assert not _warnings(at)


def test_labels_are_stored_per_learner_and_agreement_is_shown(open_page, cache):
    from engine.llmops import LabelStore

    at = open_page(PAGE, "en")
    at.text_input(key="hu_learner").set_value("kim").run()
    _clean(at)
    at.button(key="hu_btn_A").click().run()  # p001: kim says A (the reference says B)
    _clean(at)
    at.button(key="hu_btn_B").click().run()  # p002: B (the reference says B)
    _clean(at)
    at.text_input(key="hu_learner").set_value("lee").run()
    at.button(key="hu_btn_B").click().run()  # p001: B
    at.button(key="hu_btn_B").click().run()  # p002: B
    _clean(at)
    store = LabelStore()
    try:
        labels = {(r.learner, r.item_id): r.label for r in store.labels(kind="pairwise")}
    finally:
        store.close()
    assert labels == {("kim", "p001"): "A", ("kim", "p002"): "B", ("lee", "p001"): "B", ("lee", "p002"): "B"}
    shown = [frame for frame in (d.value for d in at.dataframe) if "Rater 1" in frame.columns]
    assert shown and shown[0].values.tolist()[0][:3] == ["kim", "lee", 2]
    # kim vs lee: one agreement in two, labels B and A against B and B -> kappa 0 (a number, not a reason)
    assert shown[0].values.tolist()[0][5] == "0.000", shown[0].values.tolist()
    at.radio(key="hu_kind").set_value("likert").run()
    at.button(key="hu_btn_5").click().run()
    _clean(at)
    store = LabelStore()
    try:
        assert [(r.learner, r.item_id, r.label) for r in store.labels(kind="likert")] == [("lee", "p001/A", "5")]
    finally:
        store.close()


def test_bad_learner_id_and_bad_kappa_inputs_give_messages(open_page, cache):
    at = open_page(PAGE, "ko")
    at.text_input(key="hu_learner").set_value("가" * 41).run()
    assert not at.exception, exceptions(at)
    assert any(_message("llmops.labels.bad_learner", "ko") in w for w in _warnings(at)), _warnings(at)
    assert not (cache / "llmops" / "labels.sqlite").exists()  # a refused id creates no label store
    at.text_input(key="hu_learner").set_value("").run()
    at.text_input(key="kp_b").set_value("A, B").run()  # 8 labels against 2
    assert not at.exception, exceptions(at)
    assert any(_message("llmops.kappa.unequal", "ko") in w for w in _warnings(at)), _warnings(at)
    at.text_input(key="kp_a").set_value("A A A").run()
    at.text_input(key="kp_b").set_value("A A A").run()  # one class only: kappa is 0/0
    assert not at.exception, exceptions(at)
    assert any(_message("llmops.kappa.one_class", "ko") in w for w in _warnings(at)), _warnings(at)
    at.text_input(key="kp_b").set_value("A B A").run()
    _clean(at)
    assert not _warnings(at)


def test_promotion_needs_who_and_why_and_a_missing_alias_is_explained(open_page, cache):
    at = open_page(PAGE, "en")
    at.button(key="rg_promote").click().run()
    assert not at.exception, exceptions(at)
    assert any(_message("llmops.registry.no_who", "en") in w for w in _warnings(at)), _warnings(at)
    at.text_input(key="rg_who").set_value("kim").run()
    at.button(key="rg_promote").click().run()
    assert any(_message("llmops.registry.no_why", "en") in w for w in _warnings(at)), _warnings(at)
    at.text_input(key="rg_name").set_value("no such model!").run()
    at.text_area(key="rg_why").set_value("EX 2/60 -> 4/60").run()
    at.button(key="rg_promote").click().run()
    assert any(_message("llmops.registry.bad_name", "en")[:10] in w for w in _warnings(at)), _warnings(at)
    at.text_input(key="rg_name").set_value("text2sql-chat").run()
    at.button(key="rg_load").click().run()
    assert not at.exception, exceptions(at)
    assert any("text2sql-chat" in w for w in _warnings(at)), _warnings(at)  # no such model in an empty store


def test_a_corrupted_tracking_store_gives_a_clear_message_and_is_left_alone(open_page, cache):
    store = cache / "mlflow" / "mlflow.db"
    store.parent.mkdir(parents=True)
    garbage = b"this is not an SQLite database\n" * 64
    store.write_bytes(garbage)
    at = open_page(PAGE, "ko")
    assert not at.exception, exceptions(at)
    start = _message("llmops.tracking.unreadable", "ko")
    assert any(start[:12] in w for w in _warnings(at)), _warnings(at)
    assert store.read_bytes() == garbage  # nothing lost: the file is not rewritten
    at.button_group(key="mt_chip").set_value(0).run()  # the rest of the page still works
    assert not at.exception, exceptions(at)


def test_absurd_values_in_a_shared_link_fall_back(monkeypatch, cache):
    monkeypatch.setattr(ui.i18n, "DEFAULT_LANG", "en")
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=TIMEOUT)
    at.session_state["lang"] = "en"
    for key, value in {
        "ex_steps": "100000",
        "ex_beta": "7",
        "mc_n": "-1",
        "jd_n": "9999",
        "ra_n": "nan",
        "mo_bucket": "year",
        "mo_req": "-5",
        "rg_version": "-5",
        "rc_gold": "99",
        "kp_w": "cubic",
        "hu_kind": "essay",
        "jd_role": "root",
        "jd_pair": "../../etc/passwd",
    }.items():
        at.query_params[key] = value
    at.run()
    _clean(at)
    assert at.slider(key="ex_steps").value == 15
    assert at.select_slider(key="ex_beta").value == 0.1
    assert at.slider(key="mc_n").value == 5
    assert at.slider(key="jd_n").value == 10
    assert at.slider(key="ra_n").value == 3
    assert at.radio(key="mo_bucket").value == "auto"
    assert at.number_input(key="mo_req").value == 0
    assert at.number_input(key="rg_version").value == 1
    assert at.number_input(key="rc_gold").value == 5
    assert at.radio(key="kp_w").value == "none"
    assert at.radio(key="hu_kind").value == "pairwise"
    assert at.selectbox(key="jd_role").value == "instruct"
    assert at.selectbox(key="jd_pair").value == "p001"


def test_context_precision_calculator_is_rank_aware(open_page, cache):
    at = open_page(PAGE, "en")
    values = lambda: {m.label: m.value for m in at.metric}  # noqa: E731
    at.button_group(key="rc_rel").set_value([1]).run()
    at.number_input(key="rc_gold").set_value(1).run()
    _clean(at)
    assert values()["Context precision"] == "1.000" and values()["Context recall"] == "1.000"
    at.button_group(key="rc_rel").set_value([5]).run()
    _clean(at)
    assert values()["Context precision"] == "0.200" and values()["Context recall"] == "1.000"
    at.button_group(key="rc_rel").set_value([]).run()
    _clean(at)
    assert values()["Context precision"] == "0.000" and values()["Context recall"] == "0.000"


def test_a_dead_model_server_gives_a_clear_error_and_keeps_the_page(open_page, cache, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    monkeypatch.setenv("LLMLAB_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    at = open_page(PAGE, "ko")
    at.button(key="jd_ask").click().run()
    assert not at.exception, exceptions(at)
    assert at.error and any(str(port) in e.value for e in at.error), [e.value for e in at.error]
    assert "ch13_two" not in at.session_state
    at.text_input(key="kp_a").set_value("A B A B").run()  # the rest of the page still works
    at.text_input(key="kp_b").set_value("A B B B").run()
    assert not at.exception, exceptions(at)


def test_every_label_key_the_page_builds_exists():
    from engine.llmops import CONFIGS, JUDGE_ROLES, KINDS, LIKERT_LABELS, METRIC_EXAMPLE_PAIRS, PAIRWISE_LABELS
    from engine.llmops.human_eval import DESIGNS
    from engine.llmops.monitoring import BUCKETS, RAIL_NAMES
    from ui.llmops import JUDGE_FIGURES, RAG_METRICS

    keys = strings()
    expected = [f"ch13.design_{d}" for d in DESIGNS] + [f"ch13.rail_{r}" for r in RAIL_NAMES]
    expected += [f"ch13.role_{r.replace('-', '_')}" for r in JUDGE_ROLES] + [f"ch13.fig_{f}" for f in JUDGE_FIGURES]
    expected += [f"ch13.rag_{m}" for m in RAG_METRICS] + [f"ch13.config_{c}" for c in CONFIGS]
    expected += [f"ch13.example_{i}" for i in range(len(METRIC_EXAMPLE_PAIRS))]
    expected += [f"ch13.bucket_{b}" for b in ("auto", *BUCKETS)] + [f"ch13.kind_{k}" for k in KINDS]
    expected += [f"ch13.label_{x.lower()}" for x in PAIRWISE_LABELS] + [f"ch13.likert_{x}" for x in LIKERT_LABELS]
    expected += [f"ch13.tier_{x}" for x in ("local", "hosted", "unpriced")]
    expected += [f"ch13.method_{x}" for x in ("wilson", "bootstrap")]
    expected += [f"ch13.embedder_{x}" for x in ("ko_morph", "minilm")]
    expected += [f"ch13.weights_{x}" for x in ("none", "linear", "quadratic")]
    expected += [f"ch13.status_{x}" for x in ("finished", "failed", "killed", "running")]
    missing = [k for k in expected if k not in keys]
    assert not missing, missing


# -- the shipped results, in the shapes the engine writes them ----------------------------------------------------
def _judge_data() -> dict:
    """A judge that always picks the answer shown first (pure position bias), one verdict unusable."""
    from engine.llmops import Verdict, bias_report, load_judge_pairs

    pairs = load_judge_pairs()[:12]
    verdicts = []
    for i, p in enumerate(pairs):
        verdicts.append(Verdict(p.pair_id, "AB", "A", "첫 번째 답이 더 정확함", '{"winner": "A"}', None, 0.8))
        if i == 3:
            verdicts.append(Verdict(p.pair_id, "BA", None, "", "A is better", "llmops.judge.not_json", 0.9))
        else:
            verdicts.append(Verdict(p.pair_id, "BA", "A", "첫 번째 답", '{"winner": "A"}', None, 0.7))
    report = bias_report(pairs, verdicts)
    report.model, report.role, report.seconds = "qwen2.5-coder-0.5b-instruct", "instruct", 17.0
    return report.to_json(with_verdicts=True) | {"pairs_file": "default"}


def _monitoring_data() -> dict:
    from engine.llmops import DriftReport, TopicShare, TraceRecord, summarize

    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    local = "qwen2.5-coder-0.5b-instruct"

    def record(i: int, **kw) -> TraceRecord:
        base = {
            "trace_id": f"tr-{i:03d}",
            "started": start + timedelta(seconds=20 * i),
            "name": "rag.query",
            "question": f"질문 {i}",
            "latency_s": 2.0 + i,
            "error": False,
            "cache": "miss",
            "cache_lookup": True,
            "blocked": False,
            "model": local,
            "corpus": "constitution",
            "llm_called": True,
            "input_tokens": 600,
            "output_tokens": 40,
            "first_token_s": 0.9,
        }
        return TraceRecord(**(base | kw))

    records = [record(i) for i in range(5)]
    records += [record(5, cache="exact", llm_called=False, input_tokens=None, output_tokens=None, latency_s=0.05)]
    records += [record(6, blocked=True, llm_called=False, rails_triggered=("injection",), input_tokens=None)]
    records += [record(7, error=True, latency_s=30.0), record(8, model="gpt-4o-mini")]
    report = summarize(records, "minute", uri="(a temporary store)")
    topics = [
        TopicShare("제4장 정부", 0.8, 0.2, 4, 1),
        TopicShare("제3장 국회", 0.2, 0.6, 1, 3),
        TopicShare("other", 0.0, 0.2, 0, 1),
    ]
    drift = DriftReport("ko-morph", 5, 5, None, None, 0.12, 0.004, 500, topics, 0.6, 0.34, {"other": ["저녁 메뉴?"]})
    return {
        "model": local,
        "questions": [r.question for r in records],
        "failed": [],
        "wall_s": 61.2,
        "report": report.to_json(),
        "drift": {**drift.to_json(), "examples": drift.examples},
        "records": [],
    }


def _mc_data() -> dict:
    from engine.llmops import HarnessRun, ItemScore, McReport, load_mc_items, shipped_mc_data
    from engine.llmops.mc_eval import HarnessItem, compare, requests_for

    items = load_mc_items()[:3]
    scores, harness = [], {}
    for n, it in enumerate(items):
        lls = tuple(-10.0 - 3 * i - n for i in range(len(it.choices)))
        chars = tuple(len(c) for c in it.choices)
        nbytes = tuple(len(c.encode()) for c in it.choices)
        norm = max(range(len(lls)), key=lambda i: lls[i] / chars[i])
        byte = max(range(len(lls)), key=lambda i: lls[i] / nbytes[i])
        reqs = tuple(requests_for(it))
        scores.append(ItemScore(it.item_id, it.label, lls, chars, nbytes, (3,) * len(lls), 0, norm, byte, reqs))
        acc, acc_norm = float(it.label == 0), float(it.label == norm)
        harness[it.item_id] = HarnessItem(it.item_id, acc, acc_norm, float(it.label == byte), lls, reqs)
    run = HarnessRun(harness, 40.0, ["python", "-m", "lm_eval", "run"], "0.4.13", "task: ko_constitution_cloze", {})
    report = McReport(items, scores, compare(items, scores, run), "chat: smollm2-135m-instruct", 12.0, run)
    return shipped_mc_data(report)


def _rag_data() -> dict:
    from engine.llmops import ConfigScore, SampleScore

    def sample(q: str, faith: float | None) -> SampleScore:
        return SampleScore(
            q, "대통령의 임기는 5년입니다 [제70조].", ["제70조"], ["제70조", "제71조"], 1.0, 1.0, faith, 0.8, True
        )

    configs = []
    for name, cp in (("best", 0.9), ("chroma", 0.55)):
        configs.append(
            ConfigScore(
                name,
                "",
                name,
                5,
                2,
                cp,
                0.8,
                0.75,
                0.62,
                0.5,
                2,
                1,
                80.0,
                "qwen2.5-coder-0.5b-instruct",
                "qwen2.5-coder-0.5b-instruct",
                {m: [0.4, 0.95] for m in ("context_precision", "context_recall", "faithfulness", "answer_relevance")},
                [sample("대통령의 임기는?", 1.0), sample("국회의원의 임기는?", None)],
            ).to_json(with_samples=True)
        )
    return {"configs": configs, "questions": 2}


def _runs_data() -> dict:
    runs, curves = [], []
    for i, beta in enumerate((0.03, 0.3, 1.0)):
        run_id = f"{i + 1}a{i}b{i}c0d0e0f"
        runs.append(
            {
                "run_id": run_id,
                "chapter": "ch04",
                "name": "toy dpo",
                "status": "FINISHED",
                "started": f"2026-12-01T09:0{i}:00+00:00",
                "seconds": 21.5,
                "params": {"method": "dpo", "beta": str(beta), "steps": "30", "seed": "0"},
                "metrics": {"loss": 0.6 - 0.1 * i, "kl": 0.5 / (i + 1), "reward_mean": 0.2 + 0.1 * i},
                "datasets": [{"name": "toy-preferences", "digest": "0123abcd4567ef89", "rows": 512}],
                "parent_run_id": None,
            }
        )
        curves.append(
            {"run_id": run_id, "run_name": "toy dpo", "key": "loss", "steps": [1, 2, 3]}
            | {"values": [0.69, 0.65 - 0.05 * i, 0.6 - 0.1 * i]}
        )
    rows = [
        {"run_id": r["run_id"], "name": r["name"], "beta": float(r["params"]["beta"]), "loss": r["metrics"]["loss"]}
        for r in runs
    ]
    version = {
        "name": "ch04-toy-dpo",
        "version": 2,
        "uri": "models:/ch04-toy-dpo/2",
        "aliases": ["champion"],
        "run_id": runs[1]["run_id"],
        "source": "file:///tmp/artifacts/policy",
        "created": "2026-12-01T09:10:00+00:00",
        "dataset": {"name": "toy-preferences", "digest": "0123abcd4567ef89", "rows": 512},
        "description": "",
        "tags": {},
    }
    promotion = {"name": "ch04-toy-dpo", "version": 2, "alias": "champion", "who": "kim", "why": "KL가 더 작다"}
    return {
        "runs": runs,
        "curves": curves,
        "params": {"metric": "loss", "varying": ["beta"], "constant": {"method": "dpo", "seed": "0"}, "rows": rows},
        "registry": {
            "name": "ch04-toy-dpo",
            "versions": [version],
            "promotions": [promotion | {"at": "2026-12-01T09:12:00+00:00", "replaced": None}],
        },
    }


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_shipped_results_of_every_section_render(monkeypatch, cache, lang):
    """The shapes the engine writes (to_json / as_dict / shipped_mc_data) drawn on a fresh page, before any of them
    is generated on the reference machine; with a learner's labels, the judge is compared with them too."""
    from engine.core import precomputed
    from engine.llmops import LabelStore

    shipped = {
        "ch13_runs": _runs_data(),
        "ch13_monitoring": _monitoring_data(),
        "ch13_mc_eval": _mc_data(),
        "ch13_judge_bias": _judge_data(),
        "ch13_rag_eval": _rag_data(),
    }
    folder = cache / "precomputed"
    folder.mkdir()
    for name, data in shipped.items():
        body = {"name": name, "data": data, "command": f"python -m engine x --only {name}", "made": "2026-12-01"}
        (folder / f"{name}.json").write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(precomputed, "path_of", lambda name: folder / f"{name}.json")
    store = LabelStore()
    try:
        store.add_learner("kim")
        for pair_id, label in (("p001", "A"), ("p002", "B"), ("p003", "A"), ("p004", "tie")):
            store.label("kim", pair_id, "pairwise", label)
    finally:
        store.close()
    monkeypatch.setattr(ui.i18n, "DEFAULT_LANG", lang)
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=TIMEOUT)
    at.session_state["lang"] = lang
    at.run()
    _clean(at)
    notes = [c.value for c in at.caption if c.value.startswith("📦")]
    assert len(notes) == len(shipped) + 1, notes  # the runs file feeds both the runs and the registry section
    assert all("python -m" in n for n in notes)
    assert len(at.get("plotly_chart")) >= 10, "a shipped chart is missing"
    frames = [d.value for d in at.dataframe]
    assert any("kim" in frame.values.tolist()[0] for frame in frames if len(frame)), "judge vs the learner's labels"
    assert any("KL가 더 작다" in str(frame.values.tolist()) for frame in frames)  # the promotion's why
    if lang == "ko":
        from tests.pages.audit import audit

        english, garbled = audit(at)
        assert not english and not garbled, (english, garbled)


@pytest.mark.slow
def test_track_register_promote_and_load_a_run(open_page, cache):
    """A real toy DPO run tracked into a real MLflow store, registered, promoted with who and why, and loaded by
    its alias."""
    at = open_page(PAGE, "ko")
    at.slider(key="ex_steps").set_value(5).run()
    at.button(key="ex_run").click().run()
    _clean(at)
    done = at.session_state["ch13_tracked"]
    assert done["run_id"] and done["status"] == "finished" and not done["warning"]
    runs = at.session_state["ch13_runs"]
    assert [r["run_id"] for r in runs] == [done["run_id"]]
    assert runs[0]["datasets"][0]["name"] == "toy-preferences" and runs[0]["params"]["beta"] == "0.1"
    assert {"loss", "kl", "reward_mean"} <= set(runs[0]["metrics"])
    at.button(key="rg_register").click().run()
    _clean(at)
    at.text_input(key="rg_who").set_value("김학습").run()
    at.text_area(key="rg_why").set_value("5스텝 실행: 첫 버전").run()
    at.button(key="rg_promote").click().run()
    _clean(at)
    at.button(key="rg_load").click().run()
    _clean(at)
    loaded = [s.value for s in at.success if "ch04-toy-dpo@champion" in s.value]
    assert loaded and "ch04-toy-dpo-v1" in loaded[-1]
    from engine.llmops import model_path, promotions

    assert (model_path("models:/ch04-toy-dpo@champion") / "policy.pt").is_file()
    assert [(p.version, p.alias, p.who) for p in promotions("ch04-toy-dpo")] == [(1, "champion", "김학습")]
    from tests.pages.audit import audit

    english, garbled = audit(at)
    assert not english and not garbled, (english, garbled)
