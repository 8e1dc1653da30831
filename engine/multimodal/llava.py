"""A LLaVA-style model (book 14.4): a vision tower -> an MLP projector -> a frozen language model.

    image (28×28) ─ vision tower ─ N feature vectors (N, D_v) ─ projector (Linear, GELU, Linear) ─ (N, D_lm)
    text  "<image> 이 그림은 무엇인가요?" ─ token ids, <image> = N placeholder slots ─ embedding table ─ (T, D_lm)
    splice: walk the token list; a placeholder slot takes the next image vector, any other token its embedding row
    -> inputs_embeds (T, D_lm) -> the frozen LM (SmolLM2-135M-Instruct, the `chat` role) -> next-token logits

Only the projector is trained (and, with the small-CNN tower, the tower): stage 1 on image–caption pairs (" A photo
of a coat." / " 이 그림은 코트입니다."), stage 2 on instruction pairs ("What is this?" -> " coat" /
"이 그림은 무엇인가요?" -> "코트"). English is the default: SmolLM2's tokenizer spends ~25 byte tokens on a short
Korean sentence, 5× the English cost on 2 CPU cores. The LM never changes; what is learned is how to write an image
as a few "words" the LM already reads. `compare_with_transformers` shows the splice is the same merge as
transformers' LlavaForConditionalGeneration (same inputs_embeds, same logits).

Placeholders: the original LLaVA code marks the image with id -200 (IMAGE_TOKEN_INDEX), never a vocabulary id; here
each image is expanded to N placeholder ids before the splice (as transformers' processor does with "<image>").
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.core.assets import asset
from engine.core.progress import Cancelled, ProgressFn, null_progress
from engine.multimodal.gen_errors import GenerationError, check_number

IMAGE_TOKEN = -200  # LLaVA's IMAGE_TOKEN_INDEX: a placeholder id outside every vocabulary
CHECKPOINT = "llava_projector.pt"
TOWERS = ("auto", "clip", "cnn", "random_cnn")
LANGS = ("en", "ko")
# The prompts. SmolLM2's tokenizer writes Korean as bytes (a short Korean sentence is ~25 tokens, the English one ~5),
# and every token costs a forward and backward pass through the frozen LM, so English is the default on 2 cores.
QUESTION = {"en": "What is this?", "ko": "이 그림은 무엇인가요?"}
CAPTION = {"en": " A photo of a {label}.", "ko": " 이 그림은 {label}입니다."}


class MLPProjector(nn.Module):
    """LLaVA-1.5's projector: Linear -> GELU -> Linear (named as in transformers' LlavaMultiModalProjector)."""

    def __init__(self, vision_dim: int, text_dim: int, bias: bool = True):
        super().__init__()
        self.linear_1 = nn.Linear(vision_dim, text_dim, bias=bias)
        self.act = nn.GELU()
        self.linear_2 = nn.Linear(text_dim, text_dim, bias=bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (B, N, D_v) -> (B, N, D_lm)
        return self.linear_2(self.act(self.linear_1(features)))


def splice(
    input_ids: torch.Tensor, embed: nn.Module, image_features: torch.Tensor, image_token_id: int
) -> torch.Tensor:
    """inputs_embeds: each placeholder position takes the next image vector (in reading order, image after image),
    every other position its row of the embedding table.

    input_ids (B, T); image_features (K, D) with K = the number of placeholders in the whole batch (or (B_img, N, D),
    flattened). Written as a loop over positions because that is what it means; equal to
    transformers' `inputs_embeds.masked_scatter(mask, image_features)`."""
    feats = image_features.reshape(-1, image_features.shape[-1])  # (K, D)
    is_image = input_ids == image_token_id  # (B, T)
    count = int(is_image.sum())
    if count != feats.shape[0]:
        raise GenerationError("mmgen.image_tokens_mismatch", tokens=count, features=int(feats.shape[0]))
    safe = input_ids.masked_fill(is_image, 0)  # a placeholder has no row in the table: look up 0, then replace
    text = embed(safe)  # (B, T, D)
    rows, k = [], 0
    for b in range(input_ids.shape[0]):
        seq = []
        for i in range(input_ids.shape[1]):
            if is_image[b, i]:
                seq.append(feats[k].to(text.dtype))
                k += 1
            else:
                seq.append(text[b, i])
        rows.append(torch.stack(seq))
    return torch.stack(rows)  # (B, T, D)


