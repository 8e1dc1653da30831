"""Answer quality on held-out pairs: character-level F1, the KorQuAD way.

Word-level F1 (SQuAD) fails for Korean: 도서관은 and 도서관에서 share no word. KorQuAD 1.0's official metric compares
*characters* after removing spaces and punctuation: precision = common characters / predicted characters, recall =
common characters / reference characters, F1 their harmonic mean. It rewards an answer that contains the facts of
the reference (오후 10시, 5권, 14일) and says little about fluency — which is why the page also shows the answers.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from statistics import mean

_DROP = re.compile(r"[\s\W_]+", re.UNICODE)  # spaces and punctuation (\W keeps Hangul, letters and digits)


def normalize(text: str) -> str:
    return _DROP.sub("", unicodedata.normalize("NFC", text or "").lower())


def char_f1(prediction: str, reference: str) -> float:
    pred, ref = Counter(normalize(prediction)), Counter(normalize(reference))
    common = sum((pred & ref).values())
    if common == 0:
        return 0.0
    precision = common / sum(pred.values())
    recall = common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def mean_f1(predictions: list[str], references: list[str]) -> float:
    return round(mean(char_f1(p, r) for p, r in zip(predictions, references, strict=True)), 4) if references else 0.0
