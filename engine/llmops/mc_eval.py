"""Benchmark-style multiple-choice scoring by log-likelihood (book 13.3), checked item by item against
lm-evaluation-harness.

How a benchmark such as HellaSwag or ARC scores a causal LM: no text is generated. Each choice is appended to the
item's context and the model's log-likelihood of the choice tokens is summed; the prediction is the choice with the
highest score. Two accuracies come out of the same numbers:

- `acc`: argmax of the summed log-likelihoods. Long choices pay for every extra token, so `acc` favours short ones.
- `acc_norm`: argmax of log-likelihood divided by the choice's length. It is often described as byte-length
  normalization, but lm-evaluation-harness (0.4.13, `ConfigurableTask.process_results`) divides by `len(choice)`,
  the number of *characters* of the choice without the delimiter, and so does this module. The harness's separate
  `acc_bytes` divides by UTF-8 bytes: for Korean, 3 bytes per Hangul syllable and 1 per space, digit or dot, so
  `acc_norm` and `acc_bytes` can pick different choices. Both are reported and compared.

The scoring follows the harness (`HFLM._encode_pair` / `_loglikelihood_tokens`) exactly: the continuation is
" " + choice (the default target delimiter); trailing spaces of the context move to the continuation; context +
continuation is tokenized as one string and the continuation tokens are what follows the context's own tokens; the
model reads everything but the last token, one sequence per forward pass (the harness's `batch_size=1`).

The benchmark: cloze items built from the Korean Constitution the app ships (`engine.core.corpus`), stored in
`assets/llmops/constitution_cloze.jsonl` (see `build_cloze_items` and assets/llmops/SOURCES.md). The harness runs as
its own CLI (`lm_eval run --model hf`) on the same JSONL through a local task YAML, offline, with the same packaged
model (the `chat` role, SmolLM2-135M-Instruct, as the safetensors folder `engine.models.loading` converts it to);
its per-item results (`--log_samples`) are compared with ours.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.core.assets import asset
from engine.core.errors import UserError
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError

ITEMS_FILE = asset("llmops", "constitution_cloze.jsonl")
TASK_NAME = "ko_constitution_cloze"
DEFAULT_ROLE = "chat"
SEED = 13
N_ITEMS = 50
N_CHOICES = 4
TARGET_DELIMITER = " "  # lm-evaluation-harness's default between context and choice
HARNESS_TIMEOUT_S = 3600  # catches a hung run; a busy shared machine can be slow
SOURCE = "대한민국헌법 (public domain), konlpy wheel: konlpy/data/corpus/kolaw/constitution.txt"

_CIRCLED = re.compile(r"^[①-⑳]\s*")
_SENTENCE_END = re.compile(r"(?<=다\.)\s+")


class HarnessError(UserError, RuntimeError):
    """lm-evaluation-harness did not run or its output could not be read; the message has its own error text."""

    default_code = "llmops.mc.harness_error"


@dataclass(frozen=True)
class McItem:
    """One multiple-choice item: the model reads `context` and each choice is scored as its continuation."""

    item_id: str
    context: str
    choices: tuple[str, ...]
    label: int  # index of the right choice
    article: str = ""  # where the sentence comes from ("제10조")
    source: str = ""

    def to_json(self) -> dict:
        return {
            "id": self.item_id,
            "article": self.article,
            "context": self.context,
            "choices": list(self.choices),
            "label": self.label,
            "answer": self.choices[self.label],
            "source": self.source,
        }


@dataclass(frozen=True)
class ItemScore:
    """Our scores for one item: per-choice log-likelihoods and the three accuracies the harness defines."""

    item_id: str
    label: int
    loglikelihoods: tuple[float, ...]
    char_lengths: tuple[int, ...]
    byte_lengths: tuple[int, ...]
    token_counts: tuple[int, ...]  # continuation tokens per choice
    pred: int  # argmax of log-likelihood
    pred_norm: int  # argmax of log-likelihood / characters
    pred_bytes: int  # argmax of log-likelihood / UTF-8 bytes
    requests: tuple[tuple[str, str], ...]  # the (context, continuation) strings scored

    @property
    def acc(self) -> float:
        return 1.0 if self.pred == self.label else 0.0

    @property
    def acc_norm(self) -> float:
        return 1.0 if self.pred_norm == self.label else 0.0

    @property
    def acc_bytes(self) -> float:
        return 1.0 if self.pred_bytes == self.label else 0.0


@dataclass(frozen=True)
class HarnessItem:
    """lm-evaluation-harness's own per-item result, read from its `--log_samples` file."""

    item_id: str
    acc: float
    acc_norm: float
    acc_bytes: float
    loglikelihoods: tuple[float, ...]
    requests: tuple[tuple[str, str], ...]


