"""Chapter 6: a Text2SQL sLLM — real databases, safe read-only execution, execution accuracy and the LLM judge's
blind spots, prompt strategies, synthetic data and LoRA fine-tuning. In reading order:

- `databases`: Chinook built into SQLite from the real data (canonical schema), any SQLite file or upload, read-only.
- `executor`: run one SELECT read-only, with time and row limits; writes, ATTACH and PRAGMA are refused.
- `questions`: hand-written Korean questions over Chinook (train / dev / test, Spider's difficulty levels).
- `spider`: Spider dev (1,034 English questions, 20 schemas) on distilled SQLite databases.
- `prompts`: the book's prompt format, and reading SQL out of an answer.
- `strategies`: zero-shot, few-shot retrieval, schema linking, self-consistency, execution-guided repair.
- `evaluation`: execution accuracy, Spider's exact-set match, the LLM judge and where it misleads.
- `synthetic`: question/SQL pairs from templates and from the model, filtered by execution.
- `finetune`: LoRA SFT on the pairs, base vs tuned.
- `pipeline`: a strategy over a question set, scored.
"""

# The face: what pages and other areas use, and where it lives (imported on first use).
from engine.core.faces import lazy_face

_LAZY = {
    # databases and execution
    "Database": "databases",
    "MAX_UPLOAD_BYTES": "databases",
    "chinook": "databases",
    "from_path": "databases",
    "open_upload": "databases",
    "CHINOOK_ROWS": "databases",
    "row_counts": "databases",
    "ERROR_CODES": "executor",
    "ExecResult": "executor",
    "run_sql": "executor",
    # data
    "Question": "questions",
    "SPLITS": "questions",
    "DIFFICULTIES": "questions",
    "chinook_questions": "questions",
    "SpiderExample": "spider",
    "spider_database": "spider",
    "spider_db_ids": "spider",
    "spider_dev": "spider",
    "SyntheticPair": "synthetic",
    "Dropped": "synthetic",
    "filter_pairs": "synthetic",
    "shipped_synthetic": "synthetic",
    "template_pairs": "synthetic",
    "model_pairs": "synthetic",
    "model_prompt": "synthetic",
    "drop_counts": "synthetic",
    "held_out_sql": "synthetic",
    # prompts and strategies
    "Example": "prompts",
    "JUDGE_PROMPT": "prompts",
    "extract_sql": "prompts",
    "make_messages": "prompts",
    "make_prompt": "prompts",
    "DEFAULT_STRATEGY": "strategies",
    "MAX_QUESTION_CHARS": "strategies",
    "Prediction": "strategies",
    "STRATEGIES": "strategies",
    "Strategy": "strategies",
    "POOLS": "strategies",
    "check_question": "strategies",
    "example_pool": "strategies",
    "link_tables": "strategies",
    "predict": "strategies",
    "retrieve_examples": "strategies",
    # evaluation
    "EvalReport": "evaluation",
    "EvalRow": "evaluation",
    "JudgeVerdict": "evaluation",
    "evaluate": "evaluation",
    "exact_set_match": "evaluation",
    "execution_match": "evaluation",
    "judge": "evaluation",
    "gold_is_ordered": "evaluation",
    "hardness": "evaluation",
    "spider_parses": "evaluation",
    # fine-tuning
    "FinetuneResult": "finetune",
    "FinetuneSettings": "finetune",
    "generate_sql": "finetune",
    "linked_ddl": "finetune",
    "load_tuned": "finetune",
    "shipped_adapter": "finetune",
    "train_lora": "finetune",
    "SETS": "pipeline",
    "evaluate_set": "pipeline",
}
__all__ = sorted(_LAZY)
__getattr__ = lazy_face(__name__, globals(), _LAZY)
