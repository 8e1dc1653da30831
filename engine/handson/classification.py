"""Hands-On LLM ch.4: one Korean text-classification task solved five ways, on the same split, in one table.

The task is chapter 3's: each paragraph (항) of the Constitution -> its chapter (제3장 국회, …), from
`engine.training.hf_basics.build_dataset` (stratified 80/20 split, seed 0). Chapters with fewer than 15 paragraphs
(제7장 선거관리 11, 제8장 지방자치 4, 제10장 헌법개정 6) are left out, as in chapter 3: a class with four examples
cannot be both learned and tested. That leaves 7 labels, 238 training and 60 test paragraphs.

The five methods, from "most labelled data and training" to "none at all":

1. `encoder`     an encoder trained from scratch: chapter 3's tiny BERT (engine/training/classifier.py), trained on
                 the 238 labelled paragraphs with chapter 3's own loop, from random weights. There is no pretrained
                 Korean encoder offline here (the packaged MiniLM cuts Hangul into jamo), so this is the "learn the
                 language and the task from 238 paragraphs" corner of the chapter.
2. `finetuned`   a pretrained model fine-tuned on the labels (the book's fine-tuned task-specific model): the
                 `base-ko` model, Gemma-3-270M (pretrained, multilingual; its tokenizer keeps Korean words whole),
                 as `Gemma3TextForSequenceClassification` (a linear head on the hidden state of the last real token:
                 a decoder reads left to right, so only the last token has seen the whole paragraph), with LoRA
                 adapters on the attention projections and the new head trained in full (peft, task SEQ_CLS).
3. `embed_lr`    frozen embeddings + logistic regression: the Korean morpheme encoder of chapter 10/11
                 (engine/retrieval/korean_dense.py, pretrained Kiwi vectors with a contrastive layer on top) turns
                 each paragraph into a 256-d unit vector; scikit-learn's LogisticRegression learns the labels.
                 Chosen because it is the best Korean embedder offline here (measured on this split, LR macro-F1:
                 korean_dense .75, plain mean of Kiwi vectors .60, packaged MiniLM .30).
4. `zero_shot`   no labelled data: embed a description of each label ("국회에 관한 조항: …") with the same encoder
                 and pick the label whose description is nearest (cosine) to the paragraph.
5. `generative`  no labelled data, a generative model: the `instruct` model (Qwen2.5-Coder-0.5B on the llama.cpp
                 server) reads the paragraph and the label list and answers under a JSON schema whose `enum` is the
                 label set (a grammar: it cannot answer anything else), temperature 0.

Macro-F1 and accuracy come from scikit-learn on the predicted label ids. Seconds per item are measured on the test
set; training (or the one-off setup of the method) is timed separately. The generative method runs on a stratified
subset of the test set (it costs seconds per item on 2 CPU cores); every method is also scored on that subset, so
the comparison on equal items is in `subset`.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from engine.core.errors import UserError
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.core.textinput import InputError, clean_text

METHODS = ("encoder", "finetuned", "embed_lr", "zero_shot", "generative")
FINETUNE_ROLE = "base-ko"  # Gemma-3-270M, pretrained; the registry's multilingual base model
FINETUNE_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")  # LoRA on every attention projection
MAX_TEXT_CHARS = 1000  # a paragraph of the Constitution is at most ~400 characters; the try box takes one paragraph
MAX_GENERATIVE = 60  # the whole test set

# One description per chapter for zero-shot (written from the chapter titles and what a reader knows a chapter
# covers, never from the test paragraphs). Keys are chapter numbers; a chapter left out of the split is ignored.
LABEL_DESCRIPTIONS: dict[int, str] = {
    1: "총강에 관한 조항: 국가, 주권, 영토, 국민, 정당, 국제법, 평화통일",
    2: "국민의 권리와 의무에 관한 조항: 자유, 권리, 평등, 재판을 받을 권리, 교육, 근로, 납세와 국방의 의무",
    3: "국회에 관한 조항: 국회의원, 법률안 의결, 예산안 심의, 국정감사, 회의",
    4: "정부에 관한 조항: 대통령, 국무총리, 국무위원, 국무회의, 행정각부, 감사원",
    5: "법원에 관한 조항: 대법원, 법관, 재판, 사법권",
    6: "헌법재판소에 관한 조항: 헌법재판소 재판관, 위헌법률심판, 탄핵심판, 정당해산심판, 헌법소원",
    7: "선거관리에 관한 조항: 선거관리위원회, 선거운동, 투표",
    8: "지방자치에 관한 조항: 지방자치단체, 지방의회",
    9: "경제에 관한 조항: 경제질서, 국토, 자원, 농업, 중소기업, 소비자, 무역",
    10: "헌법개정에 관한 조항: 헌법개정안 제안, 국민투표, 공고",
}


@dataclass(frozen=True)
class CompareConfig:
    min_per_class: int = 15  # chapters with fewer paragraphs are left out (chapter 3's default)
    test_fraction: float = 0.2
    seed: int = 0  # the split, the encoder's initial weights and batch order, LR, the generative subset
    encoder_epochs: int = 30  # ~10-20 s on one CPU thread; 12 (chapter 3's default) stops at macro-F1 ~.45
    finetune_epochs: int = 3  # the fine-tuned Gemma: passes over the 238 paragraphs
    finetune_max_tokens: int = 128  # a paragraph is cut to this many tokens (the longest has ~200)
    finetune_batch: int = 8
    finetune_lr: float = 1e-3  # for the adapters and the new head (LoRA takes a larger step than full tuning)
    finetune_rank: int = 8  # LoRA rank (alpha = 2 x rank)
    finetune_layers: int = 6  # adapters on the top N of Gemma's 18 layers; the rest frozen and run once (0: all)
    lr_c: float = 10.0  # inverse regularisation of the logistic regression (unit vectors need a weak penalty)
    limit_generative: int = 30  # test items the generative method classifies (≈ 1-2 s each on 2 cores)
    role: str = "instruct"

    def validate(self) -> None:
        if not 1 <= self.limit_generative <= MAX_GENERATIVE:
            raise InputError(
                "input.out_of_range", name="limit_generative", low=1, high=MAX_GENERATIVE, value=self.limit_generative
            )
        if not 1 <= self.encoder_epochs <= 100:
            raise InputError("input.out_of_range", name="encoder_epochs", low=1, high=100, value=self.encoder_epochs)
        if not 1 <= self.finetune_epochs <= 20:
            raise InputError("input.out_of_range", name="finetune_epochs", low=1, high=20, value=self.finetune_epochs)
        if not 8 <= self.finetune_max_tokens <= 512:
            raise InputError(
                "input.out_of_range", name="finetune_max_tokens", low=8, high=512, value=self.finetune_max_tokens
            )


@dataclass(frozen=True)
class Split:
    """The labelled data every method shares; ids index `labels`."""

    labels: tuple[str, ...]  # (L,) "제N장 …"
    chapters: tuple[int, ...]  # (L,) the chapter number of each label
    train_texts: tuple[str, ...]  # (N_train,)
    train_y: tuple[int, ...]  # (N_train,)
    test_texts: tuple[str, ...]  # (N_test,)
    test_y: tuple[int, ...]  # (N_test,)
    dropped: tuple[dict, ...]  # the chapters left out: {chapter_no, chapter, paragraphs}

    def short(self, i: int) -> str:
        """The label without its number ("국회"): what the generative model chooses from."""
        return self.labels[i].split(" ", 1)[1]


def load_split(cfg: CompareConfig | None = None) -> Split:
    """Chapter 3's dataset (the same call, so the same split), as plain tuples."""
    from engine.training.hf_basics import build_dataset, chapter_counts

    cfg = cfg or CompareConfig()
    dd = build_dataset(min_per_class=cfg.min_per_class, test_fraction=cfg.test_fraction, seed=cfg.seed)
    labels = tuple(dd["train"].features["label"].names)
    counts = chapter_counts()
    kept = [c for c in counts if c["paragraphs"] >= cfg.min_per_class]
    dropped = tuple(c for c in counts if c["paragraphs"] < cfg.min_per_class)
    return Split(
        labels,
        tuple(c["chapter_no"] for c in kept),
        tuple(dd["train"]["text"]),
        tuple(dd["train"]["label"]),
        tuple(dd["test"]["text"]),
        tuple(dd["test"]["label"]),
        dropped,
    )


