"""LLM-as-judge for pairwise comparison (book 13.3), and the two weaknesses that make it a lesson: position bias
and length bias, each measured with a 95 % confidence interval.

The judge is asked one question per order: "which answer is better, A or B (or a tie)?", with the answer constrained
to `{"winner": "A"|"B"|"tie", "reason": str}` (`engine.serving.structured_chat`: a grammar on the local llama.cpp
server, `json_schema` on OpenAI). Every pair is asked **twice, the two answers swapped**. A judge without position
bias names the same answer both times; the instructions even say "do not let the order or the length decide" — as
the MT-Bench judge prompt does — and the figures show how much that helps.

Figures, and the unit each is counted over (a pair is asked twice, so its two verdicts are not independent):

- `flip_rate`: of the pairs whose two verdicts are both valid, the share where the preferred answer changes when
  the answers swap places (A→B, or a winner↔tie). Per pair; Wilson interval.
- `first_slot_rate`: of all valid non-tie verdicts, the share that pick the answer shown first. Each pair is shown
  both ways, so a judge that reads the answers gets 0.5 whatever the answers are. Per verdict; bootstrap interval
  over pairs (both verdicts of a pair are resampled together).
- `length_bias`: how often the judge prefers the longer answer (valid non-tie verdicts of pairs whose answers differ
  in length, in characters) minus how often the reference label does (non-tie labels of the same pairs). Positive:
  the judge likes length more than the people who labelled the pairs. The two rates have their own intervals
  (bootstrap over pairs for the judge's, Wilson for the labels'); the difference a paired bootstrap over pairs.
  `length_buckets` splits both rates by how much longer the longer answer is.
- `agreement_with_humans`: the pair's verdict as MT-Bench counts it — an answer wins only if it wins in both orders,
  anything else is a tie — against the reference label (A, B or tie). Per pair; Wilson interval. Note what the rule
  does to tie labels: a judge that flips is scored "tie", so inconsistency is rewarded on pairs labelled tie
  (`by_design` shows it). `agreement_first_order` is the one-call judge most people run (the original order only).
- `by_design`: every figure again for each kind of pair (human_eval.DESIGNS). On `padded` pairs (the same answer
  with filler sentences, labelled tie) the share of verdicts that pick the longer answer is length bias in its
  purest form: nothing but length differs.

A verdict that is not JSON (cut off, or a server that ignores the schema), not an object, or names no winner among
A / B / tie is **invalid**, with a code (`llmops.judge.not_json`, `llmops.judge.not_object`,
`llmops.judge.bad_winner`), counted and shown — never a crash; it is left out of every rate above.

Intervals: Wilson score (`wilson`) for proportions over independent units; percentile bootstrap (`bootstrap_ci`,
2,000 resamples, seed 0) for figures over verdicts (two per pair) and for differences.

Measured (`python -m engine judge-bias`, the 62 developer-labelled pairs of assets/llmops/pairs.jsonl, the local
`instruct` model Qwen2.5-Coder-0.5B, greedy, grammar-constrained): the judge answered "A" — whichever answer was
shown first — in all 124 verdicts, the prompt's "avoid any position bias" notwithstanding. Flip rate 1.00 (Wilson
95 % [0.94, 1.00]), every flip a reversal; first-slot rate 1.00; so length cannot show: the judge prefers the
longer answer in 0.50 of its verdicts (exactly, by construction of the swap) against 0.56 [0.41, 0.71] for the
labels, length bias −0.06 (bootstrap [−0.22, 0.09]). Agreement with the labels 0.32 [0.22, 0.45] — precisely the
20 tie-labelled pairs, which the MT-Bench rule scores as ties because every pair flipped; the one-call judge agrees
on 0.34 [0.23, 0.46] (the 21 pairs whose better answer happened to be A). No invalid verdict (the grammar sees to
that); 49 s per verdict on 2 shared cores at load 5–11 (1 h 41 min for the run).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.core.config import get_settings
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
BOOTSTRAP_RESAMPLES = 2_000
LABELS = ("A", "B", "tie")
JUDGE_ROLES = ("instruct", "instruct-large", "chat", "openai")
MAX_PAIRS = 500
MAX_SERVER_FAILURES = 3  # requests in a row the server drops before a run gives up
MAX_REASON_CHARS = 60  # the reason is shown, not scored: one short phrase, so a verdict costs few tokens
INVALID_CODES = ("llmops.judge.not_json", "llmops.judge.not_object", "llmops.judge.bad_winner")
# How much longer the longer answer is, relative to the shorter: the buckets of "preference vs length difference".
LENGTH_BUCKETS = ((0.0, 0.25), (0.25, 1.0), (1.0, math.inf))

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "winner": {"type": "string", "enum": list(LABELS)},
        "reason": {"type": "string", "maxLength": MAX_REASON_CHARS},
    },
    "required": ["winner", "reason"],
    "additionalProperties": False,
}

# After the MT-Bench pairwise judge prompt (Zheng et al. 2023), asking the verdict first (the schema's order) and a
# short reason after it, so one verdict is a few dozen tokens on 2 CPU cores.
SYSTEM_PROMPT = (
    "Please act as an impartial judge and evaluate the quality of the two answers (A and B) given by AI assistants "
    "to the user question below. Choose the answer that follows the user's instructions and answers the question "
    "better: consider correctness, helpfulness, relevance and level of detail. The question and answers are about "
    "the Constitution of the Republic of Korea and are written in Korean. Avoid any position bias: the order in "
    "which the answers are presented must not influence your decision. Do not let the length of the answers "
    'influence your decision. Reply with JSON: winner is "A" if answer A is better, "B" if answer B is better, '
    '"tie" if they are equally good; reason is one short phrase.'
)
USER_TEMPLATE = "[Question]\n{question}\n\n[Answer A]\n{first}\n\n[Answer B]\n{second}\n"


# --- data -----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JudgePair:
    pair_id: str
    question: str
    answer_a: str
    answer_b: str
    label: str  # the reference label: "A", "B" or "tie" (which answer the developers found better)
    source: str = ""  # where the answers came from ("<source_a> | <source_b>")
    design: str = ""  # what the pair isolates (human_eval.DESIGNS), e.g. "padded": the same answer with filler

    def lengths(self) -> tuple[int, int]:
        return len(self.answer_a.strip()), len(self.answer_b.strip())

    @property
    def longer(self) -> str | None:
        """ "A" or "B", the answer with more characters; None when both are as long."""
        a, b = self.lengths()
        return None if a == b else ("A" if a > b else "B")

    @property
    def length_ratio(self) -> float | None:
        """How much longer the longer answer is, relative to the shorter (0.5 = 50 % longer); None when equal."""
        a, b = sorted(self.lengths())
        if a == b:
            return None
        return math.inf if a == 0 else (b - a) / a


@dataclass(frozen=True)
class Verdict:
    pair_id: str
    order: str  # "AB": answer A shown first; "BA": the answers swapped
    slot: str | None  # what the judge wrote, about the order it saw: "A", "B", "tie"; None when invalid
    reason: str = ""
    raw: str = ""  # the judge's answer as it came back (text), for the page's "what did it say" column
    code: str | None = None  # an INVALID_CODES entry when the verdict is unusable
    seconds: float = 0.0

    @property
    def valid(self) -> bool:
        return self.slot is not None

    @property
    def preferred(self) -> str | None:
        """The verdict about the pair's own answers ("A" = the pair's answer_a), whatever order was shown."""
        if self.slot is None or self.slot == "tie" or self.order == "AB":
            return self.slot
        return "B" if self.slot == "A" else "A"


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95 % interval: `k` of `n` units for a proportion (`method` "wilson" or "bootstrap")."""

    value: float | None  # None when there is nothing to count (n = 0)
    low: float | None
    high: float | None
    n: int
    method: str
    k: int | None = None

    def to_json(self, digits: int = 4) -> dict:
        r = lambda x: None if x is None else round(x, digits)  # noqa: E731
        return {
            "value": r(self.value),
            "ci": [r(self.low), r(self.high)],
            "n": self.n,
            "k": self.k,
            "method": self.method,
        }