@dataclass
class SpliceRow:
    position: int
    token: str  # the token as text, or "<image:j>" for the j-th image vector
    kind: str  # "text" or "image"
    token_id: int | None  # None for an image slot
    source: str  # "embedding row 1234" or "projector(image feature j)"
    norm: float  # ‖vector‖: image vectors often sit at another scale than word embeddings
    head: list[float] = field(default_factory=list)  # the first few coordinates


def splice_view(
    input_ids: list[int], tokenizer, embeds: torch.Tensor, image_token_id: int = IMAGE_TOKEN, head: int = 4
) -> list[SpliceRow]:
    """One row per position of one spliced sequence (embeds (T, D)): which token, and where its vector came from."""
    rows, j = [], 0
    for pos, tid in enumerate(input_ids):
        vec = embeds[pos]
        if tid == image_token_id:
            token, kind, src, tid_out = f"<image:{j}>", "image", f"projector(image feature {j})", None
            j += 1
        else:
            token, kind, src, tid_out = tokenizer.convert_ids_to_tokens(int(tid)), "text", f"embedding row {tid}", tid
            token = tokenizer.convert_tokens_to_string([token]) or token
        rows.append(
            SpliceRow(
                pos, token, kind, tid_out, src, round(float(vec.norm()), 3), [round(float(v), 4) for v in vec[:head]]
            )
        )
    return rows


class ClipTower(nn.Module):
    """The chapter's trained CLIP image tower (helper C's checkpoint assets/multimodal/clip_fashion.pt), frozen: its
    last conv feature map (B, 4w, 3, 3) pooled to grid×grid gives grid² patch vectors, as LLaVA reads CLIP's patch
    features rather than its one pooled embedding."""

    def __init__(self, path: Path, grid: int = 2):
        super().__init__()
        from engine.multimodal.clip import ImageTower

        body = torch.load(path, map_location="cpu", weights_only=True)
        tower = ImageTower(int(body["width"]), int(body["embed_dim"]))
        prefix = "image_tower."
        tower.load_state_dict({k[len(prefix) :]: v for k, v in body["state_dict"].items() if k.startswith(prefix)})
        self.features = tower.features
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.grid, self.dim = grid, 4 * int(body["width"])
        self.features.eval()

    def train(self, mode: bool = True):  # frozen: BatchNorm keeps its running statistics
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28) in [0, 1] -> (B, grid², 4w)
        h = F.adaptive_avg_pool2d(self.features(images), self.grid)  # (B, 4w, grid, grid)
        return h.flatten(2).transpose(1, 2)


def clip_checkpoint() -> Path:
    return asset("multimodal", "clip_fashion.pt")


class CNNTower(nn.Module):
    """A small vision tower for 28×28 images: two strided convs -> a grid×grid feature map -> grid² vectors."""

    def __init__(self, width: int = 64, grid: int = 2):
        super().__init__()
        self.grid, self.dim = grid, width
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding=1),  # 14×14
            nn.GELU(),
            nn.Conv2d(32, width, 3, stride=2, padding=1),  # 7×7
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28) in [0, 1] -> (B, grid², width)
        h = F.adaptive_avg_pool2d(self.net(images), self.grid)  # (B, width, grid, grid)
        return h.flatten(2).transpose(1, 2)  # patches in reading order, like a ViT's patch tokens


