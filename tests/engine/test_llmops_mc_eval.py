"""engine.llmops.mc_eval: the Constitution cloze benchmark, log-likelihood scoring (acc, acc_norm, acc_bytes) and
the item-by-item check against lm-evaluation-harness (the real harness: its own task loading, request building and
metric code; in the slow test its own CLI with the real packaged model)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from engine.core.precomputed import load_precomputed
from engine.core.textinput import InputError
from engine.llmops import mc_eval as mc


@pytest.fixture(scope="module")
def items():
    return mc.load_items()


def test_shipped_items_are_the_seeded_build(items):
    assert len(items) == mc.N_ITEMS == 50
    assert items == mc.build_cloze_items()  # the JSONL is exactly what the seeded builder makes
    for it in items:
        assert len(it.choices) == 4 and len(set(it.choices)) == 4
        assert it.context.startswith(f"대한민국헌법 {it.article} ")
        assert "constitution.txt" in it.source
    # the right phrase really ends a sentence of that article
    from engine.core.corpus import load_constitution

    texts = {d.doc_id: d.text for d in load_constitution()}
    for it in items:
        body = it.context.removeprefix(f"대한민국헌법 {it.article} ")
        assert f"{body} {it.choices[it.label]}" in texts[it.article]
    labels = [it.label for it in items]
    assert all(labels.count(k) >= 5 for k in range(4))  # shuffled: no position wins by itself


def _item(**kw):
    base = {"item_id": "x", "context": "대한민국은", "choices": ("민주공화국이다.", "왕국이다."), "label": 0}
    return mc.McItem(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"choices": ("민주공화국이다.",)}, "llmops.mc.too_few_choices"),
        ({"choices": ()}, "llmops.mc.too_few_choices"),
        ({"context": "  "}, "llmops.mc.empty_context"),
        ({"choices": ("민주공화국이다.", "")}, "llmops.mc.empty_choice"),
        ({"choices": ("같다", "같다")}, "llmops.mc.duplicate_choice"),
        ({"label": 2}, "llmops.mc.bad_label"),
        ({"label": -1}, "llmops.mc.bad_label"),
    ],
)
def test_bad_items(kw, code):
    with pytest.raises(InputError) as info:
        mc.check_item(_item(**kw))
    assert info.value.code == code and "{" not in str(info.value)


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "context": "c", "choices": ["x"], "label": 0}\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        mc.load_items(bad)
    assert info.value.code == "llmops.mc.too_few_choices"
    bad.write_text("not json\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        mc.load_items(bad)
    assert info.value.code == "llmops.mc.bad_line" and info.value.fmt["line"] == 1
    bad.write_text('{"id": "a", "choices": ["x", "y"], "label": 0}\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        mc.load_items(bad)
    assert info.value.code == "llmops.mc.bad_line"
    bad.write_text("\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        mc.load_items(bad)
    assert info.value.code == "llmops.mc.no_items"
    line = json.dumps({"id": "a", "context": "c", "choices": ["x", "y"], "label": 1})
    bad.write_text(f"{line}\n{line}\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        mc.load_items(bad)
    assert info.value.code == "llmops.mc.duplicate_id"
    with pytest.raises(InputError):
        mc.load_items(limit=0)


@pytest.fixture(scope="module")
def harness_task(tmp_path_factory, items):
    """The harness's own task object, built by its TaskManager from our YAML over our JSONL (offline)."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lm_eval.tasks import TaskManager, get_task_dict

    work = tmp_path_factory.mktemp("lm_eval_task")
    data = mc.write_items(items, work / "items.jsonl")
    (work / f"{mc.TASK_NAME}.yaml").write_text(mc.task_yaml(data), encoding="utf-8")
    manager = TaskManager(include_path=str(work), include_defaults=False)
    return get_task_dict([mc.TASK_NAME], manager)[mc.TASK_NAME]


def test_harness_builds_the_same_requests(harness_task, items):
    docs = list(harness_task.test_docs())
    assert [d["id"] for d in docs] == [it.item_id for it in items]
    for doc, item in zip(docs, items, strict=True):
        ctx = harness_task.fewshot_context(doc, 0)
        requests = harness_task.construct_requests(doc, ctx)
        assert [r.arguments for r in requests] == mc.requests_for(item)


