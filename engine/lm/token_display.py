"""Tokens as a learner reads them: byte pieces grouped into the characters they form, never `�`.

A byte-level BPE (SmolLM2, GPT-2) trained mostly on English often cuts one Hangul syllable (3 UTF-8 bytes) into
two or three tokens; decoding one of them alone gives `�`, because it is not valid UTF-8 by itself. As in
tiktokenizer, such tokens are shown together as the character they make, with the raw bytes beside them.
The grouping uses the tokenizer's own decoder, so it is right for every tokenizer family (byte-level BPE,
SentencePiece byte fallback `<0xEC>`, WordPiece).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

REPLACEMENT = "\ufffd"
MAX_GROUP = 8  # a character is at most 4 bytes; 8 tokens covers byte pieces mixed with a following piece
_SP_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@dataclass(frozen=True)
class TokenGroup:
    text: str  # the characters these tokens form together, as the tokenizer decodes them
    positions: tuple[int, ...]  # indices into the token list
    ids: tuple[int, ...]
    raw: tuple[str, ...]  # raw vocabulary entries ("ìķ", "<0xEC>", "##ing")
    hex: str  # the bytes of byte pieces, "EC 95 88"; "" when every token is a whole piece of text

    @property
    def is_bytes(self) -> bool:
        """True when the tokens are byte pieces that only make a character together (or alone, a byte)."""
        return bool(self.hex)


@lru_cache(maxsize=1)
def _byte_level_decoder() -> dict[str, int]:
    """GPT-2's printable stand-ins for bytes (bytes_to_unicode), inverted: "Ġ" -> 0x20, "ì" -> 0xEC."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def raw_bytes(token: str) -> bytes | None:
    """The bytes a raw vocabulary entry stands for, when it is written as bytes (byte-level BPE or a SentencePiece
    byte-fallback token); None for an ordinary piece of text."""
    m = _SP_BYTE.match(token)
    if m:
        return bytes([int(m.group(1), 16)])
    table = _byte_level_decoder()
    if token and all(ch in table for ch in token):
        return bytes(table[ch] for ch in token)
    return None


def _decode(tokenizer, ids) -> str:
    return tokenizer.decode(list(ids), clean_up_tokenization_spaces=False)


def group_tokens(tokenizer, ids: list[int]) -> list[TokenGroup]:
    """Consecutive tokens joined until they decode without `�`; each other token is a group of its own.

    A group that never becomes valid (a text cut in the middle of a character) keeps its tokens and shows their
    bytes instead of `�`.
    """
    ids = [int(i) for i in ids]
    raw = tokenizer.convert_ids_to_tokens(ids)
    groups: list[TokenGroup] = []
    i = 0
    while i < len(ids):
        end = i + 1
        text = _decode(tokenizer, ids[i:end])
        if REPLACEMENT in text:
            for j in range(i + 2, min(len(ids), i + MAX_GROUP) + 1):
                candidate = _decode(tokenizer, ids[i:j])
                if REPLACEMENT not in candidate:
                    end, text = j, candidate
                    break
        pieces = [
            raw_bytes(r) if REPLACEMENT in _decode(tokenizer, [x]) else None
            for r, x in zip(raw[i:end], ids[i:end], strict=True)
        ]
        hexes = " ".join(b.hex(" ").upper() for b in pieces if b)
        if REPLACEMENT in text:  # still not a character: show the bytes, never the replacement mark
            text = "⟨" + (hexes or "?") + "⟩"
        groups.append(TokenGroup(text, tuple(range(i, end)), tuple(ids[i:end]), tuple(raw[i:end]), hexes))
        i = end
    return groups


def readable(group: TokenGroup, mark: Callable[[str], str] | None = None) -> str:
    """A group's text passed through `mark` (e.g. whitespace made visible); bytes that never became a character
    stay as they are shown, ⟨EC 95⟩."""
    if mark is None or group.text == f"⟨{group.hex or '?'}⟩":
        return group.text
    return mark(group.text)


@dataclass(frozen=True)
class TokenView:
    """One token as a table row or an axis label shows it."""

    label: str  # the group's text; a byte piece adds which part of its character it is, "안 (1/3)"
    raw: str  # the raw vocabulary entry, "ìķ"
    hex: str  # this token's own bytes when its group is made of byte pieces ("EC" of 안 = EC 95 88), else ""


def token_views(tokenizer, ids: list[int], mark: Callable[[str], str] | None = None) -> list[TokenView]:
    """One view per token, in order. `mark` is applied to the text before "(1/3)" is appended, so a whitespace
    marker never turns the space of that suffix into ␣."""
    raw = tokenizer.convert_ids_to_tokens([int(i) for i in ids])
    views: list[TokenView] = []
    for g in group_tokens(tokenizer, ids):
        text, n = readable(g, mark), len(g.positions)
        for k, pos in enumerate(g.positions):
            own = raw_bytes(raw[pos]) if g.is_bytes else None
            views.append(
                TokenView(text if n == 1 else f"{text} ({k + 1}/{n})", raw[pos], own.hex(" ").upper() if own else "")
            )
    return views


def token_labels(tokenizer, ids: list[int], mark: Callable[[str], str] | None = None) -> list[str]:
    """One readable label per token (for heatmap rows and axis labels, where tokens cannot be merged): a whole
    token shows its text; a byte piece shows the character its group forms and which part it is, "안 (1/3)"."""
    return [v.label for v in token_views(tokenizer, ids, mark)]
