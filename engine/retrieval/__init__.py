"""Retrieval over small Korean corpora (chapters 10–12): BM25, dense, hybrid fusion, reranking and evaluation.

Every retriever answers `search(query, k) -> list[Hit]` and `scores(query) -> np.ndarray` (one score per doc, in
corpus order), so fusion and evaluation treat them alike.
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face
from engine.retrieval.types import Hit

_LAZY = {
    "BM25Index": "bm25",
    "DEV_QUESTIONS": "evaluation",
    "METHODS": "search",
    "POOLINGS": "sentence_embeddings",
    "TEST_QUESTIONS": "evaluation",
    "TrainConfig": "korean_dense",
    "Word2VecConfig": "word2vec",
    "bm25_scores": "bm25",
    "build_index": "search",
    "check_query": "search",
    "evaluate_pipelines": "rerank",
    "finetune_mnr": "embedding_training",
    "fusion_study": "search",
    "get_tokenizer": "tokenizers",
    "hit_rates": "embedding_training",
    "index_built": "search",
    "lm_mean_pooled": "embedding_training",
    "load_index": "search",
    "load_questions": "evaluation",
    "load_reranker": "rerank",
    "nearest_morphemes": "tokenizers",
    "pooled_embeddings": "sentence_embeddings",
    "synthetic_text_pairs": "korean_dense",
    "text_vectors": "text_vectors",
    "train_encoder": "korean_dense",
    "train_reranker": "rerank",
    "train_word2vec": "word2vec",
}
__all__ = [
    "DEV_QUESTIONS",
    "METHODS",
    "POOLINGS",
    "TEST_QUESTIONS",
    "BM25Index",
    "Hit",
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
