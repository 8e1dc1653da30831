"""Tokenizers for Korean retrieval: whitespace vs Kiwi morphemes.

Korean glues particles and endings onto words (국회의원은, 국회의원이, 국회의원의 …), so whitespace tokens
rarely match between a question and an article. Kiwi splits 국회의원은 into 국회/NNG 의원/NNG 은/JX; keeping
only the content morphemes (nouns, verb and adjective stems, roots, numbers, foreign words) gives BM25 terms
that match across inflections.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import lru_cache

from engine.core.textinput import InputError

Tokenizer = Callable[[str], list[str]]

# Content morphemes: general/proper/dependent nouns, verb/adjective stems, roots, numerals, foreign words, hanja.
CONTENT_TAGS = ("NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "XR", "SL", "SN", "SH")
# Question words a learner adds that the law never answers with (몇, 어디, 무엇 …): dropped from queries and docs.
STOP_FORMS = frozenset(
    {
        "것",
        "수",
        "등",
        "바",
        "때",
        "중",
        "몇",
        "어디",
        "무엇",
        "뭐",
        "누구",
        "어떻",
        "어떤",
        "언제",
        "왜",
        "있",
        "하",
        "되",
        "이",
        "그",
        "없",
        "나",
        "저",
        "요",
        "경우",
        "년",
        "명",
        "조",
        "얼마나",
        "무슨",
    }
)

_kiwi_lock = threading.Lock()


@lru_cache(maxsize=1)
def kiwi():
    from engine.lm.tokenization import load_kiwi

    return load_kiwi()


def nearest_morphemes(word: str, top_n: int = 8) -> list[tuple[str, float]]:
    """("form/TAG", cosine) of the morphemes nearest `word` in Kiwi's CoNg embeddings; InputError if there is none."""

    word = word.strip()
    if not word:
        raise InputError("retrieval.one_word")
    try:
        with _kiwi_lock:
            near = kiwi().most_similar_morphemes(word, top_n=top_n)
    except (ValueError, RuntimeError):
        near = []
    if not near:
        raise InputError("retrieval.unknown_morpheme", word=word)
    return [(f"{m.form}/{m.tag}", float(m.score)) for m in near]


def whitespace_tokens(text: str) -> list[str]:
    """Split on spaces and punctuation only: what a tokenizer without Korean knowledge sees."""
    return [t for t in re.split(r"[\s\.,·\?!\"'()①-⑳「」<>:;]+", text.lower()) if t]


def kiwi_morphemes(text: str, tags: tuple[str, ...] | None = None) -> list[str]:
    """Every morpheme's surface form (particles and endings included)."""
    with _kiwi_lock:  # Kiwi is not documented as thread-safe; Streamlit sessions share one instance
        tokens = kiwi().tokenize(text)
    return [t.form for t in tokens if tags is None or t.tag in tags]


def analyze(text: str) -> list[tuple[str, str, int]]:
    """Content morphemes as (form, tag, Kiwi id); a compound noun also yields its parts (see `noun_parts`)."""
    with _kiwi_lock:
        tokens = kiwi().tokenize(text)
    out = []
    for t in tokens:
        tag = t.tag.split("-")[0]  # Kiwi marks irregular stems as VV-I / VA-R
        if tag not in CONTENT_TAGS or t.form in STOP_FORMS:
            continue
        form = t.form.lower() if tag == "SL" else t.form
        out.append((form, tag, int(t.id)))
        if tag in ("NNG", "NNP") and len(form) >= 3:
            out.extend(noun_parts(form))
    return out


@lru_cache(maxsize=100_000)
def noun_parts(form: str) -> tuple[tuple[str, str, int], ...]:
    """국회의원 -> (국회, 의원): Kiwi keeps a compound whole in one sentence and splits it in another
    (국회의원의 임기 vs 국회의원 임기는), so both sides index the parts too. A split counts only if both halves
    are nouns on their own."""
    for cut in range(2, len(form) - 1):
        left, right = _single_noun(form[:cut]), _single_noun(form[cut:])
        if left and right:
            return (left, right)
    return ()


@lru_cache(maxsize=100_000)
def _single_noun(form: str) -> tuple[str, str, int] | None:
    with _kiwi_lock:
        tokens = kiwi().tokenize(form)
    if len(tokens) == 1 and tokens[0].tag in ("NNG", "NNP") and tokens[0].form == form:
        return (form, tokens[0].tag, int(tokens[0].id))
    return None


def content_spans(text: str) -> list[tuple[int, int]]:
    """Character spans (start, end) of the content morphemes that `analyze` keeps: where a question's topic is."""
    with _kiwi_lock:
        tokens = kiwi().tokenize(text)
    return [
        (t.start, t.start + t.len) for t in tokens if t.tag.split("-")[0] in CONTENT_TAGS and t.form not in STOP_FORMS
    ]


def kiwi_content(text: str) -> list[str]:
    """Content morphemes only (plus the parts of compound nouns), minus question words: Korean BM25's tokens."""
    return [form for form, _, _ in analyze(text)]


TOKENIZERS: dict[str, Tokenizer] = {
    "whitespace": whitespace_tokens,
    "kiwi": kiwi_content,
    "kiwi-all": kiwi_morphemes,
}


def get_tokenizer(name: str) -> Tokenizer:
    if name not in TOKENIZERS:
        raise InputError("input.unknown_choice", name="tokenizer", value=name, choices=", ".join(TOKENIZERS))
    return TOKENIZERS[name]