@dataclass
class LlavaConfig:
    # "clip": helper C's trained CLIP image tower, frozen; "cnn": a small CNN trained with the projector;
    # "random_cnn": the same CNN frozen at its random start; "auto": clip when its checkpoint is shipped, else cnn
    tower: str = "auto"
    grid: int = 2  # image tokens N = grid²
    lang: str = "en"  # the language of captions, question and answer
    # The live default fits 60 s on 2 cores (~0.55 s a step at batch 16 with the frozen CLIP tower) and already
    # lands well above chance: batch 16 rather than 8 (at 90 steps .47 vs .07-.20 on the same seed), lr 5e-3 rather
    # than 3e-3 (.69 vs .58 at 100 steps; 1e-2 stalls early). Seed 0, 100 test images, measured 2026-12-03.
    stage1_steps: int = 10
    stage2_steps: int = 80
    batch: int = 16
    lr: float = 5e-3
    seed: int = 0
    max_seconds: float = 60.0  # both stages together
    eval_images: int = 50  # Fashion-MNIST test images scored after training
    threads: int = 2
    log_every: int = 5

    def check(self) -> LlavaConfig:
        if self.tower not in TOWERS:
            raise GenerationError("input.unknown_choice", name="tower", value=self.tower, choices=", ".join(TOWERS))
        if self.lang not in LANGS:
            raise GenerationError("input.unknown_choice", name="lang", value=self.lang, choices=", ".join(LANGS))
        check_number("grid", self.grid, 1, 3, integer=True)
        check_number("stage1_steps", self.stage1_steps, 0, 5000, integer=True)
        check_number("stage2_steps", self.stage2_steps, 0, 5000, integer=True)
        check_number("batch", self.batch, 1, 128, integer=True)
        check_number("lr", self.lr, 1e-6, 0.1)
        check_number("max_seconds", self.max_seconds, 1, 7200)
        check_number("eval_images", self.eval_images, 10, 10000, integer=True)
        return self

    @property
    def image_tokens(self) -> int:
        return self.grid * self.grid

    def resolved_tower(self) -> str:
        if self.tower != "auto":
            return self.tower
        return "clip" if clip_checkpoint().is_file() else "cnn"


def question_text(lang: str) -> str:
    return " What is this? Answer:" if lang == "en" else f"\n{QUESTION['ko']}\n"


def answer_text(label: int, classes, lang: str = "en") -> str:
    return f" {classes.en[label]}" if lang == "en" else f"{classes.ko[label]}"


def caption_text(label: int, classes, lang: str = "en") -> str:
    return CAPTION[lang].format(label=classes.en[label] if lang == "en" else classes.ko[label])


