"""Chapter 9: a Korean RAG application on LlamaIndex — documents, a vector database, the project's best retriever,
the `instruct` model, an LLM cache, rails, and MLflow tracing.

- `documents`: passages from the Constitution or an upload (txt/md/pdf), with limits.
- `vector_db`: Chroma (persistent, HNSW) under LlamaIndex, embedded with the Korean encoder; store comparison.
- `retrievers`: LlamaIndex retrievers — the best Korean pipeline, and plain dense search in Chroma.
- `llm`, `prompts`: the `instruct` model as a LlamaIndex LLM; the prompt, citations and refusal.
- `cache`: exact + semantic answer cache with a Korean argument-structure guard.
- `rails`: input (injection, PII, off-topic), passage (indirect injection) and output (grounded, schema) rails.
- `tracing`: every call traced into a local MLflow store (`mlflow ui`).
- `pipeline`: all of it in order, streamed, one trace per question.
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face

_LAZY = {
    # pipeline
    "Corpus": "pipeline",
    "RagAnswer": "pipeline",
    "RagRun": "pipeline",
    "RagSettings": "pipeline",
    "MAX_QUESTION_CHARS": "pipeline",
    "MODELS": "pipeline",
    "TOP_K_RANGE": "pipeline",
    "answer": "pipeline",
    "answer_without_rag": "pipeline",
    "ask": "pipeline",
    "check_question": "pipeline",
    "constitution": "pipeline",
    "query_engine": "pipeline",
    "upload_corpus": "pipeline",
    "shared_cache": "pipeline",
    # documents
    "Passage": "documents",
    "MAX_UPLOAD_BYTES": "documents",
    "constitution_passages": "documents",
    "parse_upload": "documents",
    "to_documents": "documents",
    # vector database and retrievers
    "KoreanEmbedding": "vector_db",
    "StoreComparison": "vector_db",
    "chroma_index": "vector_db",
    "compare_stores": "vector_db",
    "RETRIEVERS": "retrievers",
    "make_retriever": "retrievers",
    # prompts
    "REFUSAL": "prompts",
    "citations": "prompts",
    "qa_template": "prompts",
    # cache
    "CacheHit": "cache",
    "CachePair": "cache",
    "score_pairs": "cache",
    "CacheMetrics": "cache",
    "CacheStats": "cache",
    "CacheVerdict": "cache",
    "DEFAULT_THRESHOLD": "cache",
    "LLMCache": "cache",
    "THRESHOLD_RANGE": "cache",
    "cache_scope": "cache",
    "evaluate_cache": "cache",
    "guard_check": "cache",
    "load_cache_pairs": "cache",
    "threshold_sweep": "cache",
    # rails
    "InputCheck": "rails",
    "RAILS": "rails",
    "RailMetrics": "rails",
    "RailVerdict": "rails",
    "StructuredAnswer": "rails",
    "check_input": "rails",
    "check_output": "rails",
    "check_passages": "rails",
    "evaluate_rails": "rails",
    "mask_pii": "rails",
    "validate_structured": "rails",
    # tracing
    "SpanRow": "tracing",
    "TraceSummary": "tracing",
    "mlflow_ui_command": "tracing",
    "recent_traces": "tracing",
    "trace_spans": "tracing",
    "tracking_uri": "tracing",
    # held-out questions
    "HeldoutQuestion": "heldout",
    "load_heldout": "heldout",
    "phrase_found": "heldout",
}
__all__ = sorted(_LAZY)
__getattr__ = lazy_face(__name__, globals(), _LAZY)
