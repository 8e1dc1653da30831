"""Where the app's own files are: the repository root, `assets/` (small shipped data) and `lessons/`.

The one place that knows the layout, so a module never counts `parents[...]` from its own file.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
LESSONS = ROOT / "lessons"


def asset(*parts: str) -> Path:
    """`asset("alignment", "instructions.yaml")` -> <root>/assets/alignment/instructions.yaml."""
    return ASSETS.joinpath(*parts)