class TinyLlava(nn.Module):
    """tower + projector around a frozen causal LM (transformers) and its tokenizer."""

    def __init__(self, lm, tokenizer, cfg: LlavaConfig):
        super().__init__()
        self.cfg = cfg
        self.lm, self.tokenizer = lm, tokenizer
        for p in self.lm.parameters():
            p.requires_grad_(False)
        kind = cfg.resolved_tower()
        if kind == "clip":
            path = clip_checkpoint()
            if not path.is_file():
                raise GenerationError(
                    "mmgen.no_checkpoint", path=str(path), command="python -m engine clip --train --save-precomputed"
                )
            self.tower = ClipTower(path, cfg.grid)
        else:
            self.tower = CNNTower(grid=cfg.grid)
        self.tower_kind = kind
        if kind == "random_cnn":
            for p in self.tower.parameters():
                p.requires_grad_(False)
        self.projector = MLPProjector(self.tower.dim, lm.config.hidden_size)

    def image_features(self, images: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28) -> (B, N, D_lm)
        return self.projector(self.tower(images))

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def build(self, prompt: str, answer: str = "") -> tuple[list[int], int]:
        """[N placeholders] + prompt (+ answer) ids, and where the answer starts."""
        head = [IMAGE_TOKEN] * self.cfg.image_tokens + self.ids(prompt)
        return head + (self.ids(answer) if answer else []), len(head)

    def forward_batch(self, images: torch.Tensor, seqs: list[tuple[list[int], int]], logits_at: str = "answer"):
        """Right-padded batch -> (loss over answer tokens, per-sequence summed answer log-prob (B,))."""
        T = max(len(s) for s, _ in seqs)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(seqs), T), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), T), dtype=torch.long)
        target = torch.full((len(seqs), T), -100, dtype=torch.long)
        for b, (s, start) in enumerate(seqs):
            ids[b, : len(s)] = torch.tensor(s)
            mask[b, : len(s)] = 1
            target[b, start : len(s)] = torch.tensor(s[start:])
        embeds = splice(ids, self.lm.get_input_embeddings(), self.image_features(images), IMAGE_TOKEN)
        hidden = self.lm.model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state  # (B, T, D)
        # only the positions that predict an answer token go through the (49k-word) output layer
        pred_pos = (target[:, 1:] != -100).nonzero()  # (K, 2): (b, i) predicts token i+1
        h = hidden[pred_pos[:, 0], pred_pos[:, 1]]  # (K, D)
        logp = F.log_softmax(self.lm.lm_head(h).float(), dim=-1)  # (K, V)
        tok = target[pred_pos[:, 0], pred_pos[:, 1] + 1]
        token_logp = logp.gather(1, tok[:, None])[:, 0]  # (K,)
        per_seq = torch.zeros(len(seqs)).index_add(0, pred_pos[:, 0], token_logp)
        return -token_logp.mean(), per_seq


def _images(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float32) / 255.0)[:, None]  # (B, 1, 28, 28) in [0, 1]


@dataclass
class LlavaResult:
    config: dict
    rows: list[dict]  # {"stage", "step", "loss", "seconds"}
    train_seconds: float
    status: str  # "finished" or "time_limit"
    caption_accuracy: float  # top-1 over the 10 class answers, scored by LM likelihood
    chance: float
    eval_images: int
    eval_seconds: float
    confusion: list[list[int]]  # (10, 10): true class -> chosen class
    examples: list[dict]  # a few test images with the scores of each class and a greedy answer
    splice: list[dict]  # the splice view of one question
    trainable_params: int
    lm: str
    metric: str = "first_token"  # or "full": how the 10 answers were scored (see score_classes)
    tower: str = "cnn"  # the vision tower used: "clip", "cnn" or "random_cnn"

    def to_json(self) -> dict:
        return asdict(self)


def first_tokens(model: TinyLlava, classes, lang: str) -> list[int] | None:
    """The first token of each class answer, or None when two classes share one (then whole answers are scored)."""
    firsts = [model.ids(answer_text(c, classes, lang))[0] for c in range(len(classes))]
    return firsts if len(set(firsts)) == len(firsts) else None


def score_classes(model: TinyLlava, images: np.ndarray, classes, lang: str = "en", batch_images: int = 10):
    """log p(answer_c | image, question) for each class c: (B, C), and the method used.

    "first_token": one forward per image and the log-probability of each answer's first token (the 10 English
    answers start with 10 different tokens, so this ranks the answers by their likelihood where they differ first);
    "full": one sequence per (image, class), the summed log-probability of the whole answer."""
    C = len(classes)
    firsts = first_tokens(model, classes, lang)
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_images):
            chunk = images[i : i + batch_images]
            if firsts is not None:
                ids, _ = model.build(question_text(lang))
                embeds = splice(
                    torch.tensor([ids] * len(chunk)),
                    model.lm.get_input_embeddings(),
                    model.image_features(_images(chunk)),
                    IMAGE_TOKEN,
                )
                last = model.lm.model(inputs_embeds=embeds).last_hidden_state[:, -1]  # (b, D)
                logp = F.log_softmax(model.lm.lm_head(last).float(), dim=-1)  # (b, V)
                out.append(logp[:, firsts])
            else:
                seqs = [
                    model.build(question_text(lang), answer_text(c, classes, lang)) for _ in chunk for c in range(C)
                ]
                _, per_seq = model.forward_batch(_images(chunk).repeat_interleave(C, dim=0), seqs)
                out.append(per_seq.reshape(len(chunk), C))
    return torch.cat(out), "first_token" if firsts is not None else "full"


