"""What each chapter's page training run records besides its rows (book 13.1): the version of the data it trains
on, its end status, final figures and small artifacts. The pages hand these to `tracking.tracked_work` (through
ui.tracking.Track), so a run from a page and one from the command's `--track` hold the same things.

| chapter | run | dataset | artifact |
|---|---|---|---|
| ch03 | the classifier, Trainer vs plain loop (a child each) | constitution-chapters (train, eval) | summary.json |
| ch04 | SFT / reward model / chat DPO | instruction or preference pairs as edited | the SFT LoRA adapter |
| ch04 | toy PPO/DPO race, hacking, β sweep (a child each) | toy-preferences | — |
| ch05 | full / LoRA / QLoRA steps (a child each) | dummy-batch | each LoRA/QLoRA adapter |
| ch06 | Text2SQL LoRA SFT | chinook_synthetic (in ui.text2sql: text2sql imports llmops) | the adapter |
| ch11 | MNR fine-tuning of MiniLM | constitution-mnr-pairs | summary.json (the model, 90 MB, is not copied) |
"""

from __future__ import annotations

from typing import Any

from engine.llmops.tracking import DatasetVersion, TrackedRun, current_run, dataset_version, log_adapter

# --- ch.3 ---------------------------------------------------------------------------------------------------------


def classifier_statuses(result) -> dict[str, str]:
    """{"Trainer": status, "PyTorch loop": status} of a LoopComparison (one child run each)."""
    return {log.label: log.status for log in (result.trainer, result.loop)}


def classifier_record(run: TrackedRun, result) -> None:
    """The data version (train and test paragraphs), the final accuracies and a summary.json."""
    source = (
        f"engine.training.hf_basics.build_dataset(min_per_class={result.cfg.min_per_class}, seed={result.cfg.seed})"
    )
    for split, context in (("train", "train"), ("test", "eval")):
        rows = ({k: r[k] for k in ("text", "label")} for r in result.prep.raw[split])
        run.log_dataset(dataset_version("constitution-chapters", rows, source, context))
    final = {"accuracy_trainer": result.final_accuracy("trainer"), "accuracy_loop": result.final_accuracy("loop")}
    run.log_metrics({k: v for k, v in final.items() if v is not None} | {"max_loss_gap": result.max_loss_gap}, 0)
    run.log_dict({"labels": result.prep.labels, **final, "seconds": result.seconds}, "summary.json")


# --- ch.4 ---------------------------------------------------------------------------------------------------------


def preference_pairs(pairs: list[dict], source: str = "pages/04_alignment.py (the pairs as edited)") -> DatasetVersion:
    """The preference pairs a reward model or a chat DPO run trains on ({prompt, chosen, rejected})."""
    return dataset_version("preferences", pairs, source)


def instruction_pairs() -> DatasetVersion:
    """The shipped instruction pairs SFT trains on."""
    from engine.alignment import load_instructions

    return dataset_version("instructions", load_instructions(), "engine.alignment.sft.load_instructions()")


def save_adapter(run: TrackedRun, result: Any) -> None:
    """`result.model`'s LoRA adapter as the artifact `adapter` (nothing for a model without one)."""
    log_adapter(getattr(result, "model", None), run=run)


# --- ch.5 ---------------------------------------------------------------------------------------------------------


def modes_batch_version(source: str) -> DatasetVersion:
    """The dummy batch `train_modes` trains every mode on."""
    from engine.training import modes_batch

    ids = modes_batch(source)["input_ids"]
    return dataset_version("dummy-batch", ids, f"engine.training.efficient_report.modes_batch({source!r})")


# --- ch.11 --------------------------------------------------------------------------------------------------------


def mnr_pairs(docs, pairs: list[tuple[str, int]], seed: int = 0) -> DatasetVersion:
    """The synthetic (question, article) pairs MNR trains on, by article id."""
    rows = ((q, docs[d].doc_id) for q, d in pairs)
    source = f"engine.retrieval.korean_dense.synthetic_text_pairs(constitution, n={len(pairs)}, seed={seed})"
    return dataset_version("constitution-mnr-pairs", rows, source)


def log_mnr_pairs(docs, pairs: list[tuple[str, int]]) -> None:
    """`mnr_experiment`'s on_pairs: the pairs' version into the tracked run (nothing outside one)."""
    run = current_run()
    if run is not None:
        run.log_dataset(mnr_pairs(docs, pairs))


def mnr_record(run: TrackedRun, result) -> None:
    """The trainer's logged losses (it reports them after the run), dev hit rates before and after, a summary."""
    for row in result.losses:
        run.log_row(row)
    run.log_metrics({f"dev_{k}_before": v for k, v in result.before.items()}, 0)
    run.log_metrics({f"dev_{k}": v for k, v in result.after.items()}, result.steps)
    run.log_dict(
        {"before": result.before, "after": result.after, "steps": result.steps, "pairs": result.pairs}, "summary.json"
    )


__all__ = [
    "classifier_record",
    "classifier_statuses",
    "instruction_pairs",
    "log_mnr_pairs",
    "mnr_pairs",
    "mnr_record",
    "modes_batch_version",
    "preference_pairs",
    "save_adapter",
]
