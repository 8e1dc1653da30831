"""Chapter 1: the GPT-series scale story, from published figures only (assets/gpt_scale.yaml)."""

from __future__ import annotations

import yaml

from engine.core.assets import asset

ASSET = asset("gpt_scale.yaml")


def gpt_scale() -> list[dict]:
    """Rows with model, year, params (None = not disclosed), context, data, source."""
    return yaml.safe_load(ASSET.read_text(encoding="utf-8"))
