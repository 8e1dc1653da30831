"""Lighter models, chapter 7: quantization (bitsandbytes, RTN/GPTQ/AWQ on a real layer) and distillation.

- `quantization`: int8 / NF4 / FP4 with bitsandbytes on CPU: bytes, tokens/s, perplexity.
- `gptq_awq`: RTN vs GPTQ vs AWQ on one linear layer of `chat`, with held-out output error.
- `distillation`: soft vs hard labels from a teacher.
- `shipped`: chapter 7's run-only demos computed once with the page's defaults (assets/precomputed/ch07_*.json).
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face

_LAZY = {
    "PRECISIONS": "quantization",
    "PROJECTIONS": "gptq_awq",
    "calibration_texts": "gptq_awq",
    "compare_methods": "gptq_awq",
    "distill": "distillation",
    "distillation_docs": "distillation",
    "eval_texts": "quantization",
    "heldout_texts": "gptq_awq",
    "quant_bench": "quantization",
    "relative_to": "quantization",
    "shipped_demo": "shipped",
    "teacher_targets": "distillation",
}
__all__ = [
    "PRECISIONS",
    "PROJECTIONS",
    "calibration_texts",
    "compare_methods",
    "distill",
    "distillation_docs",
    "eval_texts",
    "heldout_texts",
    "quant_bench",
    "relative_to",
    "shipped_demo",
    "teacher_targets",
]
__getattr__ = lazy_face(__name__, globals(), _LAZY)
