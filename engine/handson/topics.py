"""Hands-On LLM ch.5: clustering and topic modelling of Korean text with BERTopic, offline.

The pipeline of the chapter, one step per library, all on 2 CPU cores:

1. embed        every document -> a 256-d unit vector with the best Korean embedder here, chapter 10/11's morpheme
                encoder (`engine.handson.classification.korean_embedder`). The vectors go to BERTopic precomputed
                (`fit_transform(docs, embeddings=...)`), and the same encoder embeds words for KeyBERTInspired/MMR
                through a small `BaseEmbedder` wrapper: BERTopic never looks for a model to download.
2. reduce       UMAP to 5 dimensions (cosine, min_dist 0, fixed `random_state`: the same run gives the same map).
3. cluster      HDBSCAN on the 5-d points; documents in no dense region are outliers, topic -1.
4. represent    c-TF-IDF over the words of each cluster (engine/handson/ctfidf.py is the formula from scratch), then
                two representation models re-rank the candidate words: KeyBERTInspired (words closest to the
                topic's embedding) and MaximalMarginalRelevance (close to the topic, far from each other). Optionally
                the `instruct` model names each topic from its words and documents.

The words come from a CountVectorizer whose tokenizer is Kiwi (`kiwi_topic_tokens`: nouns, verb/adjective stems,
roots, foreign words; particles and endings dropped; a compound noun always split the way Kiwi splits it alone).
The default CountVectorizer cuts on spaces, so Korean words keep their particles (국회의원은, 국회의원의 … are
different words) and a topic's words are mostly particle-glued forms; `glued_share` measures that. BERTopic's
default `language="english"` is worse still: its preprocessing deletes every non-ASCII character, so Korean
documents become empty before any tokenizer sees them. The pipeline sets `language="multilingual"` (the
embeddings are ours anyway).

The 2-D map is a second UMAP (2 components, same neighbours and seed) of the same embeddings, as in the book.

Corpora that ship: `constitution` (319 paragraphs, label = chapter), `kobill` (108 passages of 10 National Assembly
bills, label = bill) and `lessons` (this app's own Korean lesson text, split into paragraphs, label = chapter). The
label is never shown to the pipeline; it only scores how well the topics recover it (adjusted Rand index, NMI).
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np

from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.handson.ctfidf import c_tf_idf, top_words

CORPORA = ("constitution", "kobill", "lessons")
REPRESENTATIONS = ("ctfidf", "keybert", "mmr")  # + "llm" when the instruct model labels topics
MIN_DOCS = 20  # UMAP needs neighbours and HDBSCAN a few clusters' worth of points
MAX_DOCS = 2_000  # ~1 min on 2 cores
MAX_DOC_CHARS = 2_000  # a document longer than this is cut (its words would dominate its class)
SNIPPET_CHARS = 120

# Content morphemes for topic words: nouns, verb/adjective stems, roots, foreign words. Numbers (SN) and
# dependent nouns (NNB: 것, 수, 등) are left out: they are in every topic and name none.
TOPIC_TAGS = ("NNG", "NNP", "NP", "VV", "VA", "XR", "SL", "SH")
# Legal/explanatory connectives that are content morphemes to Kiwi but name no topic (…에 관하여, …에 따라).
TOPIC_STOP = frozenset(
    {
        "위하",
        "따르",
        "관하",
        "대하",
        "의하",
        "정하",
        "같",
        "다르",
        "통하",
        "이러하",
        "그러하",
        "받",
        "얻",
        "가지",
        "보",
        "항",
    }
)


@dataclass(frozen=True)
class TopicDoc:
    doc_id: str
    text: str
    group: str  # the known label (chapter, bill): scored against, never given to the pipeline


@dataclass(frozen=True)
class TopicConfig:
    corpus: str = "constitution"
    n_neighbors: int = 15  # UMAP: how local the map is (BERTopic's default)
    n_components: int = 5  # UMAP: dimensions HDBSCAN clusters in (BERTopic's default)
    min_cluster_size: int = 10  # HDBSCAN: the smallest topic (BERTopic's default)
    top_n_words: int = 8
    seed: int = 0  # UMAP's random_state (both maps)
    reduce_frequent_words: bool = False  # c-TF-IDF switches (ClassTfidfTransformer's defaults)
    bm25_weighting: bool = False
    mmr_diversity: float = 0.3
    llm: bool = False  # name each topic with the `instruct` model (needs the model server)
    role: str = "instruct"

    def validate(self) -> None:
        if self.corpus not in CORPORA:
            raise InputError("input.unknown_choice", name="corpus", value=self.corpus, choices=", ".join(CORPORA))
        checks = (
            ("n_neighbors", self.n_neighbors, 2, 100),
            ("n_components", self.n_components, 2, 20),
            ("min_cluster_size", self.min_cluster_size, 2, 200),
            ("top_n_words", self.top_n_words, 3, 20),
        )
        for name, value, low, high in checks:
            if not low <= value <= high:
                raise InputError("input.out_of_range", name=name, low=low, high=high, value=value)
        if not 0.0 <= self.mmr_diversity <= 1.0:
            raise InputError("input.out_of_range", name="mmr_diversity", low=0, high=1, value=self.mmr_diversity)


# -- corpora ---------------------------------------------------------------------------------------------------------
def load_topic_corpus(name: str) -> list[TopicDoc]:
    """One of CORPORA as documents with their known label."""
    if name == "constitution":
        from engine.training.hf_basics import constitution_paragraphs

        return [
            TopicDoc(f"제{p.article}조#{i}", p.text, f"제{p.chapter_no}장 {p.chapter}")
            for i, p in enumerate(constitution_paragraphs())
        ]
    if name == "kobill":
        from engine.core.corpus import load_kobill

        return [TopicDoc(d.doc_id, d.text, d.title) for d in load_kobill()]
    if name == "lessons":
        return lesson_paragraphs()
    raise InputError("input.unknown_choice", name="corpus", value=name, choices=", ".join(CORPORA))


_MD_NOISE = re.compile(r"\*\*|__|`|\[([^\]]*)\]\([^)]*\)")


def lesson_paragraphs(min_chars: int = 60) -> list[TopicDoc]:
    """The app's Korean lessons (lessons/ko/*.md), one document per paragraph or list item; code blocks, tables,
    headings and section markers left out. The label is the lesson file (e.g. "10_embeddings")."""
    from engine.core.assets import LESSONS

    docs = []
    for path in sorted((LESSONS / "ko").glob("*.md")):
        in_code = False
        for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines()):
            line = raw.strip()
            if line.startswith("```"):
                in_code = not in_code
                continue
            if in_code or not line or line.startswith(("<!--", "#", "|", ">")):
                continue
            text = _MD_NOISE.sub(lambda m: m.group(1) or "", line.lstrip("-*0123456789. ")).strip()
            if len(text) >= min_chars:
                docs.append(TopicDoc(f"{path.stem}:{n + 1}", text, path.stem))
    return docs


def split_documents(source: str | bytes) -> list[str]:
    """A learner's text (or file bytes) -> documents: one per paragraph (blank-line separated), or one per line
    when there are no blank lines. Binary data and empty text raise InputError."""
    if isinstance(source, bytes | bytearray):
        from engine.core.corpus import decode_korean, looks_like_text

        data = bytes(source)
        text = decode_korean(data) if b"\x00" not in data else None
        if text is None or not looks_like_text(text):
            raise InputError("handson.topics_binary")
        source = text
    if not isinstance(source, str):
        raise InputError("input.not_text", value=type(source).__name__)
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    blocks = re.split(r"\n\s*\n", text) if re.search(r"\n\s*\n", text) else text.split("\n")
    return [" ".join(b.split()) for b in blocks if b.strip()]


def check_documents(texts) -> list[str]:
    """Clean documents, or an InputError a learner can act on: empty, too few, too many, binary."""
    from engine.core.textinput import clean_text

    if isinstance(texts, str | bytes | bytearray):
        texts = split_documents(texts)
    texts = list(texts)
    out = []
    for text in texts:
        if not isinstance(text, str):
            raise InputError("input.not_text", value=type(text).__name__)
        if "\x00" in text:
            raise InputError("handson.topics_binary")
        cleaned = clean_text(text, MAX_DOC_CHARS, allow_empty=True).text.strip()
        if cleaned:
            out.append(cleaned)
    if not out:
        raise InputError("handson.topics_empty", min=MIN_DOCS)
    if len(out) < MIN_DOCS:
        raise InputError("handson.topics_too_few", n=len(out), min=MIN_DOCS)
    if len(out) > MAX_DOCS:
        raise InputError("handson.topics_too_many", n=len(out), limit=MAX_DOCS)
    return out


# -- the vectorizers -------------------------------------------------------------------------------------------------
def kiwi_topic_tokens(text: str) -> list[str]:
    """Kiwi content morphemes for topic words: 국회의원은 -> [국회, 의원]; particles, endings, numbers and
    dependent nouns dropped; compound nouns through `canonical_noun`."""
    from engine.retrieval.tokenizers import STOP_FORMS, _kiwi_lock, kiwi

    with _kiwi_lock:
        tokens = kiwi().tokenize(text)
    out: list[str] = []
    for t in tokens:
        tag = t.tag.split("-")[0]  # VV-I / VA-R: irregular stems
        if tag not in TOPIC_TAGS or t.form in STOP_FORMS or t.form in TOPIC_STOP:
            continue
        if tag == "SL" and len(t.form) < 2:  # x, t, b: variable names in formulas, not topics
            continue
        form = t.form.lower() if tag == "SL" else t.form
        if tag in ("NNG", "NNP") and len(form) >= 3:
            out.extend(canonical_noun(form))
        else:
            out.append(form)
    return out


@lru_cache(maxsize=100_000)
def canonical_noun(form: str) -> tuple[str, ...]:
    """A noun as Kiwi analyses it alone (before a particle): 국회의원 -> (국회, 의원), 육아휴직 -> (육아, 휴직), while
    대법원장 and 헌법재판소 stay whole. In running text Kiwi keeps 국회의원 whole in one sentence and splits it in
    another; mapping every occurrence to this one analysis makes both count as the same words."""
    from engine.retrieval.tokenizers import _kiwi_lock, kiwi

    with _kiwi_lock:
        tokens = kiwi().tokenize(f"{form}은")
    parts = tuple(t.form for t in tokens if t.tag in ("NNG", "NNP"))
    return parts if len(parts) > 1 and "".join(parts) == form else (form,)


def kiwi_vectorizer(min_df: int = 2):
    """scikit-learn's CountVectorizer with the Kiwi tokenizer (words in at least `min_df` documents' classes)."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(tokenizer=kiwi_topic_tokens, token_pattern=None, lowercase=False, min_df=min_df)


