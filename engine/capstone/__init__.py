"""The Hands-On capstone: a CSV of Korean question/answer pairs -> retrieval baseline -> LoRA SFT -> merge ->
GGUF -> 4-bit -> a FastAPI REST API over llama.cpp, every step measured (engine/capstone/pipeline.py)."""

from engine.capstone.baseline import BaselineResult, retrieval_baseline
from engine.capstone.qa_csv import SAMPLE, QAPair, QASet, escape_cell, read_qa_csv
from engine.capstone.scoring import char_f1, mean_f1

__all__ = [
    "SAMPLE",
    "BaselineResult",
    "QAPair",
    "QASet",
    "char_f1",
    "escape_cell",
    "mean_f1",
    "read_qa_csv",
    "retrieval_baseline",
]