@dataclass(frozen=True)
class LengthBucket:
    low: float  # the longer answer is at least this much longer than the shorter (relative) ...
    high: float  # ... and less than this
    judge: Estimate  # share of valid non-tie verdicts in the bucket that prefer the longer answer
    human: Estimate  # share of non-tie labels in the bucket that prefer the longer answer


@dataclass
class BiasReport:
    pairs: int
    flip_rate: Estimate
    reversal_rate: Estimate  # the stronger kind of flip: the winner goes from one answer to the other
    first_slot_rate: Estimate
    judge_longer_rate: Estimate
    human_longer_rate: Estimate
    length_bias: Estimate  # judge_longer_rate - human_longer_rate, paired bootstrap
    length_buckets: list[LengthBucket]
    agreement_with_humans: Estimate
    agreement_first_order: Estimate
    invalid: int  # verdicts the judge gave but that are unusable (INVALID_CODES)
    invalid_codes: dict[str, int]  # every code counted, the server's too
    unanswered: int  # requests the server dropped (a timeout): no verdict at all
    verdicts: list[Verdict] = field(default_factory=list)
    by_design: dict[str, BiasReport] = field(default_factory=dict)  # the same figures per pair design
    model: str = ""
    role: str = ""
    seconds: float = 0.0

    def to_json(self, with_verdicts: bool = False) -> dict:
        """The `judge-bias --json` object: each figure as a number, its interval as `<name>_ci` = [low, high]."""
        out: dict = {"pairs": self.pairs}
        for name in (
            "flip_rate",
            "reversal_rate",
            "first_slot_rate",
            "length_bias",
            "judge_longer_rate",
            "human_longer_rate",
            "agreement_with_humans",
            "agreement_first_order",
        ):
            est: Estimate = getattr(self, name)
            js = est.to_json()
            out[name], out[f"{name}_ci"], out[f"{name}_n"] = js["value"], js["ci"], js["n"]
            out[f"{name}_method"] = est.method
        out["length_buckets"] = [
            {
                "low": b.low,
                "high": None if math.isinf(b.high) else b.high,
                "judge": b.judge.to_json(),
                "human": b.human.to_json(),
            }
            for b in self.length_buckets
        ]
        out.update(
            invalid=self.invalid,
            invalid_codes=self.invalid_codes,
            unanswered=self.unanswered,
            verdicts_total=len(self.verdicts),
            model=self.model,
            role=self.role,
            seconds=round(self.seconds, 2),
            ci_level=0.95,
        )
        out["by_design"] = {
            d: {
                "pairs": r.pairs,
                **{
                    name: getattr(r, name).to_json()
                    for name in (
                        "flip_rate",
                        "first_slot_rate",
                        "judge_longer_rate",
                        "human_longer_rate",
                        "agreement_with_humans",
                        "agreement_first_order",
                    )
                },
            }
            for d, r in self.by_design.items()
        }
        if with_verdicts:
            out["verdicts"] = [asdict(v) | {"preferred": v.preferred} for v in self.verdicts]
        return out


