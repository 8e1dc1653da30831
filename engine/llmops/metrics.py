"""Quantitative metrics for generated text (book 13.3), each computed twice: on whitespace tokens and on Kiwi morphemes.

Exact match and token F1 (SQuAD-style bag-of-tokens overlap) are computed here; BLEU and chrF come from `sacrebleu`,
ROUGE from Google's `rouge-score`. Every metric that counts words depends on what a word is, and Korean glues
particles and endings onto words: 국회의원은 / 국회의원이 / 국회의원의 are three different whitespace tokens but
share the morpheme 국회의원 (Kiwi: 국회의원/NNG + 은/JX …). So the same prediction/reference pair gets one score per
tokenization, side by side, and the gap is the lesson.

- whitespace: `engine.retrieval.tokenizers.whitespace_tokens` (split on spaces and punctuation, lowercased).
- morpheme: every Kiwi morpheme's surface form (particles and endings included, punctuation dropped, lowercased).
  Kiwi restores the base form of a morpheme (가진다 → 가지 + ㄴ다), so even chrF, which reads characters, moves.

Both are fed to the libraries already tokenized (tokens joined by one space): sacrebleu with `tokenize="none"`,
rouge-score with a tokenizer that splits on spaces. Left to themselves the libraries would not see Korean properly:
rouge-score's default tokenizer keeps only [a-z0-9], so a Korean sentence keeps nothing but its digits — ROUGE-L 0
for a perfect answer, 100 for two different sentences that share a number (`rouge_default_tokenizer` shows it) —
and sacrebleu's 13a tokenizer splits punctuation only. chrF reads characters with the spaces removed, so a spacing
mistake (모든국민은) costs it nothing, while every word-based metric on whitespace tokens drops.

All scores are on a 0–100 scale, as sacrebleu reports BLEU and chrF.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.core.textinput import InputError

TOKENIZATIONS = ("whitespace", "morpheme")
METRICS = ("exact_match", "token_f1", "bleu", "chrf", "rouge1", "rouge2", "rougeL")
MAX_PAIRS = 1_000
_WORDLIKE = re.compile(r"\w")

# Hand-made Korean pairs (prediction, reference) for the CLI and the page's first view: the same answer with other
# particles, spacing or endings, a paraphrase, and a wrong answer.
EXAMPLE_PAIRS: tuple[tuple[str, str], ...] = (
    ("대한민국은 민주공화국이다.", "대한민국은 민주공화국이다."),
    ("대통령의 임기는 5년이다.", "대통령의 임기는 5년으로 하며, 중임할 수 없다."),
    ("국회의원의 임기는 4년으로 한다.", "국회의원 임기는 4년이다."),
    ("모든 국민은 근로의 권리를 가진다.", "모든국민은 근로의권리를 가진다."),
    ("주권은 국민에게 있다.", "대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다."),
    (
        "헌법재판소는 9인의 재판관으로 구성한다.",
        "헌법재판소는 법관의 자격을 가진 9인의 재판관으로 구성하며, 재판관은 대통령이 임명한다.",
    ),
    ("국회는 국민의 보통·평등·직접·비밀선거에 의하여 선출된 국회의원으로 구성한다.", "대통령은 국가의 원수이다."),
)


def whitespace_tokens(text: str) -> list[str]:
    """Words between spaces and punctuation, lowercased (what a tokenizer without Korean knowledge sees)."""
    from engine.retrieval.tokenizers import whitespace_tokens as split

    return split(text)


def morpheme_tokens(text: str) -> list[str]:
    """Kiwi morphemes (surface forms, particles and endings kept), punctuation dropped, lowercased."""
    from engine.retrieval.tokenizers import kiwi_morphemes

    if not text.strip():
        return []
    return [t.lower() for t in kiwi_morphemes(text) if _WORDLIKE.search(t)]


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {"whitespace": whitespace_tokens, "morpheme": morpheme_tokens}


@dataclass(frozen=True)
class MetricScores:
    """One tokenization's scores for a pair (or a corpus), each 0–100."""

    exact_match: float
    token_f1: float
    bleu: float
    chrf: float
    rouge1: float
    rouge2: float
    rougeL: float  # rouge-score's own name

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in METRICS}


@dataclass(frozen=True)
class PairScores:
    """A prediction and its reference, scored with both tokenizations (the page draws one row per pair)."""

    prediction: str
    reference: str
    tokens: dict[str, tuple[list[str], list[str]]]  # tokenization -> (prediction tokens, reference tokens)
    scores: dict[str, MetricScores]  # tokenization -> scores
    rouge_default_tokenizer: float  # ROUGE-L F1 with rouge-score's own tokenizer: 0 for any Korean text

    def gap(self, metric: str) -> float:
        """morpheme score minus whitespace score for `metric`."""
        return getattr(self.scores["morpheme"], metric) - getattr(self.scores["whitespace"], metric)


@dataclass(frozen=True)
class MetricsReport:
    """Per-pair scores and the corpus scores (corpus BLEU/chrF from sacrebleu; the mean of the others)."""

    pairs: list[PairScores]
    corpus: dict[str, MetricScores]  # tokenization -> corpus scores
    libraries: dict[str, str]  # library -> version, so a page can say what produced the numbers

    def rows(self) -> list[dict]:
        """Long format: one row per (pair, tokenization) with every metric (for a table or a grouped bar chart)."""
        out = []
        for i, pair in enumerate(self.pairs):
            for tok in TOKENIZATIONS:
                out.append({"pair": i, "tokenization": tok, **pair.scores[tok].as_dict()})
        return out