@dataclass
class HarnessRun:
    items: dict[str, HarnessItem]
    seconds: float
    command: list[str]
    version: str
    task_yaml: str
    aggregate: dict[str, float]  # the harness's own summary (acc, acc_norm, acc_bytes over the items)


@dataclass(frozen=True)
class ItemRow:
    """One line of the comparison (what `mc-eval --json` prints per item)."""

    item_id: str
    acc: float
    acc_norm: float
    acc_bytes: float
    lm_eval_acc: float | None
    lm_eval_acc_norm: float | None
    lm_eval_acc_bytes: float | None
    max_ll_diff: float | None  # largest |our log-likelihood - the harness's| over the choices
    same_requests: bool | None  # our (context, continuation) strings are the harness's, character for character

    @property
    def equal(self) -> bool | None:
        if self.lm_eval_acc is None:
            return None
        return self.acc == self.lm_eval_acc and self.acc_norm == self.lm_eval_acc_norm

    def to_json(self) -> dict:
        return {**asdict(self), "equal": self.equal}


@dataclass
class McReport:
    """Our scores, the harness's, and the comparison: a page draws `rows` and `summary()`."""

    items: list[McItem]
    scores: list[ItemScore]
    rows: list[ItemRow]
    model: str
    seconds: float  # our scoring, model load included
    harness: HarnessRun | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        n = len(self.rows)
        out = {
            "summary": True,
            "n_items": n,
            "model": self.model,
            "acc": _mean([r.acc for r in self.rows]),
            "acc_norm": _mean([r.acc_norm for r in self.rows]),
            "acc_bytes": _mean([r.acc_bytes for r in self.rows]),
            "chance": _mean([1 / len(it.choices) for it in self.items]),
            "seconds": round(self.seconds, 2),
            "lm_eval_acc": None,
            "lm_eval_acc_norm": None,
            "lm_eval_acc_bytes": None,
            "n_equal": None,
            "n_equal_acc_bytes": None,
            "max_ll_diff": None,
            "harness_seconds": None,
            "harness_version": None,
        }
        if self.harness is not None:
            out.update(
                lm_eval_acc=_mean([r.lm_eval_acc for r in self.rows]),
                lm_eval_acc_norm=_mean([r.lm_eval_acc_norm for r in self.rows]),
                lm_eval_acc_bytes=_mean([r.lm_eval_acc_bytes for r in self.rows]),
                n_equal=sum(bool(r.equal) for r in self.rows),
                n_equal_acc_bytes=sum(r.acc_bytes == r.lm_eval_acc_bytes for r in self.rows),
                max_ll_diff=max((r.max_ll_diff or 0.0) for r in self.rows) if self.rows else None,
                harness_seconds=round(self.harness.seconds, 2),
                harness_version=self.harness.version,
                harness_aggregate=self.harness.aggregate,
                harness_command=" ".join(self.harness.command),
            )
        return out


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


# --- the benchmark -----------------------------------------------------------------------------------------------


def _sentences(text: str) -> list[str]:
    out = []
    for line in text.split("\n"):
        line = _CIRCLED.sub("", line.strip())
        out.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return out