# --- intervals --------------------------------------------------------------------------------------------------
def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | tuple[None, None]:
    """The Wilson score interval of k successes in n trials (no continuity correction); (None, None) for n = 0."""
    if n <= 0:
        return None, None
    if not 0 <= k <= n:
        raise ValueError(f"k={k} is not between 0 and n={n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(k: int, n: int) -> Estimate:
    low, high = wilson(k, n)
    return Estimate(k / n if n else None, low, high, n, "wilson", k)


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float | None],
    n_units: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float | None, float | None]:
    """Percentile interval of `statistic(indices)` over resamples of the unit indices 0..n_units-1 with replacement
    (a statistic that is undefined on a resample returns None; those resamples are skipped)."""
    if n_units <= 0:
        return None, None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        v = statistic(rng.integers(0, n_units, size=n_units))
        if v is not None and not math.isnan(v):
            values.append(v)
    if not values:
        return None, None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _rate(hits: np.ndarray, totals: np.ndarray, idx: np.ndarray) -> float | None:
    """Pooled rate over the resampled units: sum of hits / sum of totals."""
    n = totals[idx].sum()
    return None if n == 0 else float(hits[idx].sum() / n)


def clustered(hits: Sequence[int], totals: Sequence[int], seed: int = 0) -> Estimate:
    """A rate counted over several items per unit (two verdicts per pair): sum(hits)/sum(totals), with a percentile
    bootstrap interval that resamples whole units."""
    h, t = np.asarray(hits, dtype=np.int64), np.asarray(totals, dtype=np.int64)
    k, n = int(h.sum()), int(t.sum())
    low, high = bootstrap_ci(lambda idx: _rate(h, t, idx), len(t), seed=seed)
    return Estimate(k / n if n else None, low, high, n, "bootstrap", k)


