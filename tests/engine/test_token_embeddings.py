"""engine.lm.token_embeddings.embedding_lookup: a token id picks one row of the real model's embedding matrix."""

from __future__ import annotations

import pytest
import torch

from engine.lm.token_embeddings import MAX_ROWS, embedding_lookup


@pytest.fixture(scope="module")
def lookup(chat_lm):
    return embedding_lookup(chat_lm, "king 왕")


def test_rows_are_the_embedding_matrix_rows(chat_lm, lookup):
    table = chat_lm.model.get_input_embeddings().weight
    assert lookup.shape == (49152, 576)  # SmolLM2-135M: (V, C)
    assert lookup.ids == [644, 18601, 243, 239]
    torch.testing.assert_close(torch.tensor(lookup.vectors), table[lookup.ids, :8].float())
    torch.testing.assert_close(torch.tensor(lookup.norms), table[lookup.ids].float().norm(dim=-1))
    cos = torch.tensor(lookup.cosine)
    torch.testing.assert_close(cos.diagonal(), torch.ones(4), atol=1e-5, rtol=0)


def test_byte_pieces_are_labelled_as_the_character_they_form(lookup):
    """왕 is three byte pieces in SmolLM2's byte-level BPE: no `�`, each with its own bytes (" 왕" = 20 EC 99 95)."""
    assert lookup.tokens == ["king", "␣왕 (1/3)", "␣왕 (2/3)", "␣왕 (3/3)"]
    assert lookup.hex == ["", "20 EC", "99", "95"]


def test_at_most_max_rows(chat_lm):
    assert len(embedding_lookup(chat_lm, "a " * 100).ids) == MAX_ROWS