def stratified_subset(y: list[int] | tuple[int, ...], n: int, seed: int = 0) -> list[int]:
    """`n` indices of `y`, taken round-robin over the classes (each class's items in a seeded random order), sorted.

    Every class is represented as evenly as `n` allows, and the same (y, n, seed) always gives the same items."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i in rng.permutation(len(y)).tolist():
        by_class.setdefault(int(y[i]), []).append(i)
    queues = [by_class[c] for c in sorted(by_class)]
    out: list[int] = []
    while len(out) < min(n, len(y)):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return sorted(out)


# -- metrics ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scores:
    macro_f1: float
    accuracy: float
    n: int


def scores(gold: list[int], pred: list[int], n_labels: int) -> Scores:
    """scikit-learn's macro-F1 (every label weighs the same, so a rare chapter counts as much as 정부) and accuracy."""
    from sklearn.metrics import accuracy_score, f1_score

    labels = list(range(n_labels))
    f1 = f1_score(gold, pred, labels=labels, average="macro", zero_division=0)
    return Scores(round(float(f1), 4), round(float(accuracy_score(gold, pred)), 4), len(gold))


def confusion(gold: list[int], pred: list[int], n_labels: int) -> list[list[int]]:
    """(L, L) ints: row = the true label, column = the predicted one; sums to len(gold)."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(gold, pred, labels=list(range(n_labels))).astype(int).tolist()


# -- the embedder (methods 2 and 3) ---------------------------------------------------------------------------------
def korean_embedder(progress: ProgressFn = null_progress):
    """texts -> (N, 256) unit rows: the Korean morpheme encoder of the Constitution index (chapters 10-11).

    Cached per machine; the first call on a fresh machine trains it (~1 min, self-supervised on the articles'
    text: synthetic queries, never a chapter label)."""
    from engine.core.corpus import load_constitution
    from engine.retrieval.korean_dense import load_or_train

    encoder = load_or_train(load_constitution(), progress=progress)

    def embed(texts: list[str] | tuple[str, ...]) -> np.ndarray:
        out = np.asarray(encoder.encode(list(texts)), dtype=np.float64).reshape(len(texts), -1)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    return embed


def label_descriptions(split: Split) -> list[str]:
    """(L,) the zero-shot description of each label."""
    return [LABEL_DESCRIPTIONS.get(no, f"{split.short(i)}에 관한 조항") for i, no in enumerate(split.chapters)]


def zero_shot_predict(text_vectors: np.ndarray, label_vectors: np.ndarray) -> list[int]:
    """(N, D) and (L, D) unit rows -> (N,) the index of the most similar label (cosine = dot product)."""
    return np.argmax(text_vectors @ label_vectors.T, axis=1).astype(int).tolist()


# -- the generative classifier (method 4) ---------------------------------------------------------------------------
GENERATIVE_SYSTEM = (
    "당신은 대한민국 헌법 조항을 분류합니다. 주어진 조항(항)이 헌법의 어느 장에 속하는지 다음 중 하나로 답하세요: "
    "{choices}. JSON으로만 답하세요."
)


def label_schema(choices: list[str]) -> dict:
    """A JSON schema whose only value is one of `choices`: the server turns it into a grammar, so the model cannot
    answer anything else (a free-text answer would need parsing and could name no label at all)."""
    return {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": list(choices)}},
        "required": ["label"],
        "additionalProperties": False,
    }


def generative_messages(text: str, choices: list[str]) -> list[dict]:
    return [
        {"role": "system", "content": GENERATIVE_SYSTEM.format(choices=", ".join(choices))},
        {"role": "user", "content": text},
    ]


def parse_label(answer, choices: list[str]) -> int | None:
    """The index in `choices` that `answer` names, or None: only labels from the set ever come back.

    `answer` is what the server returned: the parsed JSON object ({"label": "국회"}), or text (a server without a
    grammar, or one that answers garbage). Text is read as JSON first, then as a bare label; "제3장 국회" and "국회"
    both count. Anything else (another word, a label plus extra text, a number) is None."""
    if isinstance(answer, str):
        stripped = answer.strip()
        try:
            answer = json.loads(stripped)
        except ValueError:
            answer = {"label": stripped}
    if not isinstance(answer, dict):
        return None
    value = answer.get("label")
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    if value.startswith("제") and " " in value:  # "제3장 국회" -> "국회"
        value = value.split(" ", 1)[1]
    return choices.index(value) if value in choices else None


def generative_label(text: str, choices: list[str], role: str = "instruct", progress: ProgressFn = null_progress):
    """(index or None, raw answer) for one text; a dead server raises `ModelServerError` (a `UserError`)."""
    from engine.serving.client import structured_chat

    try:
        answer = structured_chat(
            generative_messages(text, choices), label_schema(choices), max_tokens=32, role=role, progress=progress
        )
    except UserError as exc:
        if exc.code == "server.bad_json":  # the server answered, but not JSON: an unparsed answer, not a dead server
            return None, ""
        raise
    return parse_label(answer, choices), answer


# -- trained classifiers (for the comparison and for "try") -----------------------------------------------------
@dataclass
class Classifiers:
    """What each method needs to label a new text. None for a method not trained (or unavailable)."""

    split: Split
    cfg: CompareConfig
    encoder: object | None = None  # (model, tokenizer) of the tiny BERT
    finetuned: Finetuned | None = None  # the fine-tuned Gemma
    embed: object | None = None  # texts -> (N, D) unit rows
    logreg: object | None = None  # sklearn LogisticRegression on (N, D)
    label_vectors: np.ndarray | None = None  # (L, D) for zero-shot
    train_seconds: dict[str, float] = field(default_factory=dict)
    setup_seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, UserError] = field(default_factory=dict)  # method -> why it is unavailable


def train_encoder(split: Split, cfg: CompareConfig, progress: ProgressFn = null_progress):
    """Chapter 3's tiny BERT, trained with chapter 3's loop (`train_with_loop`) on this split: (model, tokenizer)."""
    import math

    from engine.training import training_threads
    from engine.training.callbacks import CANCELLED, Monitor
    from engine.training.classifier import ClassifierConfig, prepare, train_with_loop

    ccfg = ClassifierConfig(
        epochs=cfg.encoder_epochs, seed=cfg.seed, min_per_class=cfg.min_per_class
    )  # same dataset call as load_split, so the same paragraphs in train and test
    prep = prepare(ccfg)
    if tuple(prep.labels) != split.labels or tuple(prep.raw["test"]["text"]) != split.test_texts:
        raise RuntimeError("chapter 3's dataset and this split disagree (labels or test paragraphs)")
    total = math.ceil(len(prep.dataset["train"]) / ccfg.batch_size) * ccfg.epochs
    monitor = Monitor(total, progress, label="encoder")
    with training_threads():
        model = train_with_loop(prep, ccfg, monitor)
    log = monitor.finish()
    if log.status == CANCELLED:  # a half-trained model is not scored as if it were the method
        raise Cancelled(log.message or "encoder training stopped")
    model.eval()
    return model, prep.tokenizer


def encoder_predict(encoder, texts: list[str] | tuple[str, ...], batch_size: int = 64) -> list[int]:
    """(N,) argmax of the tiny BERT's logits."""
    import torch

    from engine.training import training_threads

    model, tokenizer = encoder
    out: list[int] = []
    with torch.no_grad(), training_threads():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(
                list(texts[i : i + batch_size]),
                truncation=True,
                max_length=model.config.max_position_embeddings,
                padding=True,
                return_tensors="pt",
            )
            enc = {k: v.to(model.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            out += model(**enc).logits.argmax(-1).tolist()
    return out


@dataclass
class Finetuned:
    """The fine-tuned pretrained model: what `finetuned_predict` needs, and how its training went."""

    model: object  # peft model around a transformers *ForSequenceClassification, in eval mode
    tokenizer: object  # pads on the right (the head reads the last real token)
    max_tokens: int
    losses: list[float]  # (steps,) training loss of each batch
    trainable: int  # parameters trained (adapters + head)
    total: int  # all parameters
    adapted_layers: int  # decoder layers with adapters (the top ones)
    prefix_seconds: float  # running the frozen bottom layers once over the training paragraphs


def finetune_source(progress: ProgressFn = null_progress) -> str:
    """Where the pretrained Gemma-3-270M is read from: the safetensors directory converted once from the packaged
    GGUF (about a minute the first time on a machine, then cached), or the hub id in online mode."""
    from engine.models.loading import converted_dir, load_tokenizer
    from engine.models.registry import ROLES

    load_tokenizer(FINETUNE_ROLE, progress)  # converts the GGUF on first use; raises ModelUnavailable without it
    local = converted_dir(FINETUNE_ROLE)
    return str(local) if (local / "config.json").exists() else ROLES[FINETUNE_ROLE].hub_id


def load_sequence_classifier(source: str, n_labels: int, seed: int = 0):
    """(model, tokenizer): the pretrained decoder with a new, seeded linear head of `n_labels` outputs.

    For Gemma 3 this is `Gemma3TextForSequenceClassification`: logits = head(hidden state of the last token that is
    not padding). The tokenizer pads on the right, so a paragraph's positions are the same alone or in a batch."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.padding_side = "right"
    torch.manual_seed(seed)  # the head's initial weights
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "score.weight newly initialized": that is the point
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=n_labels, dtype=torch.float32, attn_implementation="sdpa"
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _token_ids(tokenizer, texts, max_tokens: int) -> list[list[int]]:
    """Each text's token ids (with the tokenizer's <bos>), cut to `max_tokens`; batches are padded when drawn."""
    return tokenizer(list(texts), truncation=True, max_length=max_tokens)["input_ids"]


def _pad(tokenizer, ids: list[list[int]]) -> dict:
    return tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")


def decoder_layers(model):
    """The decoder layers (an nn.ModuleList) inside a (peft-wrapped) transformers model: `….model.layers`."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.base_model.layers


def frozen_prefix_states(model, tokenizer, ids: list[list[int]], upto: int, batch_size: int = 16) -> list:
    """Each text's hidden states after the first `upto` decoder layers: a list of (len_i, hidden) tensors.

    Those layers carry no adapter and no dropout, so during fine-tuning their output for a paragraph never
    changes: computed once here, it replaces them in every epoch (`skip_frozen_layers`). The forward stops at
    layer `upto` (a hook raises), so the layers above cost nothing here."""
    import torch

    class _Stop(Exception):
        pass

    captured: dict = {}

    def grab(module, args, output):
        captured["h"] = output[0] if isinstance(output, tuple) else output
        raise _Stop

    layers = decoder_layers(model)
    device = next(model.parameters()).device
    by_length = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: list = [None] * len(ids)
    handle = layers[upto - 1].register_forward_hook(grab)
    try:
        with torch.no_grad():
            for i in range(0, len(ids), batch_size):
                chunk = by_length[i : i + batch_size]
                batch = {k: v.to(device) for k, v in _pad(tokenizer, [ids[j] for j in chunk]).items()}
                with contextlib.suppress(_Stop):  # stopped at layer `upto`, on purpose
                    model(**batch)
                for row, j in enumerate(chunk):  # right padding: a text's own positions come first
                    out[j] = captured["h"][row, : len(ids[j])].clone()
    finally:
        handle.remove()
    return out


@contextlib.contextmanager
def skip_frozen_layers(model, upto: int, states):
    """Inside the block, the model's first `upto` decoder layers are stand-ins: the lower ones pass their input
    through untouched, and layer `upto` - 1 returns `states()`, the current batch's hidden states precomputed by
    `frozen_prefix_states` (padded to the batch's length). Everything else (embedding lookup, masks, positions,
    the adapted layers, the head, the loss) runs as usual. The real layers are put back on exit."""
    import torch

    class PassThrough(torch.nn.Module):
        def forward(self, hidden_states, *args, **kwargs):
            return hidden_states

    class Precomputed(torch.nn.Module):
        def forward(self, hidden_states, *args, **kwargs):
            return states()

    layers = decoder_layers(model)
    saved = [layers[i] for i in range(upto)]
    for i in range(upto - 1):
        layers[i] = PassThrough()
    layers[upto - 1] = Precomputed()
    try:
        yield
    finally:
        for i, layer in enumerate(saved):
            layers[i] = layer


def length_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """One epoch's batches of indices: a seeded shuffle, then within each pool of 8 batches the items sorted by
    length, so a batch holds paragraphs of similar length (little padding: padding is compute spent on nothing),
    and the batches in a seeded random order. Every index appears exactly once."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(lengths), generator=gen).tolist()
    pool = 8 * batch_size
    batches: list[list[int]] = []
    for i in range(0, len(order), pool):
        chunk = sorted(order[i : i + pool], key=lambda j: lengths[j])
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    return [batches[b] for b in torch.randperm(len(batches), generator=gen).tolist()]


def train_finetuned(
    split: Split, cfg: CompareConfig, progress: ProgressFn = null_progress, source: str | None = None
) -> Finetuned:
    """Fine-tune the pretrained model on the training paragraphs: LoRA adapters (r = cfg.finetune_rank) on the
    attention projections of the top `cfg.finetune_layers` decoder layers, the new head in full, AdamW with a
    linear decay, gradient clipping at 1.0, batches of similar length drawn in a seeded order every epoch.

    The layers below the adapters are frozen, so their output is computed once (`frozen_prefix_states`) and reused
    every epoch (`skip_frozen_layers`): the same training, at the cost of the adapted layers only. Prediction runs
    the whole model. `source`: another model directory (the tests use a tiny random one)."""
    import torch

    from engine.training import train_device, training_threads
    from engine.training.callbacks import CANCELLED, Monitor
    from engine.training.lora import LoraSpec, add_lora, parameter_counts

    source = source or finetune_source(lambda f, m: progress(0.1 * f, m))
    base, tokenizer = load_sequence_classifier(source, len(split.labels), cfg.seed)
    n_layers = base.config.num_hidden_layers
    frozen = n_layers - cfg.finetune_layers if 0 < cfg.finetune_layers < n_layers else 0  # layers below adapters
    layers = tuple(range(frozen, n_layers)) if frozen else None
    spec = LoraSpec(r=cfg.finetune_rank, alpha=2 * cfg.finetune_rank, targets=FINETUNE_TARGETS)
    torch.manual_seed(cfg.seed)  # the adapters' A matrices
    with warnings.catch_warnings():  # peft calls a transformers property that transformers 5 deprecates
        warnings.simplefilter("ignore", FutureWarning)
        model = add_lora(base, spec, task_type="SEQ_CLS", layers=layers)
    device = train_device()
    model.to(device)
    counts = parameter_counts(model)
    ids = _token_ids(tokenizer, split.train_texts, cfg.finetune_max_tokens)
    lengths = [len(x) for x in ids]
    labels = torch.tensor(split.train_y)
    steps_per_epoch = len(length_batches(lengths, cfg.finetune_batch, cfg.seed))
    start = time.perf_counter()
    prefix: list = []
    current: list = []  # the batch's precomputed states, (B, T, hidden)
    if frozen:
        progress(0.02, f"finetuned: running the {frozen} frozen layers once over {len(ids)} paragraphs")
        with training_threads():
            model.eval()
            prefix = frozen_prefix_states(model, tokenizer, ids, frozen)
    prefix_seconds = time.perf_counter() - start
    total = steps_per_epoch * cfg.finetune_epochs
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.finetune_lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, (total - s) / total))
    monitor = Monitor(total, progress, label="finetuned")
    losses: list[float] = []
    step = 0
    model.train()
    skipping = skip_frozen_layers(model, frozen, lambda: current[0]) if frozen else contextlib.nullcontext()
    with training_threads(), skipping:
        for epoch in range(cfg.finetune_epochs):
            for b, chunk in enumerate(length_batches(lengths, cfg.finetune_batch, cfg.seed + epoch)):
                t0 = time.perf_counter()
                batch = {k: v.to(device) for k, v in _pad(tokenizer, [ids[j] for j in chunk]).items()}
                if frozen:
                    current[:] = [torch.nn.utils.rnn.pad_sequence([prefix[j] for j in chunk], batch_first=True)]
                loss = model(**batch, labels=labels[chunk].to(device)).loss
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
                lr = schedule.get_last_lr()[0]
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                step += 1
                losses.append(float(loss.item()))
                row = {
                    "step": step,
                    "epoch": epoch + (b + 1) / steps_per_epoch,
                    "loss": losses[-1],
                    "grad_norm": float(grad_norm),
                    "learning_rate": lr,
                    "seconds": time.perf_counter() - t0,
                }
                if not monitor.record(row):
                    break
            if not monitor.running:
                break
    log = monitor.finish()
    if log.status == CANCELLED:
        raise Cancelled(log.message or "fine-tuning stopped")
    model.eval()
    return Finetuned(
        model,
        tokenizer,
        cfg.finetune_max_tokens,
        losses,
        counts["trainable"],
        counts["total"],
        n_layers - frozen,
        round(prefix_seconds, 3),
    )


def finetuned_predict(finetuned: Finetuned, texts: list[str] | tuple[str, ...], batch_size: int = 16) -> list[int]:
    """(N,) argmax of the fine-tuned model's logits (paragraphs cut to the training length, padded on the right)."""
    import torch

    from engine.training import training_threads

    model, tokenizer = finetuned.model, finetuned.tokenizer
    device = next(model.parameters()).device
    ids = _token_ids(tokenizer, texts, finetuned.max_tokens)
    by_length = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths together: less padding
    out = [0] * len(ids)
    with torch.no_grad(), training_threads():
        for i in range(0, len(ids), batch_size):
            chunk = by_length[i : i + batch_size]
            batch = {k: v.to(device) for k, v in _pad(tokenizer, [ids[j] for j in chunk]).items()}
            for j, label in zip(chunk, model(**batch).logits.argmax(-1).tolist(), strict=True):
                out[j] = label
    return out


def train_classifiers(
    methods: tuple[str, ...] = METHODS, cfg: CompareConfig | None = None, progress: ProgressFn = null_progress
) -> Classifiers:
    """Train (or set up) each method in `methods`. The generative method needs no training: only its server.
    A method whose packaged model is missing is left out with the reason in `errors` (`predict` raises it)."""
    from sklearn.linear_model import LogisticRegression

    cfg = cfg or CompareConfig()
    cfg.validate()
    split = load_split(cfg)
    out = Classifiers(split, cfg)
    if "encoder" in methods:
        start = time.perf_counter()
        out.encoder = train_encoder(split, cfg, lambda f, m: progress(0.15 * f, m))
        out.train_seconds["encoder"] = time.perf_counter() - start
    if "finetuned" in methods:
        from engine.models.registry import ModelUnavailable

        start = time.perf_counter()
        try:
            source = finetune_source(lambda f, m: progress(0.15 + 0.02 * f, m))
        except ModelUnavailable as exc:  # the packaged Gemma is missing: this method only is unavailable
            out.errors["finetuned"] = exc
        else:
            out.setup_seconds["finetuned"] = time.perf_counter() - start  # converting the GGUF, once per machine
            start = time.perf_counter()
            out.finetuned = train_finetuned(split, cfg, lambda f, m: progress(0.17 + 0.28 * f, m), source=source)
            out.train_seconds["finetuned"] = time.perf_counter() - start
    if "embed_lr" in methods or "zero_shot" in methods:
        progress(0.45, "embedder: loading the Korean morpheme encoder")
        start = time.perf_counter()
        out.embed = korean_embedder(lambda f, m: progress(0.45 + 0.05 * f, m))
        out.embed(["헌법"])  # the first call loads Kiwi's model (~2 s): setup, not the methods' training
        out.setup_seconds["embed_lr"] = out.setup_seconds["zero_shot"] = time.perf_counter() - start
    if "embed_lr" in methods:
        progress(0.5, "embeddings + logistic regression: fitting")
        start = time.perf_counter()
        x = out.embed(split.train_texts)  # (N_train, D)
        out.logreg = LogisticRegression(C=cfg.lr_c, max_iter=2000, random_state=cfg.seed).fit(x, split.train_y)
        out.train_seconds["embed_lr"] = time.perf_counter() - start
    if "zero_shot" in methods:
        start = time.perf_counter()
        out.label_vectors = out.embed(label_descriptions(split))  # (L, D)
        out.train_seconds["zero_shot"] = time.perf_counter() - start  # no training: L descriptions embedded
    if "generative" in methods:
        out.train_seconds["generative"] = 0.0
    return out


def predict(clf: Classifiers, method: str, texts: list[str] | tuple[str, ...], progress=null_progress) -> list[int]:
    """(N,) label ids; for `generative` an unparsable answer becomes -1 (see `compare_methods` for how it counts)."""
    if method in clf.errors:  # its model is missing on this machine
        raise clf.errors[method]
    if method == "encoder":
        return encoder_predict(clf.encoder, texts)
    if method == "finetuned":
        return finetuned_predict(clf.finetuned, texts)
    if method == "embed_lr":
        return clf.logreg.predict(clf.embed(texts)).astype(int).tolist()
    if method == "zero_shot":
        return zero_shot_predict(clf.embed(texts), clf.label_vectors)
    if method == "generative":
        choices = [clf.split.short(i) for i in range(len(clf.split.labels))]
        out = []
        for k, text in enumerate(texts):
            index, _ = generative_label(text, choices, role=clf.cfg.role)
            out.append(-1 if index is None else index)
            progress((k + 1) / len(texts), f"generative {k + 1}/{len(texts)}")
        return out
    raise InputError("input.unknown_choice", name="method", value=method, choices=", ".join(METHODS))


# -- the comparison --------------------------------------------------------------------------------------------
@dataclass
class MethodResult:
    method: str
    status: str  # "ok" or "unavailable" (then the scores are None and `error` says why)
    n_test: int = 0
    macro_f1: float | None = None
    accuracy: float | None = None
    seconds_per_item: float | None = None
    train_seconds: float | None = None  # training / fitting (encoder, fine-tuning, LR) or embedding the descriptions
    setup_seconds: float | None = None  # loading the embedder, converting Gemma, starting the server: paid once
    items: list[int] = field(default_factory=list)  # (n_test,) test indices classified
    predictions: list[int] = field(default_factory=list)  # (n_test,) label ids
    confusion: list[list[int]] = field(default_factory=list)  # (L, L) rows true, columns predicted
    unparsed: int = 0  # generative answers that named no label (counted as the fallback label; 0 with a grammar)
    subset: dict | None = None  # scores on the generative subset, when that is smaller than the test set
    error_code: str | None = None
    error: str | None = None  # the English message
    error_fmt: dict | None = None  # the message's values as text (a page translates error_code with them)

    def row(self) -> dict:
        """The CLI's table row."""
        return {
            "method": self.method,
            "macro_f1": self.macro_f1,
            "accuracy": self.accuracy,
            "seconds_per_item": self.seconds_per_item,
            "train_seconds": self.train_seconds,
            "n_test": self.n_test,
            "status": self.status,
            "subset": self.subset,
            "error_code": self.error_code,
            "error": self.error,
        }


@dataclass
class Comparison:
    labels: list[str]  # (L,)
    methods: list[MethodResult]
    n_train: int
    n_test: int
    dropped: list[dict]  # chapters left out (too few paragraphs)
    generative_items: list[int]  # the stratified test subset the generative method classifies
    seed: int
    classifiers: Classifiers | None = None  # the trained classifiers (not serialized)

    def rows(self) -> list[dict]:
        return [m.row() for m in self.methods]

    def result(self, method: str) -> MethodResult | None:
        return next((m for m in self.methods if m.method == method), None)

    def as_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "classifiers"}
        d["rows"] = self.rows()
        return d

    @classmethod
    def from_dict(cls, data: dict) -> Comparison:
        methods = [MethodResult(**m) for m in data["methods"]]
        keep = {k: data[k] for k in ("labels", "n_train", "n_test", "dropped", "generative_items", "seed")}
        return cls(methods=methods, **keep)


