"""Model roles, their offline/online sources, and loading (with a one-time GGUF -> safetensors conversion)."""

from engine.models.registry import ROLES, ModelRole, ModelUnavailable, ResolvedModel, resolve

__all__ = ["ROLES", "ModelRole", "ModelUnavailable", "ResolvedModel", "resolve"]
