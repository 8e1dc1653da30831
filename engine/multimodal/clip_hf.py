"""The real CLIP through transformers (book 14.2's code): `CLIPModel` + `CLIPProcessor`, from the hub id
`openai/clip-vit-base-patch32` when the app is online, or from any local folder written by `save_pretrained`.

Offline (the default) a hub id is refused with `multimodal.hub_offline` before transformers tries the network. The
loading code is exercised here on a tiny random-configuration CLIP saved to a local folder (`save_tiny_clip`):
the same `from_pretrained` path, the same processor, the same forward — only the weights are random.

    hf = load_hf_clip("openai/clip-vit-base-patch32")     # online; or load_hf_clip("/path/saved/by/save_pretrained")
    out = hf_zero_shot(hf, [pil_image], ["cat", "dog"])   # probabilities, cosines, logit_scale
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.multimodal.errors import MultimodalError

__all__ = ["HUB_ID", "HFClip", "HFZeroShot", "hf_zero_shot", "load_hf_clip", "save_tiny_clip"]

HUB_ID = "openai/clip-vit-base-patch32"
HUB_FACTS = {  # what the hub model needs (from its config.json / model card), shown on the page
    "parameters": "151M",
    "download": "~605 MB (safetensors, float32)",
    "image_size": 224,
    "patch_size": 32,
    "embed_dim": 512,
    "context_length": 77,
    "logit_scale": 100.0,
}


@dataclass
class HFClip:
    model: object  # transformers.CLIPModel
    processor: object  # transformers.CLIPProcessor
    source: str
    local: bool

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def load_hf_clip(source: str = HUB_ID) -> HFClip:
    """A CLIP and its processor from a local `save_pretrained` folder, or a hub id when online."""
    from transformers import CLIPModel, CLIPProcessor

    from engine.core.config import get_settings

    local = Path(source).expanduser()
    is_local = local.is_dir()
    if not is_local and get_settings().offline:
        raise MultimodalError("multimodal.hub_offline", model=source)
    try:
        where = str(local) if is_local else source
        model = CLIPModel.from_pretrained(where, local_files_only=is_local)
        processor = CLIPProcessor.from_pretrained(where, local_files_only=is_local)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise MultimodalError("multimodal.hub_load_failed", model=source, detail=str(exc)[:200]) from exc
    model.eval()
    return HFClip(model, processor, source, is_local)


@dataclass
class HFZeroShot:
    labels: list[str]
    prompts: list[str]
    probabilities: list[list[float]]  # (n_images, n_labels)
    cosines: list[list[float]]  # (n_images, n_labels): raw cosine similarities (logits / logit_scale)
    logit_scale: float

    def as_dict(self) -> dict:
        return asdict(self)


def hf_zero_shot(hf: HFClip, images: list, labels: list[str], template: str = "a photo of a {label}.") -> HFZeroShot:
    """The book's zero-shot code: processor(text=prompts, images=images) -> model -> logits_per_image.softmax."""
    import torch

    from engine.multimodal.zero_shot import check_prompt

    labels = [check_prompt(x) for x in labels]
    if not labels:
        raise MultimodalError("multimodal.empty_prompt")
    texts = [template.replace("{label}", x) for x in labels]
    pil = [_as_pil(im) for im in images]
    inputs = hf.processor(text=texts, images=pil, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = hf.model(**inputs)
    scale = float(hf.model.logit_scale.detach().exp())
    logits = out.logits_per_image  # (n_images, n_labels) = scale * cosine
    return HFZeroShot(labels, texts, logits.softmax(-1).tolist(), (logits / scale).tolist(), scale)


def _as_pil(image):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    return Image.fromarray(a).convert("RGB")


def save_tiny_clip(path: str | Path, seed: int = 0) -> Path:
    """A CLIP with a tiny random configuration (2 layers, width 32, 32x32 images) and a real CLIP tokenizer over a
    byte-level vocabulary with no merges, saved with save_pretrained: a local folder `load_hf_clip` reads exactly as
    it would read the hub model's."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": i + len(chars) for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    try:  # transformers 5: the tokenizers-backed class takes the vocabulary itself
        tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    except TypeError:  # transformers 4: files
        (path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (path / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        tokenizer = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"))
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        projection_dim=16,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config)
    model.save_pretrained(path)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path