# --- the metrics -------------------------------------------------------------------------------------------------


def exact_match(pred_tokens: Sequence[str], ref_tokens: Sequence[str]) -> float:
    """100 if the token sequences are identical, else 0 (so spacing and punctuation never count)."""
    return 100.0 if list(pred_tokens) == list(ref_tokens) else 0.0


def token_f1(pred_tokens: Sequence[str], ref_tokens: Sequence[str]) -> float:
    """SQuAD's F1: overlap of the two token multisets (each token counted at most as often as in both)."""
    if not pred_tokens or not ref_tokens:
        return 100.0 if list(pred_tokens) == list(ref_tokens) else 0.0
    common = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(ref_tokens)
    return 100.0 * 2 * precision * recall / (precision + recall)


class _SpaceTokenizer:
    """rouge-score's tokenizer interface over text that is already tokenized (tokens joined by spaces)."""

    def tokenize(self, text: str) -> list[str]:
        return text.split()


def _scorers():
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU, CHRF

    return {
        # effective_order: a short sentence with no 4-gram match is not zero by construction (sacrebleu's advice
        # for sentence-level BLEU); the corpus score uses standard BLEU.
        "sentence_bleu": BLEU(tokenize="none", effective_order=True),
        "corpus_bleu": BLEU(tokenize="none"),
        "chrf": CHRF(),
        "rouge": rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=_SpaceTokenizer()),
        "rouge_default": rouge_scorer.RougeScorer(["rougeL"]),
    }


def _pair_scores(pred: list[str], ref: list[str], scorers) -> MetricScores:
    hyp, gold = " ".join(pred), " ".join(ref)
    rouge = scorers["rouge"].score(gold, hyp)  # rouge-score's order: (target, prediction)
    return MetricScores(
        exact_match=exact_match(pred, ref),
        token_f1=token_f1(pred, ref),
        bleu=float(scorers["sentence_bleu"].sentence_score(hyp, [gold]).score),
        chrf=float(scorers["chrf"].sentence_score(hyp, [gold]).score),
        rouge1=100.0 * rouge["rouge1"].fmeasure,
        rouge2=100.0 * rouge["rouge2"].fmeasure,
        rougeL=100.0 * rouge["rougeL"].fmeasure,
    )


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if isinstance(predictions, str) or isinstance(references, str):
        raise InputError("llmops.metrics.not_a_list")
    if len(predictions) != len(references):
        raise InputError("llmops.metrics.unequal_lengths", predictions=len(predictions), references=len(references))
    if not predictions:
        raise InputError("llmops.metrics.no_pairs")
    if len(predictions) > MAX_PAIRS:
        raise InputError("llmops.metrics.too_many_pairs", limit=MAX_PAIRS, value=len(predictions))
    for i, (pred, ref) in enumerate(zip(predictions, references, strict=True)):
        if not isinstance(pred, str) or not isinstance(ref, str):
            raise InputError("llmops.metrics.not_text", index=i + 1)
        if not ref.strip():
            raise InputError("llmops.metrics.empty_reference", index=i + 1)


def evaluate_pairs(predictions: Sequence[str], references: Sequence[str]) -> MetricsReport:
    """Score each (prediction, reference) pair with every metric under both tokenizations.

    An empty prediction is a real model output and scores 0; an empty reference, lists of unequal length or no
    pairs at all raise `InputError` (llmops.metrics.*)."""
    import rouge_score
    import sacrebleu

    _check_pairs(predictions, references)
    scorers = _scorers()
    pairs: list[PairScores] = []
    tokenized: dict[str, list[tuple[list[str], list[str]]]] = {tok: [] for tok in TOKENIZATIONS}
    for pred, ref in zip(predictions, references, strict=True):
        tokens, scores = {}, {}
        for tok in TOKENIZATIONS:
            split = TOKENIZERS[tok]
            p, r = split(pred), split(ref)
            if not r:
                raise InputError("llmops.metrics.empty_reference", index=len(pairs) + 1)
            tokens[tok] = (p, r)
            scores[tok] = _pair_scores(p, r, scorers)
            tokenized[tok].append((p, r))
        default = scorers["rouge_default"].score(ref, pred)["rougeL"].fmeasure
        pairs.append(PairScores(pred, ref, tokens, scores, 100.0 * default))

    corpus = {}
    for tok in TOKENIZATIONS:
        hyps = [" ".join(p) for p, _ in tokenized[tok]]
        refs = [" ".join(r) for _, r in tokenized[tok]]
        n = len(pairs)
        corpus[tok] = MetricScores(
            exact_match=sum(p.scores[tok].exact_match for p in pairs) / n,
            token_f1=sum(p.scores[tok].token_f1 for p in pairs) / n,
            bleu=float(scorers["corpus_bleu"].corpus_score(hyps, [refs]).score),
            chrf=float(scorers["chrf"].corpus_score(hyps, [refs]).score),
            rouge1=sum(p.scores[tok].rouge1 for p in pairs) / n,
            rouge2=sum(p.scores[tok].rouge2 for p in pairs) / n,
            rougeL=sum(p.scores[tok].rougeL for p in pairs) / n,
        )
    versions = {"sacrebleu": sacrebleu.__version__, "rouge-score": _version("rouge-score", rouge_score)}
    return MetricsReport(pairs, corpus, versions)


def _version(dist: str, module) -> str:
    import importlib.metadata as md

    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return getattr(module, "__version__", "?")
