"""Late-interaction reranker: MaxSim against a brute-force loop, answer types, persistence, the adapter's training
(tiny configs, a stand-in token encoder), the weight search, and (slow) the real Gemma-3-270M token states."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from engine.core.corpus import Doc
from engine.retrieval.late_interaction import (
    AdapterConfig,
    LateInteractionReranker,
    answer_type_match,
    asked_types,
    choose_weights,
    maxsim,
    stated_types,
    train_adapter,
)

H = 16  # hidden size of the stand-in encoder


class WordEncoder:
    """A stand-in for TokenStates: every whitespace word is one token with a fixed random unit vector."""

    def encode(self, text: str, content: bool = False):
        words = text.split()
        ids = np.array([zlib.crc32(w.encode()) for w in words], dtype=np.int64)
        states = np.array([np.random.default_rng(int(i)).normal(size=H) for i in ids], dtype=np.float32)
        states = states.reshape(len(words), H)
        states /= np.linalg.norm(states, axis=1, keepdims=True) + 1e-9
        return ids, states, np.ones(len(words), dtype=bool)


DOCS = ["대통령 임기 5년", "국회의원 임기 4년", "종교 자유 국교", "세금 납세 의무"]


def tiny_reranker() -> LateInteractionReranker:
    enc = WordEncoder()
    parts = [enc.encode(t) for t in DOCS]
    offsets = np.cumsum([0] + [len(p[0]) for p in parts])
    idf = {int(i): 1.0 for p in parts for i in p[0]}
    return LateInteractionReranker(
        np.concatenate([p[1] for p in parts]),
        offsets.astype(np.int64),
        idf,
        [stated_types(t) for t in DOCS],
        info={"model": "word-stand-in", "layer": 0},
        encoder=enc,
    )


def test_maxsim_equals_a_loop():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(3, H))
    w = np.array([1.0, 0.5, 2.0])
    d = rng.normal(size=(10, H))
    offsets = np.array([0, 4, 5, 10])
    expected = [
        sum(w[i] * max(q[i] @ d[j] for j in range(offsets[k], offsets[k + 1])) for i in range(3)) / w.sum()
        for k in range(3)
    ]
    np.testing.assert_allclose(maxsim(q, w, d, offsets), expected, rtol=1e-10)
    assert maxsim(q[:0], w[:0], d, offsets).shape == (3,)  # an empty question scores 0 everywhere


def test_answer_types():
    assert 0 in asked_types("대통령 임기는 몇 년인가요?")
    assert asked_types("종교의 자유는 보장되나요?") == []
    stated = [stated_types(t) for t in ("대통령의 임기는 5년으로 한다.", "모든 국민은 종교의 자유를 가진다.")]
    assert answer_type_match("몇 년 동안 하나요?", stated).tolist() == [1.0, 0.0]
    assert answer_type_match("종교의 자유", stated).tolist() == [0.0, 0.0]


def test_scores_shapes_and_order():
    r = tiny_reranker()
    all_scores = r.lm_scores("종교 자유")
    assert all_scores.shape == (len(DOCS),) and int(np.argmax(all_scores)) == 2
    assert r.lm_scores("종교 자유", [2, 0]).tolist() == all_scores[[2, 0]].tolist()
    fused = r.fuse(np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([0.5, 0.2]), np.array([0.0, 1.0]))
    assert fused.shape == (2,)


def test_save_load_roundtrip(tmp_path):
    r = tiny_reranker()
    r.save(tmp_path / "states.npz")
    back = LateInteractionReranker.load(tmp_path / "states.npz")
    np.testing.assert_allclose(back.doc_states, r.doc_states, atol=1e-3)  # stored as float16
    assert back.offsets.tolist() == r.offsets.tolist() and back.idf == r.idf and back.stated == r.stated
    assert back.info == r.info and back.adapter is None


def test_adapter_identity_start_and_unit_rows():
    r = tiny_reranker()
    x = r.doc_states
    assert r.project(x) is x  # no adapter: the zero-shot states
    r.set_adapter((np.zeros((H, 4)), np.ones((4, H))))  # A = 0: still the identity (up to normalisation)
    np.testing.assert_allclose(r.project(x), x, atol=1e-6)
    r.set_adapter((np.ones((H, 4)) * 0.1, np.ones((4, H))))
    np.testing.assert_allclose(np.linalg.norm(r.projected_states, axis=1), 1.0, atol=1e-5)


def test_train_adapter_is_deterministic_and_learns():
    """Questions use words the articles do not contain: zero-shot MaxSim cannot map them, the adapter learns to."""
    questions = [("대통령 몇 해", 0), ("의원 몇 해", 1), ("신앙 보장", 2), ("조세 의무", 3)] * 2
    config = AdapterConfig(rank=4, epochs=30, batch_size=4, lr=0.05)
    r = tiny_reranker()
    (a, b), history = train_adapter(r, questions, config)
    assert a.shape == (H, 4) and b.shape == (4, H) and len(history) == 30
    assert history[-1]["loss"] < history[0]["loss"]
    (a2, b2), _ = train_adapter(tiny_reranker(), questions, config)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    r.set_adapter((a, b))
    assert [int(np.argmax(r.lm_scores(q))) for q, _ in questions[:4]] == [0, 1, 2, 3]


def test_choose_weights_prefers_the_signal_that_finds_the_gold():
    rng = np.random.default_rng(0)
    rows = []
    for gold in range(6):
        cand = np.arange(6)
        lm = rng.random(6) * 0.5
        lm[gold] = 1.0  # only the LM score points at the gold article
        rows.append((cand, rng.random(6), rng.random(6), lm, np.zeros(6), gold))
    weights, table = choose_weights(rows, step=0.25)
    assert len(weights) == 4 and abs(sum(weights) - 1) < 1e-9 and weights[2] > 0
    best = max(table, key=lambda r: r["mrr"])
    assert best["hit@1"] == 1.0


@pytest.mark.slow
def test_real_gemma_token_states(tmp_path, monkeypatch):
    """The packaged Gemma-3-270M: unit-length states per word piece, deterministic, cached per corpus."""
    import engine.retrieval.late_interaction as li
    from engine.retrieval.late_interaction import TokenStates, build_states, load_states

    monkeypatch.setattr(li, "states_path", lambda docs, layer=li.LAYER: tmp_path / f"states-{len(docs)}.npz")
    enc = TokenStates.load()
    ids, states, content = enc.encode("대통령의 임기는 몇 년인가요?", content=True)
    assert states.shape == (len(ids), enc.model.config.hidden_size) and content.dtype == bool
    np.testing.assert_allclose(np.linalg.norm(states, axis=1), 1.0, atol=1e-4)
    assert content.any() and not content.all()  # 몇 / 인가요 carry no weight
    _, again, _ = enc.encode("대통령의 임기는 몇 년인가요?", content=True)
    np.testing.assert_array_equal(states, again)
    docs = [
        Doc("제70조", "제70조", "대통령의 임기는 5년으로 하며, 중임할 수 없다."),
        Doc("제42조", "제42조", "국회의원의 임기는 4년으로 한다."),
    ]
    r = build_states(docs, encoder=enc)
    assert len(r.offsets) == 3 and r.doc_states.shape[0] == r.offsets[-1]
    assert int(np.argmax(r.lm_scores("대통령 임기"))) == 0
    assert load_states(docs) is not None