@torch.no_grad()
def greedy_answer(model: TinyLlava, image: np.ndarray, lang: str = "en", max_new_tokens: int = 4) -> str:
    """Greedy decoding after the spliced prompt (no cache: a few tokens on a short prompt)."""
    ids, _ = model.build(question_text(lang))
    feats = model.image_features(_images(image[None]))
    embed = model.lm.get_input_embeddings()
    seq = splice(torch.tensor([ids]), embed, feats, IMAGE_TOKEN)  # (1, T, D)
    new: list[int] = []
    for _ in range(max_new_tokens):
        nxt = int(model.lm(inputs_embeds=seq).logits[0, -1].argmax())
        if nxt == model.tokenizer.eos_token_id or "\n" in model.tokenizer.decode([nxt]):
            break
        new.append(nxt)
        seq = torch.cat([seq, embed(torch.tensor([[nxt]]))], dim=1)
    return model.tokenizer.decode(new).strip()


def load_lm(progress: ProgressFn = null_progress):
    """The frozen `chat` LM (SmolLM2-135M-Instruct) through transformers, with SDPA attention for speed."""
    from engine.models.loading import load_causal_lm

    loaded = load_causal_lm("chat", progress)
    with contextlib.suppress(Exception):  # an older transformers: eager attention is only slower
        loaded.model.set_attn_implementation("sdpa")
    return loaded


