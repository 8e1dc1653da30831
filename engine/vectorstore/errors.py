"""What the vector store refuses, as exceptions with a message for the learner (shared by every backend)."""

from __future__ import annotations

from engine.core.errors import UserError


class StoreError(UserError):
    """A request the store refused; nothing was changed. The message says why and what to do."""

    default_code = "store.error"


class DuplicateId(StoreError):
    pass


class MissingId(StoreError):
    pass


class StoreCorrupted(StoreError):
    pass
