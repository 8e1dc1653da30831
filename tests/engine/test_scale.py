"""engine.lm.scale: the GPT scale story from published figures, and parameter counts as papers write them."""

from __future__ import annotations

from engine.lm.scale import gpt_scale, readable_count


def test_readable_count():
    assert [readable_count(n) for n in (117_000_000, 1_500_000_000, 175_000_000_000, 10**12, 999)] == [
        "117M",
        "1.5B",
        "175B",
        "1T",
        "999",
    ]


def test_every_row_says_what_it_shows_in_both_languages():
    rows = gpt_scale()
    assert [r["model"] for r in rows][:4] == ["GPT-1", "GPT-2", "GPT-3", "GPT-4"]
    for r in rows:
        assert isinstance(r["year"], int) and isinstance(r["context"], int) and r["source"]
        assert r["data"]["ko"] and r["data"]["en"] and r["note"]["ko"] and r["note"]["en"]
        if r["params"] is None:  # not disclosed: the reason is written down, never an empty cell
            assert r["params_note"]["ko"] and r["params_note"]["en"]
        else:
            assert isinstance(r["params"], int) and r["params"] > 0
    assert [r["model"] for r in rows if r["params"] is None] == ["GPT-4"]