def train_llava(
    cfg: LlavaConfig,
    progress: ProgressFn = null_progress,
    on_row: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    lm=None,
) -> tuple[LlavaResult, TinyLlava]:
    """Stage 1 (captions) then stage 2 (instructions), projector (+ CNN tower) only; then caption accuracy on test
    images: the class whose answer the LM finds most likely, against chance 1/10."""
    from engine.multimodal.data import FASHION, load_images

    cfg.check()
    torch.manual_seed(cfg.seed)
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, min(cfg.threads, 2)))
    try:
        loaded = lm or load_lm(progress)
        model = TinyLlava(loaded.model, loaded.tokenizer, cfg)
        train, test = load_images("train", fallback=False), load_images("test", fallback=False)
        classes = FASHION
        rng = np.random.default_rng(cfg.seed)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
        total = cfg.stage1_steps + cfg.stage2_steps
        rows: list[dict] = []
        start, status, done = time.perf_counter(), "finished", 0
        model.lm.eval()
        for stage, steps in ((1, cfg.stage1_steps), (2, cfg.stage2_steps)):
            for step in range(1, steps + 1):
                idx = rng.integers(0, len(train), cfg.batch)
                labels = train.labels[idx]
                if stage == 1:  # image -> caption: the whole caption is the target
                    seqs = [model.build("", caption_text(int(y), classes, cfg.lang)) for y in labels]
                else:  # image + question -> answer: only the answer is the target
                    seqs = [
                        model.build(question_text(cfg.lang), answer_text(int(y), classes, cfg.lang)) for y in labels
                    ]
                loss, _ = model.forward_batch(_images(train.images[idx]), seqs)
                opt.zero_grad()
                loss.backward()
                opt.step()
                value = loss.item()
                if not math.isfinite(value):
                    raise GenerationError("mmgen.diverged", step=done + 1, value=value)
                done += 1
                elapsed = time.perf_counter() - start
                if step % cfg.log_every == 0 or step == steps:
                    row = {"stage": stage, "step": done, "loss": round(value, 4), "seconds": round(elapsed, 2)}
                    rows.append(row)
                    if on_row is not None:
                        on_row(row)
                progress(0.8 * done / max(total, 1), f"stage {stage}: step {done}/{total}  loss {value:.3f}")
                if should_stop is not None and should_stop():
                    err = Cancelled("training stopped")
                    err.partial = rows  # type: ignore[attr-defined]
                    raise err
                if elapsed > cfg.max_seconds:
                    status = "time_limit"
                    break
            if status == "time_limit":
                break
        train_seconds = time.perf_counter() - start
        model.eval()
        progress(0.8, f"scoring {cfg.eval_images} test images")
        eval_start = time.perf_counter()
        pick = np.random.default_rng(1234).choice(len(test), cfg.eval_images, replace=False)
        scores, method = score_classes(model, test.images[pick], classes, cfg.lang)  # (E, C)
        chosen = scores.argmax(dim=1).numpy()
        truth = test.labels[pick]
        confusion = np.zeros((len(classes), len(classes)), dtype=int)
        np.add.at(confusion, (truth, chosen), 1)
        examples = []
        for j in range(min(3, cfg.eval_images)):
            probs = torch.softmax(scores[j], 0)
            examples.append(
                {
                    "image": test.images[pick[j]].tolist(),
                    "label": int(truth[j]),
                    "chosen": int(chosen[j]),
                    "probs": [round(float(p), 4) for p in probs],
                    "greedy": greedy_answer(model, test.images[pick[j]], cfg.lang),
                }
            )
        eval_seconds = time.perf_counter() - eval_start
        ids, _ = model.build(question_text(cfg.lang))
        with torch.no_grad():
            emb = splice(
                torch.tensor([ids]),
                model.lm.get_input_embeddings(),
                model.image_features(_images(test.images[pick[:1]])),
                IMAGE_TOKEN,
            )[0]
        view = [asdict(r) for r in splice_view(ids, model.tokenizer, emb)]
        progress(1.0, "done")
        result = LlavaResult(
            config=asdict(cfg),
            rows=rows,
            train_seconds=round(train_seconds, 2),
            status=status,
            caption_accuracy=round(float((chosen == truth).mean()), 4),
            chance=round(1 / len(classes), 4),
            eval_images=cfg.eval_images,
            eval_seconds=round(eval_seconds, 2),
            confusion=confusion.tolist(),
            examples=examples,
            splice=view,
            trainable_params=sum(p.numel() for p in params),
            lm="chat (SmolLM2-135M-Instruct, frozen)",
            metric=method,
            tower=model.tower_kind,
        )
        return result, model
    finally:
        torch.set_num_threads(old)


def checkpoint_path() -> Path:
    return asset("multimodal", CHECKPOINT)


def save_projector(model: TinyLlava, result: LlavaResult, path: Path | None = None) -> Path:
    """The trained parts (tower + projector, float16) and the config; the LM is the packaged `chat` role."""
    path = path or checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "tower": {k: v.half() for k, v in model.tower.state_dict().items()},
        "projector": {k: v.half() for k, v in model.projector.state_dict().items()},
    }
    torch.save({"config": asdict(model.cfg), "state": state, "caption_accuracy": result.caption_accuracy}, path)
    return path


def load_llava(path: Path | None = None, lm=None, progress: ProgressFn = null_progress) -> TinyLlava:
    """The shipped tower + projector around the `chat` LM; `mmgen.no_checkpoint` when none is shipped."""
    path = path or checkpoint_path()
    if not Path(path).is_file():
        raise GenerationError(
            "mmgen.no_checkpoint", path=str(path), command="python -m engine llava --save-precomputed"
        )
    body = torch.load(path, map_location="cpu", weights_only=True)
    loaded = lm or load_lm(progress)
    model = TinyLlava(loaded.model, loaded.tokenizer, LlavaConfig(**body["config"]))
    model.tower.load_state_dict({k: v.float() for k, v in body["state"]["tower"].items()})
    model.projector.load_state_dict({k: v.float() for k, v in body["state"]["projector"].items()})
    return model.eval()
