"""Chapter 4's shipped results: every section's demo run once with the page's default settings, so no section opens
empty (assets/precomputed/ch04_<section>.json, read with `engine.core.load_precomputed`).

`python -m engine align-precompute` makes them all (`--only sft,race` some); each file records that command. The
numbers are the real engine's (`sft`, `reward`, `runs` through `report`), reduced to plain JSON: the curve rows,
the tables and the captions' numbers. The page draws a shipped result exactly like one of its own runs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from engine.alignment.report import RunRow
from engine.core.progress import ProgressFn, null_progress

SECTIONS = ("sft", "reward", "race", "hacking", "beta")
# The page's defaults (pages/04_alignment.py): a shipped result shows what the default click would give.
RACE = {"methods": ("ppo", "dpo"), "steps": 60, "seed": 0, "beta": 0.3}
HACKING = {"steps": 60, "seed": 0, "beta": 0.5}
SWEEP = {"betas": (0.03, 0.1, 0.3, 1.0), "steps": 100}
BON_N = 4
# The best-of-n prompts the page offers by default, Korean page first (ui/strings/04_alignment.yaml ch04.bon_default).
BON_PROMPTS = ("건강을 지키는 방법 하나만 알려 주세요.", "Give me one tip for staying healthy.")
ROW_KEYS = ("run", "method", "kind", "step", "epoch", "loss", "reward_mean", "judge_mean", "kl", "margin", "seconds")


def name(section: str) -> str:
    return f"ch04_{section}"


def _plain(value):
    """JSON without NaN (not valid JSON): a missing number is None."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def curve_rows(rows: list[dict], keys: tuple[str, ...] = ROW_KEYS) -> list[dict]:
    """The numbers a live curve draws from each row (examples and optimizer details left out)."""
    return [_plain({k: r[k] for k in keys if k in r}) for r in rows]


def run_rows(data: list[dict]) -> list[RunRow]:
    """A shipped summary table back as `report.RunRow` records (what the page's table draws)."""
    return [RunRow(**d) for d in data]


def sft_data(progress: ProgressFn = null_progress) -> dict:
    """SFT with the page's defaults: the loss curve, LoRA's share of the weights and answers before and after."""
    from engine.alignment.report import sft_report
    from engine.alignment.sft import SFTSettings, train_sft_chat

    res = train_sft_chat(SFTSettings(), progress=progress)
    rep = sft_report(res)
    return _plain(
        {
            "rows": curve_rows(res.log.rows),
            "trainable": rep.trainable,
            "total": rep.total,
            "percent": rep.percent,
            "seconds": rep.seconds,
            "device": rep.device,
            "answers": [asdict(a) for a in rep.answers],
        }
    )


def reward_data(progress: ProgressFn = null_progress) -> dict:
    """The reward model on the shipped pairs (loss curve, pair accuracy), best-of-n with it on the default
    prompts, and the toy's best-of-n curve."""
    from engine.alignment.report import toy_best_of_n
    from engine.alignment.reward import best_of_n, load_preferences, train_reward_model
    from engine.models.loading import load_causal_lm

    rm = train_reward_model(load_preferences(), progress=progress)
    lm = load_causal_lm("chat", progress)
    bon = [
        {"prompt": p, "n": BON_N, "rows": best_of_n(lm.model, lm.tokenizer, rm.model, rm.tokenizer, p, BON_N)}
        for p in BON_PROMPTS
    ]
    return _plain(
        {
            "rows": curve_rows(rm.log.rows),
            "train_accuracy": rm.train_accuracy,
            "test_accuracy": rm.test_accuracy,
            "test_pairs": len(rm.test_pairs),
            "seconds": rm.log.seconds,
            "best_of_n": bon,
            "toy_best_of_n": [asdict(p) for p in toy_best_of_n()],
        }
    )