def build_cloze_items(seed: int = SEED, n_items: int = N_ITEMS, n_choices: int = N_CHOICES) -> list[McItem]:
    """Cloze items from the Constitution: an article's sentence with its last words blanked; the choices are the
    right words and the last words of sentences from other articles (same number of words, none of them found in the
    item's own article). Deterministic for a seed."""
    from engine.core.corpus import load_constitution

    rng = random.Random(seed)
    candidates: dict[str, list[tuple[list[str], int]]] = {}
    for doc in load_constitution():
        if doc.meta.get("part") != "본문":
            continue
        for sentence in _sentences(doc.text):
            words = sentence.split()
            if sentence.endswith("다.") and 7 <= len(words) <= 30:
                k = 3 if len(words) >= 10 else 2  # words blanked: the key phrase that ends the sentence
                candidates.setdefault(doc.doc_id, []).append((words, k))
    articles = sorted(candidates, key=lambda d: int(re.sub(r"\D", "", d)))
    endings: dict[int, list[tuple[str, str]]] = {}  # k -> [(article, ending)]
    for art in articles:
        for words, k in candidates[art]:
            endings.setdefault(k, []).append((art, " ".join(words[-k:])))
    texts = {doc.doc_id: doc.text for doc in load_constitution()}
    chosen = sorted(rng.sample(articles, min(n_items, len(articles))), key=articles.index)
    items = []
    for art in chosen:
        words, k = rng.choice(candidates[art])
        answer = " ".join(words[-k:])
        pool = sorted({e for a, e in endings[k] if a != art and e != answer and e not in texts[art]})
        distractors = rng.sample(pool, n_choices - 1)
        choices = [answer, *distractors]
        rng.shuffle(choices)
        number = int(re.sub(r"\D", "", art))
        items.append(
            McItem(
                item_id=f"const-{number:03d}",
                context=f"대한민국헌법 {art} {' '.join(words[:-k])}",
                choices=tuple(choices),
                label=choices.index(answer),
                article=art,
                source=SOURCE,
            )
        )
    return items


def write_items(items: list[McItem], path: Path = ITEMS_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(it.to_json(), ensure_ascii=False) for it in items]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def check_item(item: McItem) -> McItem:
    """An item the scorer can use, or `InputError` (llmops.mc.*) saying what is wrong."""
    if not item.context.strip():
        raise InputError("llmops.mc.empty_context", item_id=item.item_id)
    if len(item.choices) < 2:
        raise InputError("llmops.mc.too_few_choices", item_id=item.item_id, choices=len(item.choices))
    if any(not isinstance(c, str) or not c.strip() for c in item.choices):
        raise InputError("llmops.mc.empty_choice", item_id=item.item_id)
    if len(set(item.choices)) != len(item.choices):
        raise InputError("llmops.mc.duplicate_choice", item_id=item.item_id)
    if not isinstance(item.label, int) or not 0 <= item.label < len(item.choices):
        raise InputError("llmops.mc.bad_label", item_id=item.item_id, label=item.label, choices=len(item.choices))
    return item


def item_from_json(raw: dict, line: int = 0) -> McItem:
    try:
        item = McItem(
            item_id=str(raw["id"]),
            context=str(raw["context"]),
            choices=tuple(raw["choices"]),
            label=raw["label"],
            article=str(raw.get("article", "")),
            source=str(raw.get("source", "")),
        )
    except (KeyError, TypeError) as exc:
        raise InputError("llmops.mc.bad_line", line=line, reason=f"missing or wrong field {exc}") from exc
    return check_item(item)


def load_items(path: Path | str = ITEMS_FILE, limit: int | None = None) -> list[McItem]:
    """The benchmark's items (the shipped JSONL by default), checked; the first `limit` only if given."""
    if limit is not None and limit < 1:
        raise InputError("input.too_small", name="limit", limit=1, value=limit)
    items = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError("llmops.mc.bad_line", line=n, reason=str(exc)) from exc
        items.append(item_from_json(raw, n))
    if not items:
        raise InputError("llmops.mc.no_items", path=str(path))
    ids = [it.item_id for it in items]
    if len(set(ids)) != len(ids):
        raise InputError("llmops.mc.duplicate_id", path=str(path))
    return items[:limit] if limit else items


# --- our scoring -------------------------------------------------------------------------------------------------


