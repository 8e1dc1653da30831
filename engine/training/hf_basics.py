"""Chapter 3, part 1: a real Korean dataset, a tokenizer and a model, the 🤗 way, all from local files.

The data is the Constitution of the Republic of Korea as shipped in the `konlpy` wheel (public-domain law text;
the data file is read directly, konlpy itself is never imported). Each paragraph (항) becomes one example and
its chapter (제2장 국민의 권리와 의무, 제3장 국회, …) becomes the label: a small, honest text-classification task.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.core.textinput import InputError
from engine.models.registry import ModelUnavailable

_CHAPTER = re.compile(r"^제(\d+)장\s+(.+)$")
_SECTION = re.compile(r"^제\d+절\s")
_ARTICLE = re.compile(r"^제(\d+)조(?:의\d+)?\s*(.*)$")
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def konlpy_file(relative: str) -> Path:
    """A data file inside the installed konlpy wheel (located, never imported)."""
    try:
        dist = md.distribution("konlpy")
    except md.PackageNotFoundError as exc:
        raise ModelUnavailable(
            "The Korean corpus comes from the `konlpy` wheel, which is not installed: "
            "`pip install konlpy` (only its data files are read)."
        ) from exc
    path = Path(str(dist.locate_file(f"konlpy/data/corpus/{relative}")))
    if not path.exists():
        raise ModelUnavailable(f"konlpy is installed but {relative} is missing; reinstall it.")
    return path


@dataclass(frozen=True)
class Paragraph:
    text: str  # the paragraph without its article number and ①-style marker (they would give the label away)
    chapter_no: int
    chapter: str  # e.g. "국회"
    article: int


@lru_cache(maxsize=1)
def constitution_paragraphs() -> tuple[Paragraph, ...]:
    """Every paragraph of articles 1-130 with its chapter; the preamble and the addenda (부칙) are left out."""
    lines = konlpy_file("kolaw/constitution.txt").read_text(encoding="utf-8").splitlines()
    out: list[Paragraph] = []
    chapter_no, chapter, article = 0, "", 0
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if "부칙" in line and chapter_no:  # the addenda restart article numbers at 1: stop here
            break
        if m := _CHAPTER.match(line):
            chapter_no, chapter = int(m.group(1)), m.group(2).strip()
            continue
        if not chapter_no or _SECTION.match(line):
            continue
        if m := _ARTICLE.match(line):
            article, line = int(m.group(1)), m.group(2)
        line = line.lstrip(_CIRCLED).strip()
        if line:
            out.append(Paragraph(line, chapter_no, chapter, article))
    return tuple(out)


def chapter_counts() -> list[dict]:
    """Paragraphs per chapter (the class balance the learner should see before training)."""
    counts: dict[tuple[int, str], int] = {}
    for p in constitution_paragraphs():
        counts[(p.chapter_no, p.chapter)] = counts.get((p.chapter_no, p.chapter), 0) + 1
    return [{"chapter_no": no, "chapter": name, "paragraphs": n} for (no, name), n in sorted(counts.items())]


def label_name(chapter_no: int, chapter: str) -> str:
    return f"제{chapter_no}장 {chapter}"


def build_dataset(min_per_class: int = 15, test_fraction: float = 0.2, seed: int = 0):
    """A `datasets.DatasetDict` (train/test, stratified by label) of Constitution paragraphs -> chapter.

    Chapters with fewer than `min_per_class` paragraphs are left out (a class with 4 examples cannot be both
    learned and tested). Columns: text, label (a ClassLabel whose names are "제N장 …"), article.
    """
    from datasets import ClassLabel, Dataset, Features, Value

    if not 0.05 <= test_fraction <= 0.5:
        raise InputError("training.bad_test_fraction", value=test_fraction)
    kept = [c for c in chapter_counts() if c["paragraphs"] >= min_per_class]
    if len(kept) < 2:
        raise InputError("training.too_few_chapters", count=len(kept), min_per_class=min_per_class)
    names = [label_name(c["chapter_no"], c["chapter"]) for c in kept]
    index = {c["chapter_no"]: i for i, c in enumerate(kept)}
    rows = [p for p in constitution_paragraphs() if p.chapter_no in index]
    features = Features({"text": Value("string"), "label": ClassLabel(names=names), "article": Value("int32")})
    ds = Dataset.from_dict(
        {
            "text": [p.text for p in rows],
            "label": [index[p.chapter_no] for p in rows],
            "article": [p.article for p in rows],
        },
        features=features,
    )
    return ds.train_test_split(test_size=test_fraction, stratify_by_column="label", seed=seed)


def wordpiece_vocab(texts: list[str], vocab_size: int = 2000, min_count: int = 2) -> list[str]:
    """A WordPiece vocabulary counted from `texts`, deterministic (same texts -> same ids).

    Korean words (어절) are a stem plus particles/endings (국민 + 은), so the candidates are every character
    (word-initial and `##` continuation), frequent whole words, frequent word beginnings and frequent endings;
    the most frequent candidates win, ties broken alphabetically. (🤗 tokenizers' WordPieceTrainer learns a similar
    vocabulary by merging, but breaks ties in hash order, so two trainings on the same text can differ.)
    """
    from tokenizers import normalizers, pre_tokenizers

    if not texts:
        raise InputError("training.no_vocabulary_texts")
    norm, pre = normalizers.NFC(), pre_tokenizers.BertPreTokenizer()
    words: dict[str, int] = {}
    for text in texts:
        for word, _ in pre.pre_tokenize_str(norm.normalize_str(text)):
            words[word] = words.get(word, 0) + 1
    chars: set[str] = set()
    pieces: dict[str, int] = {}
    for word, n in words.items():
        chars.add(word[0])
        chars.update("##" + c for c in word[1:])
        candidates = {word}
        candidates.update(word[:k] for k in range(2, len(word)))  # stems: 국민, 대통령, …
        candidates.update("##" + word[k:] for k in range(max(1, len(word) - 4), len(word)))  # endings: ##은, ##에게
        for c in candidates:
            pieces[c] = pieces.get(c, 0) + n
    ranked = sorted((c for c, n in pieces.items() if n >= min_count and c not in chars), key=lambda c: (-pieces[c], c))
    vocab = SPECIAL_TOKENS + sorted(chars)
    return vocab + ranked[: max(0, vocab_size - len(vocab))]


def train_tokenizer(texts: list[str], vocab_size: int = 2000):
    """A WordPiece tokenizer for `texts`, built with 🤗 tokenizers and wrapped as a transformers fast tokenizer.

    A model trained from scratch needs a vocabulary that fits its data; greedy longest-match WordPiece then
    splits an unseen word into known pieces (국민에게 -> 국민 ##에게) instead of [UNK].
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = wordpiece_vocab(list(texts), vocab_size)
    tok = Tokenizer(models.WordPiece({piece: i for i, piece in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )


@dataclass
class PaddedBatch:
    """What a tokenizer hands the model for a batch: ids, the attention mask, and the tokens to look at."""

    tokens: list[list[str]]
    input_ids: list[list[int]]
    attention_mask: list[list[int]]
    pad_token: str
    truncated: list[bool]


def padded_batch(tokenizer, texts: list[str], max_length: int = 32, padding_side: str = "right") -> PaddedBatch:
    """Tokenize several texts together: the short ones are padded, the long ones cut, and the mask says which is which.

    The mask is 1 for real tokens and 0 for padding, so attention ignores the padding and the result for a text
    does not depend on what else is in the batch.
    """
    if not texts:
        raise InputError("no texts")
    if not 4 <= max_length <= 512:
        raise InputError("training.bad_max_length", value=max_length)
    tokenizer.padding_side = padding_side
    full = tokenizer(texts)["input_ids"]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length)
    tokens = [tokenizer.convert_ids_to_tokens(ids) for ids in enc["input_ids"]]
    return PaddedBatch(
        tokens, enc["input_ids"], enc["attention_mask"], tokenizer.pad_token, [len(f) > max_length for f in full]
    )


@dataclass
class DatasetOverview:
    dataset: object  # DatasetDict (train/test)
    tokenizer: object
    counts: list[dict]  # every chapter with its paragraph count and whether it is kept
    labels: list[str]


def dataset_overview(min_per_class: int = 15, seed: int = 0, vocab_size: int = 2000) -> DatasetOverview:
    """The dataset and the tokenizer built from its training split: what the page shows before any training."""
    dd = build_dataset(min_per_class=min_per_class, seed=seed)
    tok = train_tokenizer(list(dd["train"]["text"]), vocab_size)
    counts = [
        {**c, "label": label_name(c["chapter_no"], c["chapter"]), "kept": c["paragraphs"] >= min_per_class}
        for c in chapter_counts()
    ]
    return DatasetOverview(dd, tok, counts, dd["train"].features["label"].names)
