"""engine.compression.shipped and engine.inference.shipped: the results pages 7 and 8 show before any run.

Each file in assets/precomputed/ch07_*.json / ch08_*.json was made by the command it records, and turns back
into what a live run returns (a lossless round trip), so the pages draw shipped and own results the same way.
"""

from __future__ import annotations

import json

import pytest

from engine.compression import shipped_demo
from engine.compression.shipped import DEMOS, demo_command, demo_record
from engine.inference import shipped_rows
from engine.inference.generation import GenerationResult


def _json(data):
    """What the file holds (tuples are lists in JSON)."""
    return json.loads(json.dumps(data))


@pytest.mark.parametrize("demo", [d for d in DEMOS if d != "generation"])
def test_chapter7_demos_round_trip(demo):
    shipped = shipped_demo(demo)
    assert shipped is not None, f"assets/precomputed/ch07_{demo}.json is missing"
    assert shipped.pre.command == demo_command(demo)
    assert _json(demo_record(demo, shipped.result)) == shipped.pre.data


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_chapter7_generation_answers_the_default_prompt_of_each_language(lang):
    from ui.i18n import strings

    shipped = shipped_demo("generation", lang)
    assert shipped is not None and isinstance(shipped.result, GenerationResult)
    assert shipped.prompt == strings()["ch07.gen_default_prompt"][lang]
    assert shipped.pre.command == demo_command("generation", shipped.prompt, lang)
    assert _json(demo_record("generation", shipped.result)) == shipped.pre.data["result"]
    assert shipped.result.strategy == "greedy" and len(shipped.result.steps) == len(shipped.result.new_ids)


def test_chapter7_results_say_what_the_chapter_says():
    kv = shipped_demo("kv").result
    assert [r.new_tokens for r in kv] == [16, 64] and all(r.kv_bytes_measured == r.kv_bytes_formula for r in kv)
    batch = shipped_demo("batch").result
    assert [r.batch for r in batch["rows"]] == [1, 2, 4, 8] and batch["machine"].ridge > 0
    quant = {r.precision: r for r in shipped_demo("quant").result}
    assert quant["nf4"].bytes < 0.5 * quant["fp32"].bytes
    gq = shipped_demo("gptq_awq").result
    assert (gq.layer, gq.projection, gq.bits, gq.group_size) == (2, "q_proj", 4, 0)
    assert gq.errors["GPTQ"] < gq.errors["RTN"] and isinstance(gq.shape, tuple)
    kd = shipped_demo("distillation").result
    assert set(kd.final) == {"soft", "hard"} and kd.final["soft"].test_nll < kd.final["hard"].test_nll


def test_chapter8_rows():
    from engine.inference.shipped import demo_command as command8
    from ui.i18n import strings

    offline = shipped_rows("offline")
    assert offline.pre.command == command8("offline")
    assert [r["batch_size"] for r in offline.rows] == [1, 8] and len(offline.rows[-1]["answers"]) == 8
    load = shipped_rows("load")
    assert load.pre.command == command8("load") and [r["concurrency"] for r in load.rows] == [1, 4, 8]
    assert all(r["errors"] == 0 and r["tokens_per_s"] > 0 for r in load.rows)
    for lang in ("ko", "en"):
        prompt = strings()["ch8.sp_default_prompt"][lang]
        spec = shipped_rows("speculative", lang, prompt)
        assert spec is not None and spec.pre.command == command8("speculative", prompt, lang)
        assert spec.rows[0]["method"] == "plain" and all(r["same_as_plain"] for r in spec.rows)
        assert shipped_rows("speculative", lang, prompt + " (edited)") is None  # only for the default prompt
