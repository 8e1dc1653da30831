"""Making generation fast, chapters 7-8: decoding, the KV cache, batching, paged and flash attention, speculation.

- `generation`: decoding strategies (greedy, sampling filters, beam), equal to transformers' processors.
- `kv_cache`: with vs without the cache, bytes measured vs the formula, the MHA/GQA/MQA calculator.
- `batching`, `batching_throughput`: static/dynamic/continuous batching on measured costs; the roofline.
- `paged_attention`: a PagedAttention block manager (a labelled simulation).
- `flash_attention`: tiled attention with online softmax, equal to standard attention and SDPA.
- `speculative`: speculative decoding (draft model, prompt lookup) that keeps the target distribution.
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face

_LAZY = {
    "COPY_PROMPT": "speculative",
    "DTYPE_BYTES": "kv_cache",
    "DecodingConfig": "generation",
    "PAPER_CITATION": "paged_attention",
    "PAPER_FIG2": "paged_attention",
    "POLICIES": "batching",
    "allocation_usage": "paged_attention",
    "batch_sweep": "batching_throughput",
    "batched_generate": "batching",
    "compare_methods": "speculative",
    "compare_on_random": "flash_attention",
    "default_costs": "batching",
    "flash_block_sizes": "flash_attention",
    "generate": "generation",
    "gpu_specs": "batching_throughput",
    "kv_bench": "kv_cache",
    "kv_calculator": "kv_cache",
    "make_workload": "batching",
    "measure_costs": "batching",
    "measure_machine": "batching_throughput",
    "measure_sdpa_memory": "flash_attention",
    "parse_batch_sizes": "batching_throughput",
    "parse_counts": "kv_cache",
    "prefill_cache_size": "kv_cache",
    "real_kv_check": "paged_attention",
    "real_static_batch": "batching",
    "ridge_point": "batching_throughput",
    "roofline": "batching_throughput",
    "scenario_steps": "paged_attention",
    "simulate": "batching",
    "snapshot": "batching",
    "synthetic_lengths": "paged_attention",
    "time_sdpa_backends": "flash_attention",
    "toy_experiment": "speculative",
    "traffic_table": "flash_attention",
}
__all__ = [
    "COPY_PROMPT",
    "DTYPE_BYTES",
    "PAPER_CITATION",
    "PAPER_FIG2",
    "POLICIES",
    "DecodingConfig",
    "allocation_usage",
    "batch_sweep",
    "batched_generate",
    "compare_methods",
    "compare_on_random",
    "default_costs",
    "flash_block_sizes",
    "generate",
    "gpu_specs",
    "kv_bench",
    "kv_calculator",
    "make_workload",
    "measure_costs",
    "measure_machine",
    "measure_sdpa_memory",
    "parse_batch_sizes",
    "parse_counts",
    "prefill_cache_size",
    "real_kv_check",
    "real_static_batch",
    "ridge_point",
    "roofline",
    "scenario_steps",
    "simulate",
    "snapshot",
    "synthetic_lengths",
    "time_sdpa_backends",
    "toy_experiment",
    "traffic_table",
]
__getattr__ = lazy_face(__name__, globals(), _LAZY)