def requests_for(item: McItem) -> list[tuple[str, str]]:
    """The harness's (context, continuation) pairs for a multiple-choice item at 0 shots."""
    return [(item.context, f"{TARGET_DELIMITER}{choice}") for choice in item.choices]


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """As `lm_eval.api.model.LM._encode_pair` does for a causal model: trailing spaces of the context move to the
    continuation; the whole string is tokenized once and the continuation is what follows the context's tokens."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tokenizer.encode(context + continuation)
    context_enc = tokenizer.encode(context)
    return context_enc, whole[len(context_enc) :]


def loglikelihood(model, context_enc: list[int], continuation_enc: list[int]) -> float:
    """Sum of log p(continuation token | everything before it), one sequence per forward pass."""
    import torch
    import torch.nn.functional as F

    if not context_enc or not continuation_enc:
        raise InputError("llmops.mc.empty_tokens")
    tokens = (context_enc + continuation_enc)[:-1]
    with torch.inference_mode():
        logits = model(torch.tensor([tokens], dtype=torch.long, device=model.device)).logits[0]
        logprobs = F.log_softmax(logits, dim=-1)[-len(continuation_enc) :]
    target = torch.tensor(continuation_enc, dtype=torch.long, device=logprobs.device)
    return float(logprobs.gather(1, target.unsqueeze(-1)).sum())


def _argmax(values: list[float]) -> int:
    # numpy's argmax (the harness's): the first index of the maximum
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def score_item(model, tokenizer, item: McItem) -> ItemScore:
    reqs = requests_for(check_item(item))
    lls, counts = [], []
    for context, continuation in reqs:
        ctx_enc, cont_enc = encode_pair(tokenizer, context, continuation)
        lls.append(loglikelihood(model, ctx_enc, cont_enc))
        counts.append(len(cont_enc))
    chars = [len(c) for c in item.choices]
    nbytes = [len(c.encode("utf-8")) for c in item.choices]
    return ItemScore(
        item_id=item.item_id,
        label=item.label,
        loglikelihoods=tuple(lls),
        char_lengths=tuple(chars),
        byte_lengths=tuple(nbytes),
        token_counts=tuple(counts),
        pred=_argmax(lls),
        pred_norm=_argmax([ll / n for ll, n in zip(lls, chars, strict=True)]),
        pred_bytes=_argmax([ll / n for ll, n in zip(lls, nbytes, strict=True)]),
        requests=tuple(reqs),
    )


def model_dir(role: str = DEFAULT_ROLE, progress: ProgressFn = null_progress) -> Path:
    """The local transformers folder of a packaged role (converted from GGUF once): what the harness loads."""
    from engine.models.loading import _convert_gguf
    from engine.models.registry import resolve

    resolved = resolve(role, progress)
    if resolved.source != "offline":
        raise HarnessError("llmops.mc.online_role", role=role)
    return _convert_gguf(resolved, progress)


def load_scoring_model(role: str = DEFAULT_ROLE, progress: ProgressFn = null_progress):
    """The model and tokenizer as the harness's `--model hf` loads them: the same folder, float32, default
    attention implementation (SDPA), eval mode, on the CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = model_dir(role, progress)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    return model, tokenizer, folder


def score_items(
    items: list[McItem], role: str = DEFAULT_ROLE, progress: ProgressFn = null_progress, loaded=None
) -> tuple[list[ItemScore], float]:
    """Our per-item scores and the wall time (model load included)."""
    start = time.perf_counter()
    model, tokenizer, _ = loaded or load_scoring_model(role, progress)
    scores = []
    for i, item in enumerate(items):
        progress(i / max(1, len(items)), f"scoring {item.item_id}")
        scores.append(score_item(model, tokenizer, item))
    progress(1.0, "scored")
    return scores, time.perf_counter() - start


# --- the harness ------------------------------------------------------------------------------------------------


def task_config(data_file: Path | str, task: str = TASK_NAME) -> dict:
    """The local lm-evaluation-harness task: a `multiple_choice` task over a JSONL file (the `json` dataset builder
    with a local `data_files` path, so nothing is fetched)."""
    return {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "context",
        "doc_to_choice": "choices",
        "doc_to_target": "label",
        "target_delimiter": TARGET_DELIMITER,
        "num_fewshot": 0,
        "metric_list": [
            {"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm", "acc_bytes")
        ],
        "metadata": {"version": 1.0, "source": SOURCE},
    }


