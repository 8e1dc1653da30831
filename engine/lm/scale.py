"""Chapter 1: the GPT-series scale story, from published figures only (assets/gpt_scale.yaml)."""

from __future__ import annotations

import yaml

from engine.core.assets import asset

ASSET = asset("gpt_scale.yaml")


def gpt_scale() -> list[dict]:
    """Rows with model, year, params (None = not disclosed, with params_note {ko, en} saying so), context (tokens),
    data and note ({ko, en}: what a learner reads), source (the citation, as published)."""
    return yaml.safe_load(ASSET.read_text(encoding="utf-8"))


def readable_count(n: int) -> str:
    """A parameter count as papers write it: 117M, 1.5B, 175B (one decimal at most, none when it is whole)."""
    for size, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0") + suffix
    return str(n)
