"""Chapter 4 for the page: the toy runs with the page's settings, and results as plain numbers to draw.

`race_runs`, `hacking_runs` and `sweep_runs` call `runs` and return one object with a `status` and `message` (the
first run that did not finish decides); the rest are pure functions of what `sft`, `reward` and `runs` return.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.core.progress import ProgressFn, null_progress
from engine.training.callbacks import FINISHED, RowFn, RunLog, StopFn


@dataclass(frozen=True)
class TemplateGroup:
    text: str  # the characters these tokens form (newlines as ⏎): a Hangul syllable cut into byte tokens is whole
    hex: str  # the raw UTF-8 bytes of byte pieces, "EC 95 88"; "" for whole tokens
    ids: tuple[int, ...]
    trained: bool  # the SFT loss is computed on these tokens (the answer)


@dataclass(frozen=True)
class TemplateView:
    text: str
    tokens: list  # TemplateToken: piece, token_id, trained
    total: int
    trained: int  # the tokens the SFT loss is computed on (the response)
    groups: list[TemplateGroup] = field(default_factory=list)  # the tokens as a learner reads them, never `�`


def template_view(tokenizer, instruction: str, response: str) -> TemplateView:
    """The chat template of one pair with its loss mask, and how many tokens are trained. SmolLM2's byte-level
    tokenizer cuts most Hangul syllables into 2-3 byte tokens, each `�` alone: `groups` joins them into the
    character they form (engine.lm.group_tokens), with the raw bytes beside it."""
    from engine.alignment.sft import chat_template_view
    from engine.lm.token_display import group_tokens

    text, tokens = chat_template_view(tokenizer, instruction, response)
    groups = [
        TemplateGroup(g.text.replace("\n", "⏎") or "∅", g.hex, g.ids, all(tokens[i].trained for i in g.positions))
        for g in group_tokens(tokenizer, [x.token_id for x in tokens])
    ]
    return TemplateView(text, tokens, len(tokens), sum(x.trained for x in tokens), groups)


@dataclass(frozen=True)
class SFTAnswer:
    instruction: str
    before: str
    after: str


@dataclass(frozen=True)
class SFTReport:
    trainable: int
    total: int
    percent: float  # trainable share of all weights, in %
    seconds: float
    device: str
    answers: list[SFTAnswer]


def sft_report(res) -> SFTReport:
    """LoRA's share of the weights, where it ran, and each instruction's answer before and after."""
    answers = [SFTAnswer(q, res.before.get(q, ""), res.after.get(q, "")) for q in res.before]
    device = str(next(res.model.parameters()).device)
    pct = 100 * res.trainable_params / res.total_params
    return SFTReport(res.trainable_params, res.total_params, pct, res.log.seconds, device, answers)


@dataclass(frozen=True)
class RankedAnswer:
    rank: int
    reward: float  # rounded to 3 decimals
    best: bool
    answer: str


def ranked_answers(rows: list[dict]) -> list[RankedAnswer]:
    """`reward.best_of_n`'s rows as records."""
    return [RankedAnswer(r["rank"], round(r["reward"], 3), bool(r["best"]), r["answer"]) for r in rows]


@dataclass(frozen=True)
class BonPoint:
    n: int
    reward_mean: float
    judge_mean: float
    kl_bound: float


def toy_best_of_n(seed: int = 0) -> list[BonPoint]:
    """Best-of-n on the toy (`runs.best_of_n`): proxy reward, judge and the KL bound for each n."""
    from engine.alignment.runs import best_of_n

    return [BonPoint(r["n"], r["reward_mean"], r["judge_mean"], r["kl_bound"]) for r in best_of_n(seed=seed)]


def overall_status(logs: dict[str, RunLog]) -> tuple[str, str]:
    """(status, message) of several runs: the first that did not finish, else finished."""
    for log in logs.values():
        if log.status != FINISHED:
            return log.status, log.message
    return FINISHED, ""


@dataclass(frozen=True)
class RunRow:
    run: str
    status: str
    steps: int
    reward_first: float | None
    reward_last: float | None
    judge_first: float | None
    judge_last: float | None
    kl_last: float | None
    seconds_per_step: float | None


def _r3(x):
    return None if x is None else round(x, 3)


