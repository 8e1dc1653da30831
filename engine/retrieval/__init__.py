"""Retrieval over small Korean corpora (chapters 10–12): BM25, dense, hybrid fusion, reranking and evaluation.

Every retriever answers `search(query, k) -> list[Hit]` and `scores(query) -> np.ndarray` (one score per doc, in
corpus order), so fusion and evaluation treat them alike.
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face

# A name equal to its module's name must be bound here: importing the submodule (anywhere) sets the package
# attribute to the module, which would hide the face's lazy lookup of the function.
from engine.retrieval.text_vectors import text_vectors
from engine.retrieval.types import Hit

_LAZY = {
    "BEST_PIPELINE": "pipeline",
    "BM25Index": "bm25",
    "DEV_QUESTIONS": "evaluation",
    "METHODS": "pipeline",
    "PIPELINES": "pipeline",
    "POOLINGS": "sentence_embeddings",
    "SearchIndex": "index",
    "SearchResult": "types",
    "TEST_QUESTIONS": "evaluation",
    "TrainConfig": "korean_dense",
    "Word2VecConfig": "word2vec",
    "bm25_scores": "bm25",
    "build_index": "build",
    "check_query": "query",
    "evaluate_pipelines": "rerank",
    "finetune_mnr": "embedding_training",
    "fusion_study": "studies",
    "get_tokenizer": "tokenizers",
    "hit_rates": "embedding_training",
    "index_built": "persistence",
    "kiwi": "tokenizers",
    "lm_mean_pooled": "embedding_training",
    "load_index": "persistence",
    "load_questions": "evaluation",
    "load_reranker": "rerank",
    "nearest_morphemes": "tokenizers",
    "pooled_embeddings": "sentence_embeddings",
    "synthetic_text_pairs": "korean_dense",
    "train_encoder": "korean_dense",
    "train_reranker": "rerank",
    "train_word2vec": "word2vec",
    # what pages 10 and 11 show, one call each
    "bm25_ranking": "views",
    "constitution_bm25": "views",
    "dev_and_test_metrics": "views",
    "lm_similarity": "views",
    "mnr_experiment": "views",
    "word_map": "views",
    "zero_shot_comparison": "views",
}
__all__ = [
    "BEST_PIPELINE",
    "DEV_QUESTIONS",
    "METHODS",
    "PIPELINES",
    "POOLINGS",
    "TEST_QUESTIONS",
    "BM25Index",
    "Hit",
    "SearchIndex",
    "SearchResult",
    "TrainConfig",
    "Word2VecConfig",
    "bm25_scores",
    "build_index",
    "check_query",
    "evaluate_pipelines",
    "finetune_mnr",
    "fusion_study",
    "get_tokenizer",
    "hit_rates",
    "index_built",
    "kiwi",
    "lm_mean_pooled",
    "load_index",
    "load_questions",
    "load_reranker",
    "nearest_morphemes",
    "pooled_embeddings",
    "synthetic_text_pairs",
    "text_vectors",
    "train_encoder",
    "train_reranker",
    "train_word2vec",
]
__getattr__ = lazy_face(__name__, globals(), _LAZY)