def default_vectorizer():
    """What BERTopic uses when given none: CountVectorizer() (words = runs of 2+ word characters between spaces)."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer()


def glued(word: str) -> bool:
    """True when Kiwi reads `word` as more than a content word: a particle (J…), an ending (E…) or a
    derivational suffix (XS…) is attached (국회의원은, 제출할, 보장된다)."""
    from engine.retrieval.tokenizers import _kiwi_lock, kiwi

    with _kiwi_lock:
        tags = [t.tag for t in kiwi().tokenize(word)]
    return any(tag.startswith(("J", "E", "XS")) for tag in tags)


def glued_share(words: list[str]) -> float:
    """The share of `words` that are particle/ending-glued forms (0 when there are none)."""
    words = [w for w in words if w]
    return round(sum(glued(w) for w in words) / len(words), 4) if words else 0.0


# -- the model -------------------------------------------------------------------------------------------------------
def _backend(embed):
    """Our embedder as a BERTopic backend: KeyBERTInspired and MMR embed candidate words with it."""
    from bertopic.backend import BaseEmbedder

    class KoreanBackend(BaseEmbedder):
        def embed(self, documents, verbose: bool = False) -> np.ndarray:
            return embed([str(d) for d in documents])

    return KoreanBackend()


def build_model(cfg: TopicConfig, embed, n_docs: int, vectorizer=None):
    """BERTopic with every part chosen here (nothing downloaded, nothing random left unseeded)."""
    from bertopic import BERTopic
    from bertopic.representation import KeyBERTInspired, MaximalMarginalRelevance
    from bertopic.vectorizers import ClassTfidfTransformer
    from hdbscan import HDBSCAN
    from umap import UMAP

    umap_model = UMAP(
        n_neighbors=min(cfg.n_neighbors, n_docs - 1),
        n_components=cfg.n_components,
        min_dist=0.0,
        metric="cosine",
        random_state=cfg.seed,  # fixes the layout (and makes UMAP single-threaded)
    )
    hdbscan_model = HDBSCAN(
        min_cluster_size=cfg.min_cluster_size, metric="euclidean", cluster_selection_method="eom", prediction_data=True
    )
    representation = {
        "keybert": KeyBERTInspired(top_n_words=cfg.top_n_words, random_state=42),
        "mmr": MaximalMarginalRelevance(diversity=cfg.mmr_diversity, top_n_words=cfg.top_n_words),
    }
    return BERTopic(
        language="multilingual",  # "english" (the default) strips every non-ASCII character before counting
        embedding_model=_backend(embed),
        umap_model=umap_model,
        hdbscan_model=hdbscan_model,
        vectorizer_model=vectorizer if vectorizer is not None else kiwi_vectorizer(),
        ctfidf_model=ClassTfidfTransformer(
            reduce_frequent_words=cfg.reduce_frequent_words, bm25_weighting=cfg.bm25_weighting
        ),
        representation_model=representation,
        top_n_words=cfg.top_n_words,
        calculate_probabilities=False,
    )


def class_documents(texts: list[str], topics: list[int]) -> tuple[list[int], list[str]]:
    """(topic ids sorted, one joined document per topic): what BERTopic counts words in."""
    ids = sorted(set(topics))
    joined = [" ".join(t for t, k in zip(texts, topics, strict=True) if k == i) for i in ids]
    return ids, [j.replace("\n", " ").replace("\t", " ") for j in joined]


def class_counts(texts: list[str], topics: list[int], vectorizer):
    """(ids, (C, V) sparse counts, vocabulary) with a freshly fitted `vectorizer`, as BERTopic builds them."""
    ids, joined = class_documents(texts, topics)
    try:
        counts = vectorizer.fit_transform(joined)  # (C, V)
    except ValueError as exc:  # "empty vocabulary": every word was a stop word or shorter than the token pattern
        raise InputError("handson.topics_no_words", detail=str(exc)) from exc
    return ids, counts, list(vectorizer.get_feature_names_out())


# -- the run ---------------------------------------------------------------------------------------------------------
@dataclass
class Topic:
    topic: int  # -1 = outliers
    size: int
    words: dict[str, list[str]]  # representation -> top words ("ctfidf", "keybert", "mmr", "default", "llm")
    representative: str  # a snippet of the topic's most representative document
    top_group: str  # the known label most of its documents carry
    top_group_share: float
    label: str = ""  # the instruct model's name for it (when asked)


@dataclass
class TopicRun:
    corpus: str
    n_docs: int
    config: dict
    topics: list[Topic]
    doc_topics: list[int]  # (N,) topic id per document
    coords: list[list[float]]  # (N, 2) the 2-D UMAP map
    doc_ids: list[str]
    snippets: list[str]  # (N,) for the map's hover
    groups: list[str]  # (N,) the known labels
    agreement: dict  # adjusted Rand index and NMI of topics vs known labels (outliers as their own cluster)
    glued: dict  # share of particle/ending-glued words among the topic words: {"kiwi": .., "default": ..}
    ctfidf_max_diff: float  # |from scratch − BERTopic's c_tf_idf_| on the run's own count matrix
    seconds: dict[str, float] = field(default_factory=dict)
    embedder: str = "korean_dense (chapters 10-11, 256-d)"
    llm_error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def rows(self) -> list[dict]:
        """One row per topic for the CLI."""
        return [
            {
                "topic": t.topic,
                "size": t.size,
                **{f"words_{k}": v for k, v in t.words.items()},
                "label": t.label,
                "top_group": t.top_group,
                "top_group_share": t.top_group_share,
                "representative": t.representative,
            }
            for t in self.topics
        ]


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_topics(
    cfg: TopicConfig | None = None,
    docs: list[TopicDoc] | None = None,
    embed=None,
    progress: ProgressFn = null_progress,
) -> TopicRun:
    """The whole chapter on one corpus: embed -> UMAP -> HDBSCAN -> c-TF-IDF (+ KeyBERT, MMR, default words)."""
    cfg = cfg or TopicConfig()
    cfg.validate()
    if docs is None:
        docs = load_topic_corpus(cfg.corpus)
    texts = check_documents([d.text for d in docs])
    if len(texts) != len(docs):  # empty documents were dropped: keep the labels aligned
        docs = [d for d in docs if d.text.strip()]
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    progress(0.05, "embedder")
    if embed is None:
        from engine.handson.classification import korean_embedder

        embed = korean_embedder()
    embeddings = embed(texts)  # (N, 256)
    seconds["embed"] = round(time.perf_counter() - t0, 2)

    progress(0.25, "bertopic")
    t0 = time.perf_counter()
    model = build_model(cfg, embed, len(texts))
    topics, _ = model.fit_transform(texts, embeddings=embeddings)
    topics = [int(t) for t in topics]
    seconds["bertopic"] = round(time.perf_counter() - t0, 2)

    progress(0.65, "map")
    t0 = time.perf_counter()
    coords = two_d_map(embeddings, cfg)
    seconds["map"] = round(time.perf_counter() - t0, 2)

    progress(0.8, "words")
    t0 = time.perf_counter()
    ids, counts, vocab = class_counts(texts, topics, kiwi_vectorizer())
    mine = c_tf_idf(counts, reduce_frequent_words=cfg.reduce_frequent_words, bm25_weighting=cfg.bm25_weighting)
    theirs = model.c_tf_idf_.toarray()
    max_diff = float(np.max(np.abs(mine - theirs))) if mine.shape == theirs.shape else float("inf")
    d_ids, d_counts, d_vocab = class_counts(texts, topics, default_vectorizer())
    d_weights = c_tf_idf(d_counts, reduce_frequent_words=cfg.reduce_frequent_words, bm25_weighting=cfg.bm25_weighting)
    default_words = {i: [w for w, _ in top_words(d_weights[r], d_vocab, cfg.top_n_words)] for r, i in enumerate(d_ids)}
    seconds["words"] = round(time.perf_counter() - t0, 2)

    groups = [d.group for d in docs]
    out_topics = []
    for r, i in enumerate(ids):
        members = [k for k, t in enumerate(topics) if t == i]
        names = {g: sum(groups[k] == g for k in members) for g in {groups[k] for k in members}}
        top_group = max(sorted(names), key=lambda g: names[g])
        aspects = model.topic_aspects_ if hasattr(model, "topic_aspects_") else {}
        words = {
            "ctfidf": [w for w, _ in top_words(mine[r], vocab, cfg.top_n_words)],
            "keybert": [w for w, _ in aspects.get("keybert", {}).get(i, []) if w],
            "mmr": [w for w, _ in aspects.get("mmr", {}).get(i, []) if w],
            "default": default_words.get(i, []),
        }
        rep = (model.get_representative_docs(i) or [texts[members[0]]])[0]
        out_topics.append(
            Topic(i, len(members), words, snippet(rep), top_group, round(names[top_group] / len(members), 3))
        )

    llm_error = ""
    if cfg.llm:
        progress(0.9, "llm")
        t0 = time.perf_counter()
        llm_error = label_with_llm(out_topics, model, cfg)
        seconds["llm"] = round(time.perf_counter() - t0, 2)

    progress(1.0, "done")
    real = [t for t in out_topics if t.topic != -1]
    return TopicRun(
        corpus=cfg.corpus,
        n_docs=len(texts),
        config=asdict(cfg),
        topics=out_topics,
        doc_topics=topics,
        coords=coords,
        doc_ids=[d.doc_id for d in docs],
        snippets=[snippet(t, 80) for t in texts],
        groups=groups,
        agreement=agreement(topics, groups),
        glued={
            "kiwi": glued_share([w for t in real for w in t.words["ctfidf"]]),
            "default": glued_share([w for t in real for w in t.words["default"]]),
        },
        ctfidf_max_diff=max_diff,
        seconds=seconds,
        llm_error=llm_error,
    )


def two_d_map(embeddings: np.ndarray, cfg: TopicConfig) -> list[list[float]]:
    """(N, D) -> (N, 2) rounded coordinates: UMAP with the clustering's neighbours and seed, for the picture only."""
    from umap import UMAP

    xy = UMAP(
        n_neighbors=min(cfg.n_neighbors, len(embeddings) - 1),
        n_components=2,
        min_dist=0.1,
        metric="cosine",
        random_state=cfg.seed,
    ).fit_transform(embeddings)
    return np.round(xy.astype(np.float64), 4).tolist()


