"""Chapter 2: one text, four tokenizers — byte-level BPE, SentencePiece, WordPiece and Kiwi morphemes.

The same sentence costs very different numbers of tokens, and a byte-level BPE trained mostly on English cuts
Hangul syllables into pieces that are not even valid UTF-8 on their own. `groups` shows them as a learner reads
them: the pieces of one character together, with their raw bytes (engine.lm.token_display), never `�`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import clean_text
from engine.lm.token_display import TokenGroup, group_tokens

MAX_CHARS = 100_000  # tokenizing this much with all four stays around a second on 2 cores
MAX_SHOWN_TOKENS = 2_000  # tokens listed per tokenizer; counts always cover the whole text
MAX_GROUPED = 400  # tokens shown as characters (chips and the token table); grouping decodes each token again

TOKENIZERS = {
    # name: (model role or None for Kiwi, algorithm)
    "SmolLM2 (byte-level BPE)": ("chat", "byte-level BPE"),
    "Gemma-3 (SentencePiece)": ("base-ko", "SentencePiece BPE"),
    "MiniLM (WordPiece)": ("embed", "WordPiece, uncased"),
    "Kiwi (morphemes)": (None, "Korean morpheme analyzer"),
}


@dataclass
class Tokenized:
    name: str
    algorithm: str
    tokens: list[str]  # raw vocabulary entries (or form/TAG for Kiwi), at most MAX_SHOWN_TOKENS
    pieces: list[str]  # each token decoded on its own: what it stands for in the text
    ids: list[int | None]
    count: int  # over the whole text, special tokens excluded
    chars_per_token: float
    seconds: float
    vocab_size: int | None  # None for Kiwi: a morpheme analyzer with a dictionary has no fixed token vocabulary
    groups: list[TokenGroup]  # the first MAX_GROUPED tokens as characters (byte pieces joined), for display


def load_kiwi():
    from kiwipiepy import Kiwi

    kiwi = Kiwi()
    kiwi.tokenize("워밍업")  # the first call builds Kiwi's internal tables (~1.5 s); pay it while loading
    return kiwi


def load_tokenizers(progress: ProgressFn = null_progress) -> dict[str, object]:
    from engine.models.loading import load_tokenizer

    out = {}
    for i, (name, (role, _)) in enumerate(TOKENIZERS.items()):
        progress(i / len(TOKENIZERS), f"loading {name}")
        out[name] = load_tokenizer(role) if role else load_kiwi()
    progress(1.0, "tokenizers ready")
    return out


def tokenize_one(name: str, tokenizer, text: str) -> Tokenized:
    start = time.perf_counter()
    algorithm = TOKENIZERS.get(name, (None, "?"))[1]
    if hasattr(tokenizer, "analyze") and hasattr(tokenizer, "tokenize") and not hasattr(tokenizer, "encode"):
        morphs = tokenizer.tokenize(text)
        count = len(morphs)
        shown = morphs[:MAX_SHOWN_TOKENS]
        tokens = [f"{m.form}/{m.tag}" for m in shown]
        pieces = [m.form for m in shown]
        ids: list[int | None] = [None] * len(shown)
        vocab = None
        seconds = time.perf_counter() - start
        groups = [TokenGroup(m.form, (i,), (), (t,), "") for i, (m, t) in enumerate(zip(shown, tokens, strict=True))]
    else:
        all_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        count = len(all_ids)
        ids = list(all_ids[:MAX_SHOWN_TOKENS])
        tokens = tokenizer.convert_ids_to_tokens(ids)
        pieces = [tokenizer.decode([i]) for i in ids]
        vocab = len(tokenizer)
        seconds = time.perf_counter() - start  # the tokenizer's own work, not the display grouping below
        # a few tokens past the limit, so the last character is not cut in the middle of its bytes
        groups = [g for g in group_tokens(tokenizer, ids[: MAX_GROUPED + 8]) if g.positions[0] < MAX_GROUPED]
    cpt = len(text) / max(count, 1)
    return Tokenized(name, algorithm, tokens, pieces, ids, count, cpt, seconds, vocab, groups[:MAX_GROUPED])


def compare_tokenizers(text: str, tokenizers: dict[str, object]) -> tuple[list[Tokenized], str | None]:
    """Tokenize `text` with every tokenizer. Returns the results and a note if the text was cut or cleaned."""
    cleaned = clean_text(text, max_chars=MAX_CHARS)
    return [tokenize_one(n, t, cleaned.text) for n, t in tokenizers.items()], cleaned.note


def token_cost(pairs: list[dict[str, str]], tokenizers: dict[str, object]) -> list[dict]:
    """Tokens needed for the same meaning in Korean and English, per tokenizer (rows for a grouped bar chart)."""
    rows = []
    for name, tok in tokenizers.items():
        for lang in ("ko", "en"):
            text = "\n".join(p[lang] for p in pairs)
            n = tokenize_one(name, tok, text).count
            rows.append({"tokenizer": name, "lang": lang, "tokens": n, "chars": len(text)})
    return rows
