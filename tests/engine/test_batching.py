"""engine.inference.batching: the batching simulation's bookkeeping, the policies' defining behaviour, and the real
measurements (cost model, padded batch, offline batched generation) on `chat`."""

from __future__ import annotations

import pytest

from engine.inference.batching import (
    POLICIES,
    CostModel,
    Request,
    batched_generate,
    default_costs,
    make_workload,
    measure_costs,
    real_static_batch,
    simulate,
    snapshot,
)

COST = CostModel(0.02, 0.001, 0.05, 0.005, "test")


@pytest.mark.parametrize("policy", POLICIES)
def test_every_request_is_answered_after_it_arrives(policy):
    work = make_workload(20, rate_per_s=5.0, seed=3)
    res = simulate(work, policy, COST, max_batch=4, max_wait_s=0.3)
    assert set(res.returned) == {r.id for r in work}
    for r in work:
        assert r.arrival_s <= res.start[r.id] < res.first_token[r.id] <= res.done[r.id] <= res.returned[r.id]
    m = res.metrics()
    assert m["p50_latency_s"] <= m["p95_latency_s"] and m["tokens_per_s"] > 0
    # never more than max_batch requests in prefill/decode at once
    for t in [i * 0.05 for i in range(400)]:
        busy = [s for s in snapshot(res, t) if s["status"] in ("prefill", "decode", "padding")]
        assert len(busy) <= 4


def test_continuous_has_no_padding_and_static_does():
    work = [Request(0, 0.0, 10, 2), Request(1, 0.0, 10, 40)]  # one short, one long
    static = simulate(work, "static", COST, max_batch=2)
    cont = simulate(work, "continuous", COST, max_batch=2)
    assert cont.metrics()["slot_utilization"] == 1.0
    assert static.metrics()["slot_utilization"] < 0.6
    assert static.returned[0] == static.returned[1]  # a static batch answers everyone at the end
    assert cont.returned[0] < cont.returned[1]  # the short request leaves as soon as it is done
    assert any(s["phase"] == "padding" for s in static.segments)
    assert not any(s["phase"] == "padding" for s in cont.segments)


def test_continuous_lets_a_late_request_join_a_running_batch():
    work = [Request(0, 0.0, 8, 60), Request(1, 0.5, 8, 5)]
    cont = simulate(work, "continuous", COST, max_batch=4)
    static = simulate(work, "static", COST, max_batch=4)
    assert cont.start[0] == 0.0 and cont.first_token[1] < 0.7  # the late one joined within an iteration or two
    assert cont.returned[1] < cont.returned[0]  # ... and, being short, left long before the first one
    assert static.start[0] == 0.5  # static: the first request waited for the batch to fill
    assert static.returned[1] == static.returned[0]


def test_batch_of_one_is_the_same_for_every_policy():
    work = make_workload(6, rate_per_s=2.0, seed=1)
    ret = {p: simulate(work, p, COST, max_batch=1, max_wait_s=0.0).returned for p in POLICIES}
    for rid in ret["static"]:
        assert ret["static"][rid] == pytest.approx(ret["continuous"][rid])
        assert ret["static"][rid] == pytest.approx(ret["dynamic"][rid])


def test_dynamic_leaves_early_when_the_wait_runs_out():
    work = [Request(0, 0.0, 8, 4), Request(1, 5.0, 8, 4)]
    static = simulate(work, "static", COST, max_batch=2)
    dynamic = simulate(work, "dynamic", COST, max_batch=2, max_wait_s=0.5)
    assert static.start[0] == 5.0  # static waits for a full batch
    assert dynamic.start[0] == pytest.approx(0.5)  # dynamic leaves after max_wait


def test_workload_is_reproducible_and_bounded():
    assert make_workload(10, seed=5) == make_workload(10, seed=5)
    w = make_workload(50, rate_per_s=10.0, prompt_range=(3, 9), output_range=(2, 4), seed=0)
    assert all(3 <= r.prompt_tokens <= 9 and 2 <= r.output_tokens <= 4 for r in w)
    assert [r.arrival_s for r in w] == sorted(r.arrival_s for r in w)


def test_bad_input():
    with pytest.raises(ValueError):
        make_workload(0)
    with pytest.raises(ValueError):
        make_workload(5, rate_per_s=0)
    with pytest.raises(ValueError):
        make_workload(5, prompt_range=(10, 2))
    with pytest.raises(ValueError):
        simulate(make_workload(3), "magic", COST)
    with pytest.raises(ValueError):
        simulate(make_workload(3), "static", COST, max_batch=0)
    with pytest.raises(ValueError):
        simulate([], "static", COST)


def test_default_costs_are_labelled():
    c = default_costs()
    assert "reference" in c.source and c.decode(8) > c.decode(1) > 0 and c.prefill(0) == 0


def test_measured_costs_are_positive_and_grow(chat_lm):
    c = measure_costs(chat_lm, prompt_lens=(8, 64), batch_sizes=(1, 8), repeats=1)
    assert c.prefill(64) >= c.prefill(8) > 0
    assert c.decode(8) >= c.decode(1) > 0
    assert "measured" in c.source and len(c.samples) == 4


@pytest.mark.slow
def test_real_runs(chat_lm):
    r = real_static_batch(chat_lm, batch=2, prompt_tokens=8, new_tokens=4, cost=default_costs())
    assert r["measured_s"] > 0 and r["predicted_s"] > 0 and r["measured_over_predicted"] > 0
    out = batched_generate(chat_lm, ["What is 2+2?", "Name a colour.", "Say hi."], max_new_tokens=6, batch_size=3)
    assert len(out["answers"]) == 3 and all(isinstance(a, str) for a in out["answers"])
    assert 3 <= out["generated_tokens"] <= 18 and out["tokens_per_s"] > 0
    with pytest.raises(ValueError):
        batched_generate(chat_lm, [], 4)
    with pytest.raises(ValueError):
        batched_generate(chat_lm, ["  "], 4)