def agreement(topics: list[int], groups: list[str]) -> dict:
    """How well the topics recover the known labels: adjusted Rand index (0 = chance, 1 = the same partition) and
    normalized mutual information, outliers counted as one more cluster; plus the outlier share."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {
        "ari": round(float(adjusted_rand_score(groups, topics)), 4),
        "nmi": round(float(normalized_mutual_info_score(groups, topics)), 4),
        "outlier_share": round(sum(t == -1 for t in topics) / len(topics), 4),
        "n_topics": len({t for t in topics if t != -1}),
        "n_groups": len(set(groups)),
    }


# -- topic names from the instruct model -----------------------------------------------------------------------------
LLM_SYSTEM = (
    "다음은 한 주제로 묶인 한국어 문서들의 핵심 단어와 대표 문서입니다. 이 주제를 가장 잘 나타내는 짧은 한국어 "
    "명사구 제목(2~6단어)을 JSON으로만 답하세요. 문서 문장을 그대로 베끼지 말고, 단어를 나열하지도 마세요."
)


def llm_messages(words: list[str], docs: list[str]) -> list[dict]:
    body = "핵심 단어: " + ", ".join(words) + "\n대표 문서:\n" + "\n".join(f"- {snippet(d, 150)}" for d in docs[:2])
    return [{"role": "system", "content": LLM_SYSTEM}, {"role": "user", "content": body}]


def label_with_llm(topics: list[Topic], model, cfg: TopicConfig) -> str:
    """Fill `label` of every real topic from the instruct model (temperature 0, a JSON schema); "" on success, else
    the reason (a dead server is not an error of the run: the other representations stand)."""
    from engine.core.errors import UserError
    from engine.serving.client import structured_chat

    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "maxLength": 40}},
        "required": ["label"],
        "additionalProperties": False,
    }
    for t in topics:
        if t.topic == -1:
            continue
        try:
            answer = structured_chat(
                llm_messages(t.words["ctfidf"], model.get_representative_docs(t.topic) or [t.representative]),
                schema,
                max_tokens=48,
                role=cfg.role,
            )
        except UserError as exc:
            return str(exc)
        t.label = " ".join(str(answer.get("label", "")).split())[:40] if isinstance(answer, dict) else ""
    return ""


# -- c-TF-IDF, shown word by word -------------------------------------------------------------------------------------
def ctfidf_comparison(run: dict, topic: int, n: int = 10) -> list[list]:
    """The `n` top words of `topic` in a run (`TopicRun.as_dict()` of a shipped corpus), each as
    [word, count in the topic, tf, idf, c-TF-IDF from scratch, BERTopic's ClassTfidfTransformer]: the formula's
    parts next to the library's number, on the same count matrix."""
    from bertopic.vectorizers import ClassTfidfTransformer

    from engine.handson.ctfidf import idf_of

    cfg = run["config"]
    docs = load_topic_corpus(run["corpus"])
    texts = check_documents([d.text for d in docs])
    ids, counts, vocab = class_counts(texts, run["doc_topics"], kiwi_vectorizer())
    if topic not in ids:
        raise InputError("input.unknown_choice", name="topic", value=topic, choices=", ".join(map(str, ids)))
    switches = {"reduce_frequent_words": cfg["reduce_frequent_words"], "bm25_weighting": cfg["bm25_weighting"]}
    mine = c_tf_idf(counts, **switches)  # (C, V)
    theirs = ClassTfidfTransformer(**switches).fit_transform(counts.copy()).toarray()  # (C, V)
    idf = idf_of(counts, bm25_weighting=cfg["bm25_weighting"])  # (V,)
    r = ids.index(topic)
    row_counts = np.asarray(counts[r].toarray()).ravel()  # (V,)
    total = row_counts.sum()
    out = []
    for word, _ in top_words(mine[r], vocab, n):
        j = vocab.index(word)
        out.append(
            [
                word,
                int(row_counts[j]),
                round(float(row_counts[j] / total), 5),
                round(float(idf[j]), 4),
                round(float(mine[r, j]), 6),
                round(float(theirs[r, j]), 6),
            ]
        )
    return out
