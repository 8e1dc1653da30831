"""Chapter 2: the embedding lookup — a token id picks one row of the model's (V, C) embedding matrix."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.core.textinput import clean_text
from engine.lm.language_model import visible
from engine.lm.token_display import token_views
from engine.models.loading import LoadedLM

MAX_ROWS = 32


@dataclass
class EmbeddingLookup:
    tokens: list[str]  # one label per id: byte pieces show the character they form, "왕 (1/3)"
    hex: list[str]  # each byte piece's own bytes ("EC"), "" for a whole token
    ids: list[int]
    vectors: list[list[float]]  # (T, n_dims): the first n_dims columns of each looked-up row
    norms: list[float]  # L2 norm of each full row
    shape: tuple[int, int]  # (V, C) of the embedding matrix
    cosine: list[list[float]]  # (T, T) cosine similarity between the full rows


@torch.no_grad()
def embedding_lookup(lm: LoadedLM, text: str, n_dims: int = 8) -> EmbeddingLookup:
    ids = lm.tokenizer(clean_text(text, max_chars=2_000).text, add_special_tokens=False)["input_ids"][:MAX_ROWS]
    table = lm.model.get_input_embeddings().weight  # (V, C)
    rows = table[torch.tensor(ids, dtype=torch.long)].float()  # (T, C): indexing *is* the lookup
    unit = rows / rows.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    views = token_views(lm.tokenizer, ids, mark=visible)
    return EmbeddingLookup(
        tokens=[v.label for v in views],
        hex=[v.hex for v in views],
        ids=list(ids),
        vectors=rows[:, :n_dims].tolist(),
        norms=rows.norm(dim=-1).tolist(),
        shape=tuple(table.shape),
        cosine=(unit @ unit.T).tolist(),  # (T, T)
    )