def parse_methods(text: str | None) -> tuple[str, ...]:
    """Parse "encoder,zero_shot" -> ("encoder", "zero_shot") in the table's order; None or "" -> all of them."""
    if not text or not text.strip():
        return METHODS
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in METHODS]
    if bad or not names:
        raise InputError("input.unknown_choice", name="methods", value=",".join(bad), choices=",".join(METHODS))
    return tuple(m for m in METHODS if m in names)


def _unavailable(method: str, exc: UserError, n: int) -> MethodResult:
    fmt = {k: str(v) for k, v in exc.fmt.items()}
    return MethodResult(method, "unavailable", n_test=n, error_code=exc.code, error=str(exc), error_fmt=fmt)


def compare_methods(
    methods: tuple[str, ...] = METHODS, cfg: CompareConfig | None = None, progress: ProgressFn = null_progress
) -> Comparison:
    """Train the chosen methods and score each on the test split. A method whose model cannot run (the generative
    one without a server) is reported as unavailable with the reason; the others still run."""
    from engine.models.registry import ModelUnavailable
    from engine.serving.client import ModelServerError

    cfg = cfg or CompareConfig()
    cfg.validate()
    clf = train_classifiers(tuple(m for m in methods if m != "generative"), cfg, progress)
    split = clf.split
    n_labels, gold_all = len(split.labels), list(split.test_y)
    gen_items = stratified_subset(split.test_y, cfg.limit_generative, cfg.seed)
    fallback = int(np.bincount(split.train_y).argmax())  # the most frequent training label
    results: list[MethodResult] = []
    for method in methods:
        items = gen_items if method == "generative" else list(range(len(gold_all)))
        texts = [split.test_texts[i] for i in items]
        gold = [gold_all[i] for i in items]
        setup = clf.setup_seconds.get(method)
        try:
            if method == "generative":
                from engine.serving.client import resolve_endpoint

                progress(0.55, "generative: starting the model server")
                start = time.perf_counter()
                resolve_endpoint(role=cfg.role)  # the server's start is setup, not per-item time
                setup = time.perf_counter() - start
            start = time.perf_counter()
            pred = predict(clf, method, texts, lambda f, m: progress(0.55 + 0.45 * f, m))
            per_item = (time.perf_counter() - start) / max(1, len(texts))
        except (ModelServerError, ModelUnavailable) as exc:
            results.append(_unavailable(method, exc, len(items)))
            continue
        unparsed = sum(p < 0 for p in pred)
        pred = [fallback if p < 0 else p for p in pred]
        s = scores(gold, pred, n_labels)
        results.append(
            MethodResult(
                method,
                "ok",
                n_test=len(items),
                macro_f1=s.macro_f1,
                accuracy=s.accuracy,
                seconds_per_item=round(per_item, 5),
                train_seconds=round(clf.train_seconds.get(method, 0.0), 3),
                setup_seconds=None if setup is None else round(setup, 3),
                items=items,
                predictions=pred,
                confusion=confusion(gold, pred, n_labels),
                unparsed=unparsed,
            )
        )
    # every method on the generative subset too, so the numbers on equal items sit side by side
    if "generative" in methods and len(gen_items) < len(gold_all):
        for r in results:
            if r.status == "ok":
                by_item = dict(zip(r.items, r.predictions, strict=True))
                sub = scores([gold_all[i] for i in gen_items], [by_item[i] for i in gen_items], n_labels)
                r.subset = asdict(sub)
    progress(1.0, "done")
    return Comparison(
        list(split.labels),
        results,
        len(split.train_texts),
        len(split.test_texts),
        [dict(d) for d in split.dropped],
        gen_items,
        cfg.seed,
        clf,
    )


