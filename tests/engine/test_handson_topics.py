"""Hands-On ch.5: c-TF-IDF from scratch equals BERTopic's, Kiwi topic words, a seeded BERTopic run, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from engine.core.textinput import InputError
from engine.handson.ctfidf import c_tf_idf, top_words
from engine.handson.topics import (
    MIN_DOCS,
    TopicConfig,
    check_documents,
    class_counts,
    glued,
    glued_share,
    kiwi_topic_tokens,
    kiwi_vectorizer,
    load_topic_corpus,
    split_documents,
)

SWITCHES = [(False, False), (True, False), (False, True), (True, True)]


@pytest.fixture(scope="module")
def constitution_counts():
    """(chapter ids, (C, V) Kiwi word counts per Constitution chapter, vocabulary): a real count matrix."""
    docs = load_topic_corpus("constitution")
    chapters = sorted({d.group for d in docs})
    labels = [chapters.index(d.group) for d in docs]
    return class_counts([d.text for d in docs], labels, kiwi_vectorizer())


@pytest.mark.parametrize(("reduce_frequent_words", "bm25_weighting"), SWITCHES)
def test_ctfidf_equals_bertopic_on_real_counts(constitution_counts, reduce_frequent_words, bm25_weighting):
    from bertopic.vectorizers import ClassTfidfTransformer

    _, counts, _ = constitution_counts
    theirs = ClassTfidfTransformer(reduce_frequent_words=reduce_frequent_words, bm25_weighting=bm25_weighting)
    expected = theirs.fit_transform(counts.copy()).toarray()
    mine = c_tf_idf(counts, reduce_frequent_words=reduce_frequent_words, bm25_weighting=bm25_weighting)
    assert mine.shape == expected.shape == counts.shape
    assert np.allclose(mine, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("reduce_frequent_words", "bm25_weighting"), SWITCHES)
def test_ctfidf_equals_bertopic_on_small_counts(reduce_frequent_words, bm25_weighting):
    """A small average class length: BERTopic cuts the average to an integer, and so must we."""
    from bertopic.vectorizers import ClassTfidfTransformer

    rng = np.random.default_rng(0)
    counts = sp.csr_matrix(rng.poisson(0.8, size=(5, 30)) + np.eye(5, 30, dtype=int))  # every word occurs
    theirs = ClassTfidfTransformer(reduce_frequent_words=reduce_frequent_words, bm25_weighting=bm25_weighting)
    expected = theirs.fit_transform(counts.copy()).toarray()
    mine = c_tf_idf(counts.toarray(), reduce_frequent_words=reduce_frequent_words, bm25_weighting=bm25_weighting)
    assert np.allclose(mine, expected)


def test_ctfidf_by_hand():
    counts = np.array([[2, 0, 2], [0, 4, 0]])  # 2 classes, 3 words; A = int((4 + 4) / 2) = 4
    w = c_tf_idf(counts)
    # tf: [[.5, 0, .5], [0, 1, 0]]; f = [2, 4, 2]; idf = log(1 + 4/f) = [log 3, log 2, log 3]
    assert np.allclose(w, [[0.5 * np.log(3), 0, 0.5 * np.log(3)], [0, np.log(2), 0]])
    assert top_words(w[1], ["a", "b", "c"], 3) == [("b", pytest.approx(np.log(2)))]  # zeros are never words


def test_constitution_chapters_have_their_own_words(constitution_counts):
    ids, counts, vocab = constitution_counts
    weights = c_tf_idf(counts)
    docs = load_topic_corpus("constitution")
    chapters = sorted({d.group for d in docs})
    national_assembly = chapters.index(next(c for c in chapters if c.endswith("국회")))
    words = [w for w, _ in top_words(weights[ids.index(national_assembly)], vocab, 10)]
    assert "국회" in words and "의원" in words


def test_kiwi_tokens_are_morphemes():
    assert kiwi_topic_tokens("국회의원은") == ["국회", "의원"]
    # Kiwi keeps 국회의원 whole here; the topic tokenizer splits it the same way as above
    tokens = kiwi_topic_tokens("국회의원의 임기는 4년으로 한다.")
    assert tokens[:3] == ["국회", "의원", "임기"]
    assert not {"은", "의", "는", "으로", "4", "한다"} & set(tokens)


def test_kiwi_vectorizer_has_no_glued_words():
    texts = ["국회의원은 법률안을 제출할 수 있다.", "국회의원의 임기는 4년으로 한다.", "대통령은 법률안을 공포한다."]
    vec = kiwi_vectorizer(min_df=1).fit(texts)
    vocab = set(vec.get_feature_names_out())
    assert {"국회", "의원", "법률안", "대통령"} <= vocab
    assert glued_share(sorted(vocab)) == 0.0


def test_glued_forms():
    assert glued("국회의원은") and glued("제출할") and glued("국민의")
    assert not glued("국회") and not glued("헌법")
    assert glued_share(["국회", "국회의원은"]) == 0.5
    assert glued_share([]) == 0.0


def test_default_tokenizer_keeps_particles():
    from engine.handson.topics import default_vectorizer

    vocab = set(default_vectorizer().fit(["국회의원은 법률안을 제출할 수 있다."]).get_feature_names_out())
    assert "국회의원은" in vocab and "법률안을" in vocab


@pytest.mark.parametrize(
    ("docs", "code"),
    [
        ([], "handson.topics_empty"),
        (["", "   "], "handson.topics_empty"),
        (["헌법은 대한민국의 최고 규범이다."], "handson.topics_too_few"),
        (["문서"] * (MIN_DOCS - 1), "handson.topics_too_few"),
        (["문서\x00이진"] * MIN_DOCS, "handson.topics_binary"),
        ([1, 2, 3], "input.not_text"),
    ],
)
def test_bad_documents(docs, code):
    with pytest.raises(InputError) as err:
        check_documents(docs)
    assert err.value.code == code


def test_binary_file_is_refused():
    with pytest.raises(InputError) as err:
        split_documents(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    assert err.value.code == "handson.topics_binary"
    with pytest.raises(InputError) as err:
        check_documents(bytes(range(256)))
    assert err.value.code == "handson.topics_binary"


def test_split_documents():
    assert split_documents("첫 문단\n이어서\n\n둘째 문단") == ["첫 문단 이어서", "둘째 문단"]
    assert split_documents("한 줄\n두 줄\n") == ["한 줄", "두 줄"]
    assert split_documents("가나다\n\n라마바".encode("cp949")) == ["가나다", "라마바"]


def test_bad_config():
    with pytest.raises(InputError) as err:
        TopicConfig(corpus="wikipedia").validate()
    assert err.value.code == "input.unknown_choice"
    with pytest.raises(InputError) as err:
        TopicConfig(min_cluster_size=1).validate()
    assert err.value.code == "input.out_of_range"


def test_corpora_ship():
    for name, low in (("constitution", 300), ("kobill", 100), ("lessons", 200)):
        docs = load_topic_corpus(name)
        assert len(docs) >= low and all(d.text.strip() and d.group for d in docs)


def _cheap_embedder(corpus: list[str]):
    """A deterministic stand-in for the Korean encoder (no training): TF-IDF of Kiwi words -> 32-d SVD, unit rows;
    fitted once on the corpus, so documents and (KeyBERT's, MMR's) candidate words share one space."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(tokenizer=kiwi_topic_tokens, token_pattern=None, lowercase=False).fit(corpus)
    svd = TruncatedSVD(n_components=32, random_state=0).fit(tfidf.transform(corpus))

    def embed(texts):
        v = svd.transform(tfidf.transform(list(texts)))
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    return embed