def task_yaml(data_file: Path | str, task: str = TASK_NAME) -> str:
    import yaml

    return yaml.safe_dump(task_config(data_file, task), allow_unicode=True, sort_keys=False)


def harness_env(workdir: Path) -> dict[str, str]:
    """Environment for an offline run: the hub and datasets never called, every cache inside `workdir`."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_DATASETS_CACHE=str(workdir / "datasets"),
        HF_HOME=str(workdir / "hf"),
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def harness_command(folder: Path, include: Path, out: Path, task: str = TASK_NAME) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lm_eval",
        "run",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={folder},dtype=float32",
        "--device",
        "cpu",
        "--tasks",
        task,
        "--include_path",
        str(include),
        "--batch_size",
        "1",
        "--num_fewshot",
        "0",
        "--log_samples",
        "--output_path",
        str(out),
    ]


def _float(x) -> float:
    return float(x)


def _pairs(resp) -> tuple[float, bool]:
    """One (loglikelihood, is_greedy) as `--log_samples` writes it (a list, or its str() for some versions)."""
    if isinstance(resp, str):
        import ast

        resp = ast.literal_eval(resp)
    while isinstance(resp, list | tuple) and len(resp) == 1 and isinstance(resp[0], list | tuple):
        resp = resp[0]
    return _float(resp[0]), bool(resp[1]) if len(resp) > 1 else False


def read_samples(out: Path, task: str = TASK_NAME) -> dict[str, HarnessItem]:
    files = sorted(out.rglob(f"samples_{task}_*.jsonl"))
    if not files:
        raise HarnessError("llmops.mc.no_samples", path=str(out))
    items = {}
    for line in files[-1].read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        s = json.loads(line)
        args = s.get("arguments", {})
        requests = tuple(
            (args[k]["arg_0"], args[k]["arg_1"]) for k in sorted(args, key=lambda k: int(k.rsplit("_", 1)[-1]))
        )
        lls = tuple(_pairs(r)[0] for r in s["filtered_resps"])
        item_id = str(s["doc"]["id"])
        items[item_id] = HarnessItem(
            item_id=item_id,
            acc=float(s["acc"]),
            acc_norm=float(s["acc_norm"]),
            acc_bytes=float(s.get("acc_bytes", float("nan"))),
            loglikelihoods=lls,
            requests=requests,
        )
    return items


def _aggregate(out: Path, task: str) -> dict[str, float]:
    files = sorted(out.rglob("results_*.json"))
    if not files:
        return {}
    results = json.loads(files[-1].read_text(encoding="utf-8")).get("results", {}).get(task, {})
    return {k.split(",")[0]: v for k, v in results.items() if k.split(",")[0] in ("acc", "acc_norm", "acc_bytes")}


def run_harness(
    items: list[McItem],
    role: str = DEFAULT_ROLE,
    progress: ProgressFn = null_progress,
    timeout: float = HARNESS_TIMEOUT_S,
) -> HarnessRun:
    """lm-evaluation-harness's CLI on exactly these items (written to a temporary JSONL with its task YAML),
    offline, with the role's local model folder; its per-item results."""
    import importlib.metadata as md

    try:
        version = md.version("lm-eval")
    except md.PackageNotFoundError as exc:
        raise HarnessError("llmops.mc.harness_missing") from exc
    folder = model_dir(role, progress)
    with tempfile.TemporaryDirectory(prefix="lm-eval-") as tmp:
        work = Path(tmp)
        data = write_items(items, work / "data" / "items.jsonl")
        include = work / "tasks"
        include.mkdir()
        text = task_yaml(data)
        (include / f"{TASK_NAME}.yaml").write_text(text, encoding="utf-8")
        out = work / "out"
        command = harness_command(folder, include, out)
        progress(0.0, f"lm-eval {version}: {len(items)} items")
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                command, env=harness_env(work), capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise HarnessError("llmops.mc.harness_timeout", seconds=timeout) from exc
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-12:]
            raise HarnessError("llmops.mc.harness_failed", code=proc.returncode, detail="\n".join(tail))
        found = read_samples(out)
        aggregate = _aggregate(out, TASK_NAME)
    progress(1.0, "lm-eval done")
    shown = [*command]  # as a reader would type it: no temporary or machine-specific paths
    shown[shown.index("--include_path") + 1] = "<tasks dir>"
    shown[shown.index("--output_path") + 1] = "<out dir>"
    shown[shown.index("--model_args") + 1] = shown[shown.index("--model_args") + 1].replace(
        str(folder), f"$LLMLAB_CACHE/models/{folder.name}"
    )
    shown[0] = "python"
    return HarnessRun(found, seconds, shown, version, text.replace(str(data), "<items.jsonl>"), aggregate)


