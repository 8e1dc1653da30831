"""What the vector store refuses, as exceptions with a message for the learner (shared by every backend)."""

from __future__ import annotations


class StoreError(ValueError):
    """A request the store refused; nothing was changed. The message says why and what to do."""


class DuplicateId(StoreError):
    pass


class MissingId(StoreError):
    pass


class StoreCorrupted(StoreError):
    pass
