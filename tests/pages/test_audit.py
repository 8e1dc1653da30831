"""The Korean audit's word finder (tests/pages/audit.py): what counts as an English word on a Korean page."""

from __future__ import annotations

from tests.pages.audit import english_words


def test_plain_words_are_found_identifiers_are_not():
    assert english_words("total count (per genre)") == ["total", "count", "per", "genre"]
    assert english_words("LoRA · SmolLM2 · recall@10 · Q4_K_M · tok/s") == []


def test_a_function_called_in_code_is_not_a_word():
    # SQLite names a result column after its expression: `SELECT count(*) ...` gives the header "count(*)"
    assert english_words("count(*)") == [] and english_words("SUM(T1.Total)") == []
    assert english_words("avg (평균)") == ["avg"]  # a word before a bracketed gloss is still a word
