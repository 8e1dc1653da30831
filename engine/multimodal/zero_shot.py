"""Using a trained CLIP without training anything more (book 14.2): zero-shot classification from prompts, prompt
ensembling, text->image and image->text retrieval — and the shipped checkpoint they run on.

    clip = load_clip()                                    # the shipped run (assets/multimodal/clip_fashion.pt)
    zs = classify_zero_shot(clip, image28, ["T-shirt", "sneaker"], langs=("en",), ensemble=True)
    zs.probabilities, zs.cosines, zs.prompts
    text_to_image(clip, "운동화 사진", images, k=10)      # indices + cosines
    image_to_text(clip, image28, k=5)                     # the best captions among every class x template x language
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.core.assets import asset
from engine.multimodal.clip import LANGS, ClipRun, DualEncoder, TextTower, image_embeddings, text_tower
from engine.multimodal.data import FASHION, TEMPLATES, ClassNames, prompts
from engine.multimodal.errors import MultimodalError

__all__ = [
    "CHECKPOINT",
    "MAX_LABELS",
    "MAX_PROMPT_CHARS",
    "LoadedClip",
    "ZeroShot",
    "check_prompt",
    "classify_zero_shot",
    "embed_texts",
    "image_to_text",
    "load_clip",
    "save_clip",
    "text_to_image",
]

CHECKPOINT = ("multimodal", "clip_fashion.pt")
MAX_PROMPT_CHARS = 200
MAX_LABELS = 20


@dataclass
class LoadedClip:
    model: DualEncoder
    text: TextTower
    classes: ClassNames
    holdout: list[int]
    config: dict
    path: str = ""


def save_clip(run: ClipRun, path: str | Path | None = None) -> Path:
    """Weights + config + class names (the frozen MiniLM is packaged, so it is not in the file: ~1 MB)."""
    path = Path(path) if path is not None else asset(*CHECKPOINT)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = run.result.config
    body = {
        "state_dict": {k: v.detach().clone() for k, v in run.model.state_dict().items()},
        "width": int(cfg["width"]),
        "embed_dim": int(cfg["embed_dim"]),
        "text_hidden": int(cfg["text_hidden"]),
        "classes_en": list(run.classes.en),
        "classes_ko": list(run.classes.ko),
        "classes_key": run.classes.key,
        "holdout": list(run.result.holdout),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
    }
    torch.save(body, path)
    return path


def load_clip(path: str | Path | None = None, text: TextTower | None = None) -> LoadedClip:
    """The shipped CLIP (or `path`): loaded with weights_only=True, so a checkpoint can only hold tensors and plain
    values, never code."""
    path = Path(path) if path is not None else asset(*CHECKPOINT)
    if not path.is_file():
        raise MultimodalError("multimodal.no_checkpoint", path=str(path))
    try:
        body = torch.load(path, map_location="cpu", weights_only=True)
        model = DualEncoder(body["width"], body["embed_dim"], body["text_hidden"])
        model.load_state_dict(body["state_dict"])
    except Exception as exc:
        raise MultimodalError("multimodal.bad_checkpoint", path=str(path), detail=str(exc)[:160]) from exc
    model.eval()
    classes = ClassNames(body.get("classes_key", FASHION.key), tuple(body["classes_en"]), tuple(body["classes_ko"]))
    return LoadedClip(model, text or text_tower(), classes, list(body["holdout"]), dict(body["config"]), str(path))


def check_prompt(text: str) -> str:
    """One caption a learner typed: stripped, non-empty, not a document."""
    if not isinstance(text, str) or not text.strip():
        raise MultimodalError("multimodal.empty_prompt")
    text = " ".join(text.split())
    if len(text) > MAX_PROMPT_CHARS:
        raise MultimodalError("multimodal.prompt_too_long", chars=len(text), limit=MAX_PROMPT_CHARS)
    return text


@torch.no_grad()
def embed_texts(clip: LoadedClip, texts: list[str]) -> torch.Tensor:
    """(n, D) unit vectors in the shared space."""
    return clip.model.encode_text(clip.text.features([check_prompt(t) for t in texts]))


def _image_batch(images) -> np.ndarray:
    a = np.asarray(images)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1:] != (28, 28):
        raise MultimodalError("ssm.bad_shape", name="image", expected="(28, 28) or (N, 28, 28)", value=a.shape)
    return a.astype(np.uint8)


@dataclass
class ZeroShot:
    labels: list[str]  # the class names given
    prompts: list[list[str]]  # (n_labels, n_prompts) what was embedded for each
    cosines: list[float]  # the raw cosine of the image with each label's (ensembled) prompt
    probabilities: list[float]  # softmax(scale * cosine)
    scale: float
    predicted: int

    def as_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def classify_zero_shot(
    clip: LoadedClip,
    image: np.ndarray,
    labels: list[str],
    langs: tuple[str, ...] = ("en",),
    ensemble: bool = False,
    templates: dict[str, tuple[str, ...]] | None = None,
) -> ZeroShot:
    """Classify one (28, 28) image among `labels` (any names, Korean or English, not only the trained ones) by
    comparing it with a prompt per label; `ensemble` averages every template's embedding per label."""
    labels = [check_prompt(x) for x in labels]
    if not labels:
        raise MultimodalError("multimodal.empty_prompt")
    if len(labels) > MAX_LABELS:
        raise MultimodalError("multimodal.too_many_prompts", limit=MAX_LABELS, value=len(labels))
    templates = templates or TEMPLATES
    per_label = []
    for name in labels:
        cls = ClassNames("custom", (name,), (name,))
        per_label.append(
            [p for lang in langs for p in prompts(cls, lang, templates[lang])[0][: None if ensemble else 1]]
        )
    img = image_embeddings(clip.model, _image_batch(image))[0]  # (D,)
    cls_emb = torch.stack([F.normalize(embed_texts(clip, ps).mean(0), dim=-1) for ps in per_label])  # (L, D)
    cos = cls_emb @ img  # (L,)
    scale = clip.model.scale
    probs = torch.softmax(cos * scale, 0)
    return ZeroShot(labels, per_label, cos.tolist(), probs.tolist(), scale, int(probs.argmax()))


@dataclass
class Retrieved:
    indices: list[int]
    cosines: list[float]
    texts: list[str] = field(default_factory=list)


@torch.no_grad()
def text_to_image(clip: LoadedClip, query: str, images: np.ndarray, k: int = 10) -> Retrieved:
    """The k images (of `images`, (N, 28, 28)) closest to `query` in the shared space."""
    q = embed_texts(clip, [query])[0]  # (D,)
    img = image_embeddings(clip.model, _image_batch(images))  # (N, D)
    cos = img @ q
    top = cos.topk(min(int(k), len(cos)))
    return Retrieved(top.indices.tolist(), top.values.tolist())


@torch.no_grad()
def image_to_text(clip: LoadedClip, image: np.ndarray, k: int = 5, langs: tuple[str, ...] = LANGS) -> Retrieved:
    """The k captions (every class x template x language) closest to one image."""
    texts = [p for lang in langs for row in prompts(clip.classes, lang) for p in row]
    emb = embed_texts(clip, texts)  # (T, D)
    img = image_embeddings(clip.model, _image_batch(image))[0]
    cos = emb @ img
    top = cos.topk(min(int(k), len(texts)))
    return Retrieved(top.indices.tolist(), top.values.tolist(), [texts[i] for i in top.indices.tolist()])