# -- one sentence, every method ("try") ---------------------------------------------------------------------------
def check_text(text: str | None) -> str:
    """A sentence to classify: non-empty, at most MAX_TEXT_CHARS (typed errors the page translates)."""
    cleaned = clean_text(text, max_chars=10 * MAX_TEXT_CHARS, allow_empty=True)  # NFC, no control characters
    body = cleaned.text.strip()
    if not body:
        raise InputError("handson.empty_text")
    if len(body) > MAX_TEXT_CHARS:  # refused, not cut: half a paragraph may belong to another chapter
        raise InputError("handson.text_too_long", chars=cleaned.original_chars, limit=MAX_TEXT_CHARS)
    return body


@dataclass
class TextLabel:
    method: str
    label: str | None  # None when the method is unavailable or the answer named no label
    status: str  # "ok", "unparsed" or "unavailable"
    error: str | None = None
    error_code: str | None = None
    seconds: float = 0.0
    error_fmt: dict | None = None


def classify_text(clf: Classifiers, text: str, methods: tuple[str, ...] | None = None) -> list[TextLabel]:
    """Each available method's label for one text."""
    from engine.models.registry import ModelUnavailable
    from engine.serving.client import ModelServerError

    text = check_text(text)
    out = []
    trained = {
        "encoder": clf.encoder,
        "finetuned": clf.finetuned,
        "embed_lr": clf.logreg,
        "zero_shot": clf.label_vectors,
    }
    for method in methods or METHODS:
        if method != "generative" and method not in clf.errors and trained.get(method) is None:
            continue
        start = time.perf_counter()
        try:
            (index,) = predict(clf, method, [text])
        except (ModelServerError, ModelUnavailable) as exc:
            fmt = {k: str(v) for k, v in exc.fmt.items()}
            out.append(TextLabel(method, None, "unavailable", str(exc), exc.code, error_fmt=fmt))
            continue
        label = clf.split.labels[index] if index >= 0 else None
        out.append(TextLabel(method, label, "ok" if label else "unparsed", seconds=time.perf_counter() - start))
    return out
