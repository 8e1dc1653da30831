"""Approximate nearest-neighbour search, chapter 12: exact KNN, NSW/HNSW from scratch, and library sweeps.

- `exact`: brute-force k-NN (the ground truth), recall@k, synthetic vectors, a 2-D projection.
- `hnsw`: NSW and HNSW written from scratch for teaching, with a trace of every layer a search visits.
- `sweep`: hnswlib / faiss / scratch over M, efConstruction, efSearch, with a memory guard before allocating.
- `shipped`: the page's slow demos run once with its defaults (assets/precomputed/ch12_*.json).
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face

_LAZY = {
    "EF_GRID": "exact",
    "KnnVsAnnGrid": "exact",
    "GraphPicture": "walkthrough",
    "LIBRARIES": "sweep",
    "LayerTrace": "hnsw",
    "clamp_insert": "report",
    "compare_nsw_hnsw": "walkthrough",
    "corpus_points": "walkthrough",
    "embed_query": "walkthrough",
    "found_texts": "report",
    "insertion_step": "walkthrough",
    "insertion_view": "report",
    "knn_ann_lookup": "shipped",
    "knn_vs_ann": "exact",
    "knn_vs_ann_grid": "exact",
    "prepare": "sweep",
    "search_layer_rows": "report",
    "search_steps": "report",
    "search_walkthrough": "walkthrough",
    "shown_steps": "report",
    "sweep_libraries": "report",
    "sweep_library": "sweep",
    "toy_points": "walkthrough",
}
__all__ = [
    "EF_GRID",
    "LIBRARIES",
    "GraphPicture",
    "KnnVsAnnGrid",
    "LayerTrace",
    "clamp_insert",
    "compare_nsw_hnsw",
    "corpus_points",
    "embed_query",
    "found_texts",
    "insertion_step",
    "insertion_view",
    "knn_ann_lookup",
    "knn_vs_ann",
    "knn_vs_ann_grid",
    "prepare",
    "search_layer_rows",
    "search_steps",
    "search_walkthrough",
    "shown_steps",
    "sweep_libraries",
    "sweep_library",
    "toy_points",
]
__getattr__ = lazy_face(__name__, globals(), _LAZY)
