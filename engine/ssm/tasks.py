"""The Mamba paper's two synthetic tasks, as seeded batch generators for a causal language model.

Both tasks ask the model to remember a token seen far back and to ignore everything else, which is exactly what a
time-invariant SSM (S4: the same A, B, C at every position) cannot do and a selective one (Mamba: B, C, Δ depend on
the token) can. One vocabulary serves both (vocab_size V, 16 by default):

    0 = BLANK (the noise of selective copying), 1 = MARKER (the "answer now" token), 2 .. V-1 = data tokens

Selective copying (length L, K data tokens):

    inputs   [. . a . . . b . c . . . . d . . ... . | M M M M]     the first L-K positions: blanks, with the K data
    targets  [- - - - - - - - - - - - - - - - ... - | a b c d]     tokens at random places; then K markers

  The logits at the i-th marker must predict the i-th data token (targets are -100 elsewhere: the loss and the
  accuracy count the K answer positions only). Unlike plain copying the spacing is random, so a fixed convolution
  kernel cannot do it: the model has to decide per token what to keep.

Induction heads (length L):

    inputs   [x x x x M v x x x ... x x M]     random data tokens; once, the MARKER followed by a value v;
    targets  [- - - - - - - - - ... - - v]     at the end the MARKER again: the model must answer v

Every batch is a `TaskBatch` of (B, L) tensors; the same seed gives the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.core.errors import UserError

BLANK, MARKER, FIRST_DATA = 0, 1, 2
IGNORE = -100  # cross_entropy's ignore_index: positions that are not answers
TASKS = ("selective_copy", "induction")
MAX_LENGTH = 8192  # as MambaLM: longer sequences are refused (memory), not attempted


@dataclass(frozen=True)
class TaskSpec:
    """Which task and its sizes (the defaults are the ones the chapter trains with)."""

    name: str = "selective_copy"
    vocab_size: int = 16
    n_data: int = 4  # K: data tokens to copy (selective copying only)

    @property
    def n_answers(self) -> int:
        return self.n_data if self.name == "selective_copy" else 1

    @property
    def min_length(self) -> int:
        # selective copying: room for K data tokens plus at least as many blanks, then K markers
        return 3 * self.n_data if self.name == "selective_copy" else 4


@dataclass
class TaskBatch:
    """One batch: what the model reads, what it must predict, and where the answers are."""

    inputs: torch.Tensor  # (B, L) token ids
    targets: torch.Tensor  # (B, L) the token the logits at each position must predict; IGNORE where no answer
    spec: TaskSpec

    @property
    def answer_mask(self) -> torch.Tensor:
        return self.targets != IGNORE  # (B, L) bool: K (or 1) True per row

    @property
    def answers(self) -> torch.Tensor:
        return self.targets[self.answer_mask].view(self.inputs.shape[0], -1)  # (B, K)


def check_spec(spec: TaskSpec, length: int) -> None:
    """Refuse sizes the generators cannot honour, with a code the page translates."""
    if spec.name not in TASKS:
        raise UserError("input.unknown_choice", name="task", value=spec.name, choices=", ".join(TASKS))
    if not isinstance(spec.vocab_size, int) or not 4 <= spec.vocab_size <= 1024:
        raise UserError("input.out_of_range", name="vocab_size", low=4, high=1024, value=spec.vocab_size)
    if spec.name == "selective_copy" and not 1 <= spec.n_data <= 64:
        raise UserError("input.out_of_range", name="n_data", low=1, high=64, value=spec.n_data)
    if not isinstance(length, int) or isinstance(length, bool) or not spec.min_length <= length <= MAX_LENGTH:
        raise UserError("ssm.task.bad_length", task=spec.name, value=length, low=spec.min_length, high=MAX_LENGTH)


def selective_copy_batch(
    batch_size: int, length: int, spec: TaskSpec = TaskSpec(), generator: torch.Generator | None = None
) -> TaskBatch:
    """Blanks with K data tokens at random sorted places, then K markers that must be answered in order."""
    check_spec(spec, length)
    k, context = spec.n_data, length - spec.n_data
    data = torch.randint(FIRST_DATA, spec.vocab_size, (batch_size, k), generator=generator)  # (B, K)
    # K distinct random places in the context, kept in order so the answer order is the reading order
    places = torch.rand(batch_size, context, generator=generator).argsort(dim=1)[:, :k].sort(dim=1).values  # (B, K)
    inputs = torch.full((batch_size, length), BLANK, dtype=torch.long)
    inputs.scatter_(1, places, data)
    inputs[:, context:] = MARKER
    targets = torch.full_like(inputs, IGNORE)
    targets[:, context:] = data  # the logits at marker i predict data token i
    return TaskBatch(inputs, targets, spec)


def induction_batch(
    batch_size: int, length: int, spec: TaskSpec = TaskSpec(name="induction"), generator: torch.Generator | None = None
) -> TaskBatch:
    """Random data tokens with one MARKER→value pair somewhere; the last token is MARKER and must be answered."""
    check_spec(spec, length)
    inputs = torch.randint(FIRST_DATA, spec.vocab_size, (batch_size, length), generator=generator)  # (B, L)
    value = torch.randint(FIRST_DATA, spec.vocab_size, (batch_size,), generator=generator)  # (B,)
    where = torch.randint(0, length - 2, (batch_size,), generator=generator)  # the pair fits before the last token
    rows = torch.arange(batch_size)
    inputs[rows, where] = MARKER
    inputs[rows, where + 1] = value
    inputs[:, -1] = MARKER
    targets = torch.full_like(inputs, IGNORE)
    targets[:, -1] = value
    return TaskBatch(inputs, targets, spec)


def make_batch(spec: TaskSpec, batch_size: int, length: int, seed: int | None = None, generator=None) -> TaskBatch:
    """A batch of `spec`'s task; a `seed` (or a running `generator`) makes it reproducible."""
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
    check_spec(spec, length)
    if spec.name == "selective_copy":
        return selective_copy_batch(batch_size, length, spec, generator)
    return induction_batch(batch_size, length, spec, generator)


def answer_loss(logits: torch.Tensor, batch: TaskBatch) -> torch.Tensor:
    """Cross-entropy on the answer positions only (the noise itself is unpredictable and not the task)."""
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch.targets.reshape(-1))


@dataclass(frozen=True)
class Accuracy:
    token: float  # share of answer tokens whose argmax is right
    sequence: float  # share of sequences with every answer token right
    n_sequences: int


def answer_accuracy(logits: torch.Tensor, batch: TaskBatch) -> Accuracy:
    """Argmax accuracy on the answer positions: per token and per whole sequence."""
    mask = batch.answer_mask  # (B, L)
    right = (logits.argmax(dim=-1) == batch.targets) & mask  # (B, L)
    per_row = right.sum(dim=1)  # (B,)
    need = mask.sum(dim=1)  # (B,)
    return Accuracy(
        token=float(per_row.sum() / need.sum()),
        sequence=float((per_row == need).float().mean()),
        n_sequences=int(mask.shape[0]),
    )