def runs_data(res, reference: bool = False) -> dict:
    """A finished `report.RunSet` as plain JSON: the curve rows of every run and what `runs_view` draws."""
    view = runs_view(res, reference)
    rows = [r for log in res.logs.values() for r in log.rows]
    return _plain(
        {
            "rows": curve_rows(rows),
            "table": [asdict(r) for r in view.table],
            "reference": asdict(view.reference) if view.reference else None,
            "examples": view.examples,
            "verdict": asdict(view.verdict) if view.verdict else None,
        }
    )


def race_data(progress: ProgressFn = null_progress) -> dict:
    """PPO vs DPO with the page's defaults: curves, the summary table, the reference and the last answers."""
    from engine.alignment.report import race_runs

    return runs_data(race_runs(RACE["methods"], RACE["steps"], RACE["seed"], RACE["beta"], progress), reference=True)


def hacking_data(progress: ProgressFn = null_progress) -> dict:
    """PPO with the KL penalty off and at the page's default β: curves, the summary table and the verdict."""
    from engine.alignment.report import hacking_runs

    return runs_data(hacking_runs(HACKING["steps"], HACKING["seed"], HACKING["beta"], progress))


def beta_data(progress: ProgressFn = null_progress) -> dict:
    """DPO's β sweep with the page's default β values: the checkpoint points (and rows) of every β."""
    from engine.alignment.report import sweep_runs

    res = sweep_runs(SWEEP["betas"], SWEEP["steps"], progress)
    points = curve_rows([{**p, "kind": "eval"} for p in res.points], (*ROW_KEYS, "beta"))
    return {"rows": points, "points": points}


MAKERS = {"sft": sft_data, "reward": reward_data, "race": race_data, "hacking": hacking_data, "beta": beta_data}


def make(section: str, progress: ProgressFn = null_progress) -> dict:
    """One section's shipped data, computed now with the real engine."""
    return MAKERS[section](progress)


# --- reading a shipped file back as the records the page draws --------------------------------------------------
@dataclass(frozen=True)
class RewardShown:
    train_accuracy: float
    test_accuracy: float | None
    test_pairs: int
    seconds: float
    best_of_n: dict[str, list[dict]]  # prompt -> best_of_n rows (rank, reward, answer, best)
    toy_best_of_n: list  # report.BonPoint


@dataclass(frozen=True)
class RunsShown:
    table: list[RunRow]
    reference: object | None  # report.ToyReference (the race) or None
    examples: list[tuple[str, list[str]]]
    verdict: object | None  # report.HackingVerdict (reward hacking) or None


def runs_view(res, reference: bool = False) -> RunsShown:
    """A finished `report.RunSet` (a run of the learner's own) as the same record as a shipped one."""
    from engine.alignment.report import hacking_verdict, last_examples, run_table, toy_reference

    ref = toy_reference(res.seed) if reference else None
    return RunsShown(run_table(res.logs), ref, last_examples(res.logs), hacking_verdict(res.logs))


def sft_shown(data: dict):
    from engine.alignment.report import SFTAnswer, SFTReport

    answers = [SFTAnswer(**a) for a in data["answers"]]
    return SFTReport(data["trainable"], data["total"], data["percent"], data["seconds"], data["device"], answers)


def reward_shown(data: dict) -> RewardShown:
    from engine.alignment.report import BonPoint

    bon = {b["prompt"]: b["rows"] for b in data["best_of_n"]}
    toy = [BonPoint(**p) for p in data["toy_best_of_n"]]
    return RewardShown(data["train_accuracy"], data["test_accuracy"], data["test_pairs"], data["seconds"], bon, toy)


def runs_shown(data: dict) -> RunsShown:
    from engine.alignment.report import HackingVerdict, ToyReference

    ref = ToyReference(**data["reference"]) if data.get("reference") else None
    verdict = HackingVerdict(**data["verdict"]) if data.get("verdict") else None
    examples = [(name, list(ex)) for name, ex in data.get("examples", [])]
    return RunsShown(run_rows(data["table"]), ref, examples, verdict)
