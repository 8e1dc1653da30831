"""engine.inference.views: the chapter 7 and 8 views, one call each, agree with the functions they combine."""

from __future__ import annotations

import pytest

from engine.inference import views
from engine.inference.batching import POLICIES, default_costs, make_workload, simulate
from engine.inference.batching_throughput import gpu_specs, ridge_point


def test_roofline_view_uses_the_named_gpu():
    gpu = gpu_specs()[0]
    view = views.roofline_view(gpu["name"], "7B", "fp16/bf16")
    assert view.gpu == gpu and view.size == "7B"
    assert [r["batch"] for r in view.rows] == list(views.ROOFLINE_BATCHES)
    assert view.ridge == pytest.approx(ridge_point(gpu["peak_tflops"], gpu["bandwidth_tbs"]))
    with pytest.raises(ValueError):
        views.roofline_view("no such GPU", "7B", "fp16/bf16")


def test_method_table_is_relative_to_rtn():
    rows = views.method_table({"RTN": 2.0, "GPTQ": 1.0}, {"RTN": 0.5, "GPTQ": 0.4})
    assert rows[1] == {"method": "GPTQ", "heldout_error": 1.0, "vs_rtn": 0.5, "weight_error": 0.4}


def test_compare_policies_replays_every_policy_on_one_workload():
    cost = default_costs()
    cmp = views.compare_policies(6, 1.0, 2, 0.5, cost, seed=1)
    assert list(cmp.results) == list(POLICIES) and len(cmp.metrics) == len(POLICIES)
    alone = simulate(make_workload(6, 1.0, seed=1), POLICIES[0], cost, 2, 0.5).metrics()
    assert cmp.metrics[0] == alone
    assert cmp.horizon_s >= max(m["makespan_s"] for m in cmp.metrics)


def test_usage_with_paper_appends_the_papers_rows():
    rows = views.usage_with_paper("Alpaca", 16, n=20)
    paper = [r for r in rows if r["policy"].startswith("📄")]
    assert len(paper) == 4 and len(rows) > 4
    assert all("token_states_pct" in r for r in rows)


def test_offline_batches_runs_one_then_all(monkeypatch):
    calls = []

    def fake(lm, prompts, max_new_tokens, batch_size, progress, should_stop):
        progress(1.0, "done")
        calls.append(batch_size)
        return {"batch_size": batch_size}

    monkeypatch.setattr(views, "batched_generate", fake)
    seen, fractions = [], []
    rows = views.offline_batches(None, ["a", "b", "c"], 4, lambda f, m: fractions.append(f), on_row=seen.append)
    assert calls == [1, 3] and rows == seen == [{"batch_size": 1}, {"batch_size": 3}]
    assert fractions == [0.5, 1.0]


def test_position_text_holds_the_copy_prompt():
    assert views.COPY_PROMPT in views.position_text()


def test_sdpa_timing_reports_the_machine(monkeypatch):
    monkeypatch.setattr(views, "time_sdpa_backends", lambda lengths, **kw: [{"T": 8, "ms": 1.0}, {"T": 8, "ms": None}])
    monkeypatch.setattr(views, "measure_sdpa_memory", lambda T, causal: [{"backend": "math"}])
    res = views.sdpa_timing([8], causal=True)
    assert res.timed == [{"T": 8, "ms": 1.0}] and res.memory == [{"backend": "math"}] and res.threads >= 1
