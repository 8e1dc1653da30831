"""Chapter 3's results as plain numbers for the page: dataset examples, the two loops side by side, predictions.

Pure functions of what `hf_basics` and `classifier` return (no training here), so a page only draws them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.training.callbacks import FINISHED


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    article: str


def dataset_examples(overview, n: int = 6) -> list[Example]:
    """The first `n` training paragraphs with their label names."""
    train = overview.dataset["train"]
    return [
        Example(text, overview.labels[label], article)
        for text, label, article in zip(train["text"][:n], train["label"][:n], train["article"][:n], strict=True)
    ]


def first_texts(overview, n: int = 3) -> list[str]:
    """The first `n` training texts: the batch the padding demo tokenizes."""
    return [overview.dataset["train"]["text"][i] for i in range(n)]


@dataclass(frozen=True)
class RunSummary:
    label: str
    status: str
    steps: int
    accuracy: float | None
    seconds: float


@dataclass(frozen=True)
class LoopSummary:
    runs: list[RunSummary]
    majority: float  # accuracy of always answering the most common test label
    max_loss_gap: float | None  # None when the two runs share no finite step
    same_losses: bool  # the gap is below 1e-5: the two loops computed the same thing
    hidden: int
    layers: int
    params: int
    device: str
    status: str = FINISHED  # the first run that did not finish decides (cancelled or diverged)
    message: str = ""


def loop_status(res) -> tuple[str, str]:
    """(status, message) of a LoopComparison: the first of its two runs that did not finish, else the loop's."""
    worst = next((log for log in (res.trainer, res.loop) if log.status != FINISHED), res.loop)
    return worst.status, worst.message


def loop_summary(res) -> LoopSummary:
    """The table and captions under the two training curves."""
    runs = [
        RunSummary(
            log.label,
            log.status,
            len(log.train_rows()),
            log.last("accuracy"),
            round(res.seconds.get(log.label, 0.0), 1),
        )
        for log in (res.trainer, res.loop)
    ]
    test_labels = list(res.prep.dataset["test"]["label"])
    majority = max(test_labels.count(i) for i in set(test_labels)) / len(test_labels)
    gap = None if math.isnan(res.max_loss_gap) else res.max_loss_gap
    params = list(res.loop_model.parameters())
    status, message = loop_status(res)
    return LoopSummary(
        runs,
        majority,
        gap,
        gap is not None and gap < 1e-5,
        res.cfg.hidden,
        res.cfg.layers,
        sum(p.numel() for p in params),
        str(params[0].device),
        status,
        message,
    )


@dataclass(frozen=True)
class Prediction:
    text: str
    top: list[tuple[str, float]]  # (label, score), best first


def text_lines(text: str, limit: int = 20) -> list[str]:
    """The non-empty lines of a text box, stripped, at most `limit`."""
    return [x.strip() for x in text.splitlines() if x.strip()][:limit]


def classify_lines(model, tokenizer, lines: list[str]) -> list[Prediction]:
    """`classify` on each line: the pipeline's top labels and scores."""
    from engine.core.textinput import InputError
    from engine.training.classifier import classify

    if not lines:
        raise InputError("training.no_text")
    preds = classify(model, tokenizer, lines)
    return [Prediction(line, [(p["label"], p["score"]) for p in top]) for line, top in zip(lines, preds, strict=True)]


@dataclass(frozen=True)
class RoundTrip:
    files: list[str]
    kb: float
    max_abs_diff: float
    ok: bool  # same labels and logits within 1e-5


def roundtrip_report(model, tokenizer, lines: list[str]) -> RoundTrip:
    """save_pretrained -> from_pretrained, compared on `lines`."""
    from engine.training.classifier import roundtrip_check

    check = roundtrip_check(model, tokenizer, lines)
    ok = check["same_labels"] and check["max_abs_diff"] < 1e-5
    return RoundTrip(check["files"], check["bytes"] / 1024, check["max_abs_diff"], ok)


# The page's default text for the pipeline section (ui/strings/03_huggingface.yaml ch03.default_text, both languages).
EXAMPLE_LINES = ("대통령은 국무회의의 의장이 된다", "모든 국민은 교육을 받을 권리를 가진다", "국회는 법률안을 심의한다")
CURVE_KEYS = ("run", "kind", "step", "epoch", "loss", "accuracy")


def _finite(value):
    return round(value, 6) if isinstance(value, float) and math.isfinite(value) else value


def shipped_loops(res, lines: tuple[str, ...] = EXAMPLE_LINES) -> dict:
    """A finished comparison as the plain JSON the page ships (assets/precomputed/ch03_loops.json): the curve rows,
    the summary under them and the loop model's predictions on `lines` (a shipped file has no model to run)."""
    from dataclasses import asdict

    rows = [{k: _finite(r[k]) for k in CURVE_KEYS if k in r} for log in (res.trainer, res.loop) for r in log.rows]
    summary = asdict(loop_summary(res))
    summary["max_loss_gap"] = _finite(summary["max_loss_gap"])
    preds = classify_lines(res.loop_model, res.prep.tokenizer, list(lines))
    return {"rows": rows, "summary": summary, "predictions": [asdict(p) for p in preds]}


@dataclass(frozen=True)
class ShippedLoops:
    rows: list[dict]
    summary: LoopSummary
    predictions: list[Prediction]


def loops_from_shipped(data: dict) -> ShippedLoops:
    """`shipped_loops`' JSON back as the records the page draws."""
    s = dict(data["summary"])
    s["runs"] = [RunSummary(**r) for r in s["runs"]]
    preds = [Prediction(p["text"], [tuple(x) for x in p["top"]]) for p in data["predictions"]]
    return ShippedLoops(data["rows"], LoopSummary(**s), preds)