# --- together ---------------------------------------------------------------------------------------------------


def compare(items: list[McItem], scores: list[ItemScore], harness: HarnessRun | None) -> list[ItemRow]:
    rows = []
    for item, score in zip(items, scores, strict=True):
        h = harness.items.get(item.item_id) if harness else None
        if harness is not None and h is None:
            raise HarnessError("llmops.mc.item_missing", item_id=item.item_id)
        rows.append(
            ItemRow(
                item_id=item.item_id,
                acc=score.acc,
                acc_norm=score.acc_norm,
                acc_bytes=score.acc_bytes,
                lm_eval_acc=h.acc if h else None,
                lm_eval_acc_norm=h.acc_norm if h else None,
                lm_eval_acc_bytes=h.acc_bytes if h else None,
                max_ll_diff=(
                    max(abs(a - b) for a, b in zip(score.loglikelihoods, h.loglikelihoods, strict=True)) if h else None
                ),
                same_requests=(h.requests == score.requests) if h else None,
            )
        )
    return rows


def run_mc_eval(
    items: list[McItem] | None = None,
    limit: int | None = None,
    harness: bool = True,
    role: str = DEFAULT_ROLE,
    progress: ProgressFn = null_progress,
) -> McReport:
    """Score the benchmark (the shipped items by default) ourselves and, unless `harness=False`, with
    lm-evaluation-harness; compare item by item."""
    items = [check_item(it) for it in items] if items is not None else load_items(limit=limit)
    if items and limit:
        items = items[:limit]
    if not items:
        raise InputError("llmops.mc.no_items", path="(given list)")
    ids = [it.item_id for it in items]
    if len(set(ids)) != len(ids):
        raise InputError("llmops.mc.duplicate_id", path="(given list)")
    ours_progress = _sub(progress, 0.0, 0.4 if harness else 1.0)
    scores, seconds = score_items(items, role, ours_progress)
    run = run_harness(items, role, _sub(progress, 0.4, 1.0)) if harness else None
    notes = []
    if any(math.isnan(s) for sc in scores for s in sc.loglikelihoods):
        notes.append("nan log-likelihood")
    return McReport(items, scores, compare(items, scores, run), f"{role}: {model_dir(role).name}", seconds, run, notes)


def _sub(progress: ProgressFn, low: float, high: float) -> ProgressFn:
    return lambda f, msg: progress(low + (high - low) * f, msg)


def shipped_data(report: McReport) -> dict:
    """The report as plain JSON for `assets/precomputed/ch13_mc_eval.json`."""
    return {
        "summary": report.summary(),
        "items": [
            {
                **item.to_json(),
                "loglikelihoods": [round(x, 4) for x in score.loglikelihoods],
                "char_lengths": list(score.char_lengths),
                "byte_lengths": list(score.byte_lengths),
                "token_counts": list(score.token_counts),
                "pred": score.pred,
                "pred_norm": score.pred_norm,
                "pred_bytes": score.pred_bytes,
                "lm_eval_loglikelihoods": (
                    [round(x, 4) for x in report.harness.items[item.item_id].loglikelihoods] if report.harness else None
                ),
                **row.to_json(),
            }
            for item, score, row in zip(report.items, report.scores, report.rows, strict=True)
        ],
        "task_yaml": report.harness.task_yaml if report.harness else task_yaml("<items.jsonl>"),
    }