def test_harness_metric_code_agrees_with_ours(harness_task, items):
    """Feed the harness's own process_results the same log-likelihoods as our argmax rules: identical verdicts,
    including items where dividing by characters (acc_norm) and by bytes (acc_bytes) disagree."""
    import random

    rng = random.Random(0)
    doc = next(iter(harness_task.test_docs()))
    item = items[0]
    disagree = 0
    for _ in range(300):
        lls = [rng.uniform(-60, -5) for _ in item.choices]
        theirs = harness_task.process_results(doc, [(ll, False) for ll in lls])
        chars = [len(c) for c in item.choices]
        nbytes = [len(c.encode()) for c in item.choices]
        pred_norm = mc._argmax([ll / n for ll, n in zip(lls, chars, strict=True)])
        pred_bytes = mc._argmax([ll / n for ll, n in zip(lls, nbytes, strict=True)])
        assert theirs["acc"] == float(mc._argmax(lls) == item.label)
        assert theirs["acc_norm"] == float(pred_norm == item.label)
        assert theirs["acc_bytes"] == float(pred_bytes == item.label)
        disagree += pred_norm != pred_bytes
    assert disagree > 0  # Korean: characters and UTF-8 bytes are not proportional (spaces and dots are 1 byte)


@pytest.fixture(scope="module")
def scoring_model():
    return mc.load_scoring_model()


def test_encode_pair_is_the_harness_encode_pair(items):
    """Our tokenization of (context, continuation) against lm-eval's own `_encode_pair` with the same tokenizer."""
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(mc.model_dir())
    lm = HFLM.__new__(HFLM)  # the harness's method on a bare instance: no second model load
    lm.tokenizer, lm.backend, lm.add_bos_token, lm.custom_prefix_token_id = tokenizer, "causal", None, None
    for item in items[:10]:
        for context, continuation in mc.requests_for(item):
            assert mc.encode_pair(tokenizer, context, continuation) == HFLM._encode_pair(lm, context, continuation)
    # trailing spaces of the context move to the continuation
    ctx, cont = mc.encode_pair(tokenizer, "대한민국은 ", "민주공화국이다.")
    assert (ctx, cont) == mc.encode_pair(tokenizer, "대한민국은", " 민주공화국이다.")


def test_scores_three_items(scoring_model, items):
    scores, seconds = mc.score_items(items[:3], loaded=scoring_model)
    assert seconds > 0 and len(scores) == 3
    for s, it in zip(scores, items[:3], strict=True):
        assert s.item_id == it.item_id and len(s.loglikelihoods) == 4
        assert all(ll < 0 and math.isfinite(ll) for ll in s.loglikelihoods)
        assert s.char_lengths == tuple(len(c) for c in it.choices)
        assert s.pred == max(range(4), key=lambda i: s.loglikelihoods[i])
        assert s.acc in (0.0, 1.0) and s.acc_norm in (0.0, 1.0)
    # deterministic: the same numbers again
    again, _ = mc.score_items(items[:1], loaded=scoring_model)
    assert again[0].loglikelihoods == scores[0].loglikelihoods


def test_shipped_result_matches_the_harness_on_every_item(items):
    shipped = load_precomputed("ch13_mc_eval")
    assert shipped is not None, "run: python -m engine mc-eval --save-precomputed"
    summary = shipped.data["summary"]
    assert summary["n_items"] == len(items) == len(shipped.data["items"])
    assert summary["n_equal"] == summary["n_items"]
    assert [r["item_id"] for r in shipped.data["items"]] == [it.item_id for it in items]
    for row in shipped.data["items"]:
        assert row["acc"] == row["lm_eval_acc"] and row["acc_norm"] == row["lm_eval_acc_norm"]
        assert row["same_requests"] is True
    assert summary["acc"] == pytest.approx(sum(r["acc"] for r in shipped.data["items"]) / len(items))


@pytest.mark.slow
def test_cli_equals_lm_eval_item_by_item():
    """The real harness (its CLI, offline, `--model hf` on the packaged model's folder) against our scoring."""
    out = subprocess.run(
        [sys.executable, "-m", "engine", "mc-eval", "--json", "--quiet", "--limit", "3"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    rows, summary = lines[:-1], lines[-1]
    assert len(rows) == 3 and summary["summary"] is True and summary["n_items"] == 3
    for row in rows:
        assert {"item_id", "acc", "acc_norm", "lm_eval_acc", "lm_eval_acc_norm"} <= set(row)
        assert row["acc"] == row["lm_eval_acc"] and row["acc_norm"] == row["lm_eval_acc_norm"]
        assert row["acc_bytes"] == row["lm_eval_acc_bytes"]
        assert row["same_requests"] is True and row["max_ll_diff"] < 1e-3
    assert summary["n_equal"] == 3 and summary["harness_version"]