def run_table(logs: dict[str, RunLog]) -> list[RunRow]:
    """`runs.summary` as records, rounded to 3 decimals: first vs last fifth of reward and judge, KL, s/step."""
    from engine.alignment.runs import summary

    return [
        RunRow(
            s["run"],
            s["status"],
            s["steps"],
            *(_r3(s.get(k)) for k in ("reward_first", "reward_last", "judge_first", "judge_last", "kl_last")),
            _r3(s.get("seconds_per_step")),
        )
        for s in summary(logs)
    ]


def last_examples(logs: dict[str, RunLog]) -> list[tuple[str, list[str]]]:
    """Each run's sample answers at its last step (runs without steps are left out)."""
    out = []
    for name, log in logs.items():
        rows = log.train_rows()
        if rows:
            out.append((name, list(rows[-1].get("examples", []))))
    return out


@dataclass(frozen=True)
class HackingVerdict:
    reward_first: float
    reward_last: float
    judge_first: float
    judge_last: float


def hacking_verdict(logs: dict[str, RunLog]) -> HackingVerdict | None:
    """The first run (KL off): its proxy reward and judge, first vs last fifth; None before any step."""
    from engine.alignment.runs import summary

    off = next(iter(summary(logs)), None)
    if not off or not off.get("steps"):
        return None
    return HackingVerdict(off["reward_first"], off["reward_last"], off["judge_first"], off["judge_last"])


def eval_points(rows: list[dict]) -> list[dict]:
    """The checkpoint rows (kind="eval") among a run's rows: what a stopped β sweep still has to show."""
    return [r for r in rows if r.get("kind") == "eval"]


@dataclass(frozen=True)
class ToyReference:
    reward: float
    judge: float
    pairs: int
    seconds: float


def toy_reference(seed: int = 0) -> ToyReference:
    """The reference policy's own reward and judge, the number of preference pairs, and the setup time."""
    from engine.alignment.toy import ToyConfig, toy_setup

    setup = toy_setup(ToyConfig(seed=seed))
    return ToyReference(setup.ref_stats["reward_mean"], setup.ref_stats["judge_mean"], len(setup.pairs), setup.seconds)


@dataclass
class RunSet:
    """Several toy runs started together, and the seed they shared."""

    logs: dict[str, RunLog] = field(default_factory=dict)
    seed: int = 0

    @property
    def status(self) -> str:
        return overall_status(self.logs)[0]

    @property
    def message(self) -> str:
        return overall_status(self.logs)[1]


def race_runs(
    methods: tuple[str, ...],
    steps: int,
    seed: int,
    beta: float,
    progress: ProgressFn = null_progress,
    should_stop: StopFn | None = None,
    on_row: RowFn | None = None,
) -> RunSet:
    """PPO vs DPO with one β: PPO's KL penalty and DPO's β (which must be positive, so at least 0.001)."""
    from engine.alignment.runs import race

    logs = race(
        tuple(methods),
        steps,
        seed,
        kl_coef=beta,
        beta=max(beta, 1e-3),
        progress=progress,
        should_stop=should_stop,
        on_row=on_row,
    )
    return RunSet(logs, seed)


def hacking_runs(
    steps: int,
    seed: int,
    beta: float,
    progress: ProgressFn = null_progress,
    should_stop: StopFn | None = None,
    on_row: RowFn | None = None,
) -> RunSet:
    """PPO with the KL penalty off, then at `beta`."""
    from engine.alignment.runs import reward_hacking

    return RunSet(reward_hacking(steps, seed, (0.0, beta), progress, should_stop, on_row), seed)


@dataclass
class SweepResult:
    points: list[dict]  # the checkpoint rows of every β
    status: str
    message: str


def sweep_runs(
    betas: tuple[float, ...],
    steps: int,
    progress: ProgressFn = null_progress,
    should_stop: StopFn | None = None,
    on_row: RowFn | None = None,
) -> SweepResult:
    """DPO's β sweep, smallest β first."""
    from engine.alignment.runs import beta_sweep

    points, log = beta_sweep(tuple(sorted(betas)), steps, 0, progress=progress, should_stop=should_stop, on_row=on_row)
    return SweepResult(points, log.status, log.message)
