"""Typed errors of chapter 14: what a learner can get wrong (an upload that is not an image, a prompt that is empty,
a dataset that is not installed, a hub id while offline). Each has a code in engine.core.errors.MESSAGES (block
`# --- multimodal ---`), ko/en in ui/strings/errors.yaml."""

from __future__ import annotations

from engine.core.textinput import InputError

__all__ = ["ImageInputError", "MultimodalError"]


class MultimodalError(InputError):
    """A chapter-14 input or setting that cannot be used (a `UserError` with a `multimodal.*` code)."""

    default_code = "input.invalid"


class ImageInputError(MultimodalError):
    """An uploaded file that cannot be used as an image (not an image, too large, empty, ...)."""
