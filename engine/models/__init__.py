"""Model roles, their offline/online sources, and loading (with a one-time GGUF -> safetensors conversion)."""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face
from engine.models.registry import ROLES, ModelRole, ModelUnavailable, ResolvedModel, installed, resolve

_LAZY = {
    "LoadedLM": "loading",
    "load_causal_lm": "loading",
    "load_sentence_embedder": "loading",
    "load_tokenizer": "loading",
}
__all__ = [
    "ROLES",
    "LoadedLM",
    "ModelRole",
    "ModelUnavailable",
    "ResolvedModel",
    "installed",
    "load_causal_lm",
    "load_sentence_embedder",
    "load_tokenizer",
    "resolve",
]
__getattr__ = lazy_face(__name__, globals(), _LAZY)