# --- parsing a verdict ------------------------------------------------------------------------------------------
_OBJECT = re.compile(r"\{.*\}", re.S)


def parse_verdict(raw: str | dict | None) -> tuple[str | None, str, str | None]:
    """(slot, reason, invalid code) from whatever the judge returned: a parsed object (structured output) or text.

    Text may carry the JSON object inside other words (a judge without the schema); nothing else counts. The winner
    is read case-insensitively and without spaces ("a", " B ", "Tie")."""
    obj = raw
    if obj is None:
        return None, "", "llmops.judge.not_json"
    if isinstance(obj, str):
        text = obj.strip()
        try:
            obj = json.loads(text)
        except ValueError:
            match = _OBJECT.search(text)
            try:
                obj = json.loads(match.group(0)) if match else None
            except ValueError:
                obj = None
            if obj is None:
                return None, "", "llmops.judge.not_json"
    if not isinstance(obj, dict):
        return None, "", "llmops.judge.not_object"
    winner = str(obj.get("winner", "")).strip()
    reason = str(obj.get("reason", ""))[: MAX_REASON_CHARS * 2]
    slot = {"a": "A", "b": "B", "tie": "tie"}.get(winner.lower())
    if slot is None:
        return None, reason, "llmops.judge.bad_winner"
    return slot, reason, None


# --- asking the judge -------------------------------------------------------------------------------------------
def judge_messages(question: str, first: str, second: str) -> list[dict]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": USER_TEMPLATE.format(question=question, first=first, second=second)},
    ]


def judge_server_role(role: str) -> str:
    """The serving role that answers for judge `role`; "openai" needs the hosted tier (OPENAI_API_KEY)."""
    if role not in JUDGE_ROLES:
        raise InputError("input.unknown_choice", name="role", value=role, choices=", ".join(JUDGE_ROLES))
    if role == "openai":
        if get_settings().tier != "hosted":
            raise InputError("llmops.judge.no_openai_key")
        return "instruct"  # with the key set, every role's requests go to OpenAI (engine.core.config)
    return role


def judge_model(role: str = "instruct") -> str:
    from engine.serving.client import model_name

    return model_name(judge_server_role(role))


def ask_judge(pair: JudgePair, order: str = "AB", role: str = "instruct", max_tokens: int = 160) -> Verdict:
    """One verdict on `pair`, shown in `order` ("AB" or "BA"). An unusable answer is an invalid verdict, not an
    error; a dead server is still a `ModelServerError` (nothing was judged)."""
    from engine.serving.client import ModelServerError, structured_chat

    if order not in ("AB", "BA"):
        raise InputError("input.unknown_choice", name="order", value=order, choices="AB, BA")
    server_role = judge_server_role(role)
    first, second = (pair.answer_a, pair.answer_b) if order == "AB" else (pair.answer_b, pair.answer_a)
    start = time.perf_counter()
    try:
        answer = structured_chat(
            judge_messages(pair.question, first, second),
            VERDICT_SCHEMA,
            name="verdict",
            max_tokens=max_tokens,
            role=server_role,
        )
    except ModelServerError as exc:
        if exc.code != "server.bad_json":
            raise
        return Verdict(pair.pair_id, order, None, "", "", "llmops.judge.not_json", time.perf_counter() - start)
    seconds = time.perf_counter() - start
    slot, reason, code = parse_verdict(answer)
    raw = json.dumps(answer, ensure_ascii=False) if not isinstance(answer, str) else answer
    return Verdict(pair.pair_id, order, slot, reason, raw, code, seconds)


