"""Typed errors of chapter 16: settings a learner can get wrong (NaN input, an unstable A, a huge Δ, a length too
long for the page). Each has a code (engine.core.errors.MESSAGES, ko/en in ui/strings/errors.yaml)."""

from __future__ import annotations

import math

import torch

from engine.core.textinput import InputError

__all__ = ["SSMError", "check_finite", "check_length"]

MAX_LENGTH = 8192


class SSMError(InputError):
    """A state space model setting or input that cannot be computed (a `UserError` with an `ssm.*` code)."""

    default_code = "input.invalid"


def check_finite(name: str, value) -> None:
    """NaN or ±inf anywhere in `value` (a tensor or a number) -> `ssm.not_finite`."""
    if isinstance(value, torch.Tensor):
        ok = bool(torch.isfinite(value).all()) if value.numel() else True
    else:
        ok = math.isfinite(float(value))
    if not ok:
        raise SSMError("ssm.not_finite", name=name)


def check_length(length: int, limit: int = MAX_LENGTH) -> None:
    """A sequence length the page can compute: 1..limit (a shared URL could ask for a million)."""
    if length > limit:
        raise SSMError("ssm.length_too_long", value=int(length), limit=int(limit))
