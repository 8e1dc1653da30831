"""The Hands-On capstone: a CSV of Korean question/answer pairs -> retrieval baseline -> LoRA SFT -> merge ->
GGUF -> 4-bit -> a FastAPI REST API over llama.cpp, every step measured (engine/capstone/pipeline.py)."""

# The face: what pages and other areas use, and where it lives (imported on first use: fastapi, peft and llama_cpp
# load only when a page needs them).
from engine.core.faces import lazy_face

_LAZY: dict[str, str] = {
    "SAMPLE": "qa_csv",
    "QAPair": "qa_csv",
    "QASet": "qa_csv",
    "read_qa_csv": "qa_csv",
    "escape_cell": "qa_csv",
    "char_f1": "scoring",
    "mean_f1": "scoring",
    "BaselineResult": "baseline",
    "retrieval_baseline": "baseline",
    "SftConfig": "sft",
    "MAX_QUESTION_CHARS": "api",
    "ApiLimits": "api",
    "create_app": "api",
    "CapstoneConfig": "pipeline",
    "Step": "pipeline",
    "run_capstone": "pipeline",
    "start_api": "pipeline",
}
__all__ = sorted(_LAZY)

__getattr__ = lazy_face(__name__, globals(), _LAZY)