def judge_pairs(
    pairs: Sequence[JudgePair],
    role: str = "instruct",
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
) -> list[Verdict]:
    """Both orders of every pair (AB then BA). Stopping keeps the verdicts so far (whole pairs only).

    A request the server drops (a timeout on a busy machine) costs that verdict, not the run: it is recorded with
    the server's code (`unanswered` in the report) and the run goes on; `MAX_SERVER_FAILURES` in a row mean the
    server is gone, and that error is raised."""
    from engine.serving.client import ModelServerError

    judge_server_role(role)
    out: list[Verdict] = []
    failures = 0
    for i, pair in enumerate(pairs):
        if should_stop is not None and should_stop():
            break
        progress(i / max(len(pairs), 1), f"pair {i + 1}/{len(pairs)}")
        for order in ("AB", "BA"):
            start = time.perf_counter()
            try:
                out.append(ask_judge(pair, order, role))
                failures = 0
            except ModelServerError as exc:
                failures += 1
                if failures >= MAX_SERVER_FAILURES:
                    raise
                out.append(Verdict(pair.pair_id, order, None, "", "", exc.code, time.perf_counter() - start))
    progress(1.0, "judged")
    return out


# --- the figures ------------------------------------------------------------------------------------------------
def pair_verdict(first: Verdict, second: Verdict) -> str | None:
    """MT-Bench's rule: an answer wins only if it wins in both orders; anything else is a tie (None: invalid)."""
    if not (first.valid and second.valid):
        return None
    a, b = first.preferred, second.preferred
    return a if a == b and a != "tie" else "tie"


def bias_report(
    pairs: Sequence[JudgePair], verdicts: Sequence[Verdict], seed: int = 0, by_design: bool = True
) -> BiasReport:
    """Every figure of the module docstring from the pairs and their verdicts (both orders per pair); with
    `by_design`, the same figures for each pair design too (e.g. "padded": does filler win?)."""
    by_pair: dict[str, dict[str, Verdict]] = {}
    for v in verdicts:
        by_pair.setdefault(v.pair_id, {})[v.order] = v
    judged = [p for p in pairs if p.pair_id in by_pair]
    ids = {p.pair_id for p in judged}

    flips = reversals = both_valid = 0
    agree = agree_n = first_agree = first_n = 0
    first_hits, first_totals = [], []  # per pair: verdicts picking the first-shown answer / valid non-tie verdicts
    long_hits, long_totals = [], []  # per pair: verdicts preferring the longer answer / valid non-tie verdicts
    human_long: list[int | None] = []  # per pair: 1 the label prefers the longer answer, 0 the shorter, None no say
    for p in judged:
        ab, ba = by_pair[p.pair_id].get("AB"), by_pair[p.pair_id].get("BA")
        if ab is not None and ab.valid:
            first_n += 1
            first_agree += ab.preferred == p.label
        decided = [v for v in (ab, ba) if v is not None and v.valid and v.slot != "tie"]
        first_hits.append(sum(v.slot == "A" for v in decided))
        first_totals.append(len(decided))
        longer = p.longer
        long_hits.append(sum(v.preferred == longer for v in decided) if longer else 0)
        long_totals.append(len(decided) if longer else 0)
        human_long.append(None if longer is None or p.label == "tie" else int(p.label == longer))
        if ab is not None and ba is not None and ab.valid and ba.valid:
            both_valid += 1
            flips += ab.preferred != ba.preferred
            reversals += {ab.preferred, ba.preferred} == {"A", "B"}
            agree_n += 1
            agree += pair_verdict(ab, ba) == p.label

    judge_longer = clustered(long_hits, long_totals, seed)
    h_known = [h for h in human_long if h is not None]
    human_longer = proportion(sum(h_known), len(h_known))
    lh, lt = np.asarray(long_hits), np.asarray(long_totals)
    hh = np.asarray([h or 0 for h in human_long])
    hn = np.asarray([h is not None for h in human_long], dtype=np.int64)

    def diff(idx: np.ndarray) -> float | None:
        j, h = _rate(lh, lt, idx), _rate(hh, hn, idx)
        return None if j is None or h is None else j - h

    d_value = (
        None if judge_longer.value is None or human_longer.value is None else judge_longer.value - human_longer.value
    )
    d_low, d_high = bootstrap_ci(diff, len(judged), seed=seed) if d_value is not None else (None, None)
    length_bias = Estimate(d_value, d_low, d_high, len(judged), "bootstrap")

    buckets = []
    for lo, hi in LENGTH_BUCKETS:
        inside = [i for i, p in enumerate(judged) if p.length_ratio is not None and lo <= p.length_ratio < hi]
        hk = [human_long[i] for i in inside if human_long[i] is not None]
        buckets.append(
            LengthBucket(
                lo,
                hi,
                clustered([long_hits[i] for i in inside], [long_totals[i] for i in inside], seed),
                proportion(sum(hk), len(hk)),
            )
        )
    codes = Counter(v.code for v in verdicts if v.code and v.pair_id in ids)
    return BiasReport(
        pairs=len(judged),
        flip_rate=proportion(flips, both_valid),
        reversal_rate=proportion(reversals, both_valid),
        first_slot_rate=clustered(first_hits, first_totals, seed),
        judge_longer_rate=judge_longer,
        human_longer_rate=human_longer,
        length_bias=length_bias,
        length_buckets=buckets,
        agreement_with_humans=proportion(agree, agree_n),
        agreement_first_order=proportion(first_agree, first_n),
        invalid=sum(n for c, n in codes.items() if c in INVALID_CODES),
        unanswered=sum(n for c, n in codes.items() if c not in INVALID_CODES),
        invalid_codes=dict(sorted(codes.items())),
        verdicts=[v for v in verdicts if v.pair_id in ids],
        by_design={
            d: bias_report([p for p in judged if p.design == d], verdicts, seed, by_design=False)
            for d in sorted({p.design for p in judged if p.design})
        }
        if by_design
        else {},
        seconds=sum(v.seconds for v in verdicts if v.pair_id in ids),
    )