@pytest.mark.slow
def test_seeded_bertopic_run_is_deterministic():
    from engine.handson.topics import run_topics

    docs = load_topic_corpus("constitution")[:120]
    cfg = TopicConfig(min_cluster_size=8, n_neighbors=10)
    embed = _cheap_embedder([d.text for d in docs])
    a = run_topics(cfg, docs=docs, embed=embed)
    b = run_topics(cfg, docs=docs, embed=embed)
    assert a.doc_topics == b.doc_topics and a.coords == b.coords
    assert [t.words for t in a.topics] == [t.words for t in b.topics]
    assert len(a.doc_topics) == len(docs) and all(isinstance(t, int) and t >= -1 for t in a.doc_topics)
    assert sum(t.size for t in a.topics) == len(docs) and a.agreement["n_topics"] >= 2
    assert a.ctfidf_max_diff < 1e-12  # our formula on the run's own counts = BERTopic's c_tf_idf_
    real = [t for t in a.topics if t.topic != -1]
    assert all(t.words["ctfidf"] and t.words["keybert"] and t.words["mmr"] for t in real)
    assert a.glued["kiwi"] < a.glued["default"]


def test_cli_refuses_a_bad_option(capsys):
    from engine.__main__ import main

    assert main(["topics", "--min-cluster-size", "1", "--json"]) == 2
    assert "min_cluster_size" in capsys.readouterr().err


def test_shipped_run_is_consistent():
    """assets/precomputed/h5_topics.json (the page's first view) agrees with itself."""
    from engine.core import load_precomputed

    pre = load_precomputed("h5_topics")
    if pre is None:
        pytest.skip("no shipped assets/precomputed/h5_topics.json")
    data = pre.data
    assert len(data["doc_topics"]) == len(data["coords"]) == data["n_docs"] == len(data["groups"])
    assert sum(t["size"] for t in data["topics"]) == data["n_docs"]
    assert data["ctfidf_max_diff"] < 1e-12 and data["glued"]["kiwi"] < data["glued"]["default"]
