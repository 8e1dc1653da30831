"""Chapter 7: knowledge distillation — a small student learns from `chat`'s soft labels or from hard labels.

The task is next-token prediction. The teacher (SmolLM2-135M, reading the whole left context) gives a full
probability distribution at every position; the student (one hidden layer over the last 3 tokens, borrowing the
teacher's frozen embedding rows as DistilBERT borrows the teacher's layers) is trained either on the token that
really comes next (hard labels, cross-entropy) or on the teacher's distribution softened by a temperature T
(soft labels, KL · T², Hinton et al. 2015, arXiv:1503.02531). Both students start from the same weights and see
the same positions; essays they never saw decide. The essays were written by the teacher itself
(assets/distillation_corpus.yaml), so a hard label is one sample from the teacher and a soft label is the whole
distribution it was drawn from: the comparison isolates how much more a distribution teaches than one sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from engine.core.assets import asset
from engine.core.progress import ProgressFn, null_progress
from engine.core.textinput import InputError
from engine.models.loading import LoadedLM

CORPUS = asset("distillation_corpus.yaml")
TRAIN_ESSAYS = 6  # essays 1-6 train, 7-8 are held out
MAX_EPOCHS = 1000
MAX_SECONDS = 60.0  # the training loop stops itself here, whatever the settings


@lru_cache(maxsize=1)
def corpus() -> dict:
    return yaml.safe_load(CORPUS.read_text(encoding="utf-8"))


def distillation_docs() -> tuple[list[str], list[str]]:
    """(training essays, held-out essays) from assets/distillation_corpus.yaml."""
    essays = [e["text"] for e in corpus()["essays"]]
    return essays[:TRAIN_ESSAYS], essays[TRAIN_ESSAYS:]


@dataclass
class Split:
    ids: list[torch.Tensor]  # per document: (T,) the text as vocab indices
    teacher_logits: list[torch.Tensor]  # per document: (T-1, V) teacher logits for the next token, vocab columns

    @property
    def positions(self) -> int:
        return sum(len(x) - 1 for x in self.ids)


@dataclass
class TeacherData:
    """Documents tokenized, with the teacher's next-token logits restricted to the documents' own vocabulary."""

    vocab: list[int]  # model token ids that occur in the documents; the student predicts an index into this list
    labels: list[str]  # the visible piece of each vocab entry
    embeddings: torch.Tensor  # (V, d) the teacher's input embedding rows for the vocab (frozen in the student)
    train: Split
    test: Split
    coverage: float  # mean teacher probability inside the vocabulary (the rest is renormalized away)
    teacher_seconds: float


@torch.no_grad()
def teacher_targets(lm: LoadedLM, train_docs: list[str], test_docs: list[str], max_tokens: int = 1024) -> TeacherData:
    """One teacher pass per document: its logits at every position, kept for the documents' tokens."""
    from engine.lm.language_model import visible

    start = time.perf_counter()
    docs = [lm.tokenizer(d, add_special_tokens=True)["input_ids"][:max_tokens] for d in train_docs + test_docs]
    if any(len(d) < 8 for d in docs) or not train_docs or not test_docs:
        raise InputError("compression.distill_short_docs")
    full = [lm.model(torch.tensor([d], device=lm.device)).logits[0, :-1].float().cpu() for d in docs]
    vocab = sorted({t for d in docs for t in d})
    index = {tok: i for i, tok in enumerate(vocab)}
    cols = torch.tensor(vocab)
    coverage = float(torch.cat([f.softmax(-1)[:, cols].sum(-1) for f in full]).mean())
    labels = [visible(lm.tokenizer.decode([t])) for t in vocab]
    emb = lm.model.get_input_embeddings().weight.detach().float().cpu()[cols]
    ids = [torch.tensor([index[t] for t in d]) for d in docs]
    logits = [f[:, cols] for f in full]
    n = len(train_docs)
    return TeacherData(
        vocab,
        labels,
        emb,
        Split(ids[:n], logits[:n]),
        Split(ids[n:], logits[n:]),
        coverage,
        time.perf_counter() - start,
    )


class TinyStudent(nn.Module):
    """The last `context` tokens through the teacher's frozen embeddings, one tanh layer, logits over the vocab."""

    def __init__(self, embeddings: torch.Tensor, context: int = 3, hidden: int = 64):
        super().__init__()
        vocab_size, dim = embeddings.shape
        self.context = context
        pad = torch.zeros(1, dim)  # the extra row pads positions before a document starts
        self.embed = nn.Embedding.from_pretrained(torch.cat([embeddings, pad]), freeze=True)
        self.hidden = nn.Linear(context * dim, hidden)
        self.out = nn.Linear(hidden, vocab_size)

    def features(self, ctx: torch.Tensor) -> torch.Tensor:  # (N, context) -> (N, context * d), fixed
        return self.embed(ctx).flatten(1)

    def head(self, feats: torch.Tensor) -> torch.Tensor:  # (N, context * d) -> (N, V), trained
        return self.out(torch.tanh(self.hidden(feats)))

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:  # (N, context) -> (N, V)
        return self.head(self.features(ctx))

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def contexts(ids: torch.Tensor, context: int, pad: int) -> torch.Tensor:
    """For each position t (predicting token t+1): the tokens t-context+1 … t, left-padded. (T-1, context)."""
    padded = torch.cat([torch.full((context - 1,), pad, dtype=ids.dtype), ids])
    return torch.stack([padded[t : t + context] for t in range(len(ids) - 1)])


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher_T ‖ student_T) · T²: T > 1 exposes the teacher's ranking of the wrong answers ('dark
    knowledge'); T² keeps the gradient size comparable across temperatures (Hinton et al. 2015)."""
    t = temperature
    return (
        F.kl_div(
            F.log_softmax(student_logits / t, -1),
            F.log_softmax(teacher_logits / t, -1),
            log_target=True,
            reduction="batchmean",
        )
        * t
        * t
    )


