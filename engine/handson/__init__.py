"""Hands-On Large Language Models (Alammar & Grootendorst): the topics the Korean book lacks, run offline.

- `classification` (ch.4): one Korean task (Constitution paragraph -> chapter) solved five ways — an encoder
  trained from scratch, the pretrained Gemma-3-270M fine-tuned with LoRA, embeddings + logistic regression,
  zero-shot with label embeddings, and a generative model constrained to the label set — scored in one table
  (`python -m engine classify-compare --json`).
- `topics` (ch.5): clustering and topic modelling of Korean text with BERTopic — Korean embeddings -> UMAP ->
  HDBSCAN -> c-TF-IDF over Kiwi morphemes, re-ranked by KeyBERTInspired and MMR (`python -m engine topics --json`);
  `ctfidf` is c-TF-IDF from scratch, equal to BERTopic's `ClassTfidfTransformer`.
- `prompting` (ch.6): the prompt studio — a chat template token by token, and zero-/few-shot, chain-of-thought,
  self-consistency, tree-of-thought (a search) and structured output with and without a grammar, measured on Korean
  word problems (`python -m engine prompt-compare --json`).
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face

_LAZY: dict[str, str] = {
    "METHODS": "classification",
    "MAX_GENERATIVE": "classification",
    "MAX_TEXT_CHARS": "classification",
    "CompareConfig": "classification",
    "Comparison": "classification",
    "MethodResult": "classification",
    "Classifiers": "classification",
    "Finetuned": "classification",
    "train_finetuned": "classification",
    "finetuned_predict": "classification",
    "TextLabel": "classification",
    "compare_methods": "classification",
    "train_classifiers": "classification",
    "classify_text": "classification",
    "check_text": "classification",
    "parse_methods": "classification",
    "load_split": "classification",
    "parse_label": "classification",
    "scores": "classification",
    "confusion": "classification",
    # ch.5 topics
    "CORPORA": "topics",
    "TopicConfig": "topics",
    "TopicRun": "topics",
    "run_topics": "topics",
    "load_topic_corpus": "topics",
    "split_documents": "topics",
    "check_documents": "topics",
    "kiwi_topic_tokens": "topics",
    "glued": "topics",
    "ctfidf_comparison": "topics",
    "c_tf_idf": "ctfidf",
    "idf_of": "ctfidf",
    "top_words": "ctfidf",
    # ch.6 the prompt studio
    "TECHNIQUES": "prompting",
    "SYSTEM": "prompting",
    "problems": "prompting",
    "messages_for": "prompting",
    "render_template": "prompting",
    "run_technique": "prompting",
    "compare_techniques": "prompting",
    "server_chat": "prompting",
    "server_structured": "prompting",
}
__all__ = sorted(_LAZY)

__getattr__ = lazy_face(__name__, globals(), _LAZY)
