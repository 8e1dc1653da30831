"""Chapter 14 CLI: `clip` and `clip-search` are registered with the documented options, and `clip-search` answers on
the shipped checkpoint (JSON lines on stdout)."""

from __future__ import annotations

import json

import pytest

from engine.__main__ import build_parser, main
from engine.core.assets import asset


def test_clip_options_parse():
    args = build_parser().parse_args(["clip", "--train", "--json", "--holdout", "bag,coat", "--caption-lang", "en"])
    from engine.commands.multimodal import _configs, command_line

    main_cfg, held_cfg = _configs(args)
    assert main_cfg.holdout == () and main_cfg.steps == 800 and main_cfg.caption_lang == "en"
    assert held_cfg.holdout == ("bag", "coat") and held_cfg.steps == 400
    assert command_line(args).endswith("--holdout bag,coat --caption-lang en")


@pytest.mark.skipif(not asset("multimodal", "clip_fashion.pt").exists(), reason="no shipped checkpoint")
def test_clip_search_on_the_shipped_checkpoint(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    assert main(["clip-search", "가방 사진", "--k", "3", "--images", "100", "--json", "--no-photos"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and all(not r["out_of_domain"] for r in rows)
    assert [r["class_en"] for r in rows] == ["bag"] * 3  # the shipped CLIP finds bags