@dataclass
class EpochStats:
    epoch: int
    student: str  # "soft" | "hard"
    train_loss: float
    test_accuracy: float  # student's top-1 == the real next token
    test_agreement: float  # student's top-1 == the teacher's top-1
    test_nll: float  # mean -log p(real next token): how surprised the student is on unseen text


@dataclass
class DistillResult:
    history: list[EpochStats]
    final: dict[str, EpochStats]  # student -> last epoch's stats
    teacher_accuracy: float  # the teacher's own top-1 accuracy on the held-out positions (within the vocab)
    student_params: int  # trained parameters
    student_params_total: int  # including the frozen embedding rows borrowed from the teacher
    teacher_params: int
    vocab_size: int
    train_positions: int
    test_positions: int
    coverage: float
    seconds: float
    cancelled: bool = False
    notes: list[str] = field(default_factory=list)


def _stack(split: Split, context: int, pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.cat([contexts(d, context, pad) for d in split.ids])
    y = torch.cat([d[1:] for d in split.ids])
    return x, y, torch.cat(split.teacher_logits)


def train_students(
    data: TeacherData,
    *,
    epochs: int = 100,
    temperature: float = 1.0,
    alpha: float = 1.0,
    context: int = 3,
    lr: float = 0.01,
    seed: int = 0,
    teacher_params: int = 0,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
) -> DistillResult:
    """Train a 'hard' student (cross-entropy on the real next token) and a 'soft' one (α·KD + (1−α)·CE) side by
    side from the same initial weights; evaluate both on the held-out documents after every epoch."""
    if not 1 <= epochs <= MAX_EPOCHS:
        raise InputError("compression.distill_epochs", limit=MAX_EPOCHS, value=epochs)
    if not 0.5 <= temperature <= 20:
        raise InputError("compression.distill_temperature", value=temperature)
    if not 0 <= alpha <= 1:
        raise InputError("compression.distill_alpha", value=alpha)
    if not 1 <= context <= 8:
        raise InputError("compression.distill_context", value=context)
    start = time.perf_counter()
    vocab_size = len(data.vocab)
    x_tr, y_tr, t_tr = _stack(data.train, context, pad=vocab_size)
    x_te, y_te, t_te = _stack(data.test, context, pad=vocab_size)
    teacher_top = t_te.argmax(-1)
    torch.manual_seed(seed)
    init = TinyStudent(data.embeddings, context)
    students = {"soft": TinyStudent(data.embeddings, context), "hard": TinyStudent(data.embeddings, context)}
    for s in students.values():
        s.load_state_dict(init.state_dict())  # same starting point: only the labels differ
    with torch.no_grad():  # the embeddings are frozen: look the context up once, not every epoch
        f_tr, f_te = init.features(x_tr), init.features(x_te)
    optims = {k: torch.optim.Adam([p for p in s.parameters() if p.requires_grad], lr=lr) for k, s in students.items()}
    history: list[EpochStats] = []
    cancelled = False
    notes = []
    for epoch in range(1, epochs + 1):
        if should_stop is not None and should_stop():
            cancelled = True
            break
        if time.perf_counter() - start > MAX_SECONDS:
            notes.append(f"stopped after {epoch - 1} epochs: the {MAX_SECONDS:.0f} s limit was reached")
            break
        for name, student in students.items():
            student.train()
            logits = student.head(f_tr)
            ce = F.cross_entropy(logits, y_tr)
            if name == "hard":
                loss = ce
            else:
                loss = alpha * distillation_loss(logits, t_tr, temperature) + (1 - alpha) * ce
            optims[name].zero_grad()
            loss.backward()
            optims[name].step()
            history.append(_evaluate(student, name, epoch, float(loss.detach()), f_te, y_te, teacher_top))
        progress(epoch / epochs, f"epoch {epoch}/{epochs}")
    final = {}
    for rec in history:
        final[rec.student] = rec
    return DistillResult(
        history,
        final,
        float((teacher_top == y_te).float().mean()),
        init.trainable_parameters(),
        sum(p.numel() for p in init.parameters()),
        teacher_params,
        vocab_size,
        len(y_tr),
        len(y_te),
        data.coverage,
        time.perf_counter() - start,
        cancelled,
        notes,
    )


@torch.no_grad()
def _evaluate(student, name, epoch, loss, f_te, y_te, teacher_top) -> EpochStats:
    student.eval()
    logits = student.head(f_te)
    top = logits.argmax(-1)
    nll = float(F.cross_entropy(logits, y_te))
    return EpochStats(
        epoch, name, loss, float((top == y_te).float().mean()), float((top == teacher_top).float().mean()), nll
    )


def distill(
    lm: LoadedLM,
    data: TeacherData | None = None,
    progress: ProgressFn = null_progress,
    should_stop: Callable[[], bool] | None = None,
    **kwargs,
) -> DistillResult:
    """Teacher pass over the shipped essays (unless `data` is given), then both students (see train_students)."""
    if data is None:
        progress(0.0, "the teacher reads the essays")
        data = teacher_targets(lm, *distillation_docs())
    teacher_params = sum(p.numel() for p in lm.model.parameters())
    return train_students(data, teacher_params=teacher_params, progress=progress, should_stop=should_stop, **kwargs)