def measure_bias(
    pairs: Sequence[JudgePair] | None = None,
    role: str = "instruct",
    limit: int | None = None,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
) -> BiasReport:
    """Judge every pair in both orders and report position bias, length bias and agreement with the labels."""
    pairs = list(pairs) if pairs is not None else load_judge_pairs()
    if limit is not None:
        if limit < 1:
            raise InputError("input.out_of_range", name="limit", low=1, high=MAX_PAIRS, value=limit)
        pairs = pairs[:limit]
    start = time.perf_counter()
    verdicts = judge_pairs(pairs, role, progress, should_stop)
    report = bias_report(pairs, verdicts)
    report.model, report.role, report.seconds = judge_model(role), role, time.perf_counter() - start
    return report


# --- pairs ------------------------------------------------------------------------------------------------------
def from_item(item) -> JudgePair:
    """A `human_eval.PairItem` (the pairs people label) as the judge's pair."""
    return JudgePair(
        item.pair_id,
        item.question,
        item.answer_a,
        item.answer_b,
        item.reference,
        f"{item.source_a} | {item.source_b}".strip(" |"),
        item.design,
    )


def load_judge_pairs(path: Path | str | None = None) -> list[JudgePair]:
    """The pairs people label (`assets/llmops/pairs.jsonl`, read by `human_eval.load_pairs`: its format and its
    error codes), as the judge's pairs. No pair at all is `llmops.judge.no_pairs`."""
    from engine.llmops.human_eval import PAIRS_FILE
    from engine.llmops.human_eval import load_pairs as load_items

    path = Path(path or PAIRS_FILE)
    pairs = [from_item(item) for item in load_items(path)]
    if not pairs:
        raise InputError("llmops.judge.no_pairs", path=str(path))
    if len(pairs) > MAX_PAIRS:
        raise InputError("input.too_many", name="pairs", limit=MAX_PAIRS, value=len(pairs))
    return pairs


__all__ = [
    "INVALID_CODES",
    "JUDGE_ROLES",
    "BiasReport",
    "Estimate",
    "JudgePair",
    "LengthBucket",
    "Verdict",
    "ask_judge",
    "bias_report",
    "bootstrap_ci",
    "from_item",
    "judge_server_role",
    "load_judge_pairs",
    "measure_bias",
    "parse_verdict",
    "proportion",
    "wilson",
]
