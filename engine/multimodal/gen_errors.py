"""Typed errors of the generation half of chapter 14 (diffusion, LLaVA): settings a learner can get wrong (a step
count or guidance scale out of range, an unknown dataset, a missing shipped checkpoint). Codes `mmgen.*` live in
engine.core.errors.MESSAGES (block `# --- multimodal generation ---`), ko/en in ui/strings/errors.yaml."""

from __future__ import annotations

import math

from engine.multimodal.errors import MultimodalError

__all__ = ["GenerationError", "check_number"]


class GenerationError(MultimodalError):
    """A diffusion or LLaVA setting that cannot be used (a `UserError` with an `mmgen.*` code)."""


def check_number(name: str, value, low: float, high: float, integer: bool = False):
    """`value` is a finite number in [low, high] (a whole number when `integer`), else `mmgen.bad_number`."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        ok = math.isfinite(float(value)) and low <= value <= high
    if not ok:
        raise GenerationError("mmgen.bad_number", name=name, low=low, high=high, value=value)
    return int(value) if integer else float(value)
