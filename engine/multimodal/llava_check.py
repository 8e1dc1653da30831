"""Our splice vs transformers' LlavaForConditionalGeneration, on a tiny random config built here (no hub).

Both get the same vision tower (a 2-layer CLIP vision model), the same projector weights and the same token ids with
<image> placeholders. transformers merges with `inputs_embeds.masked_scatter(image_mask, image_features)`; ours walks
the tokens one by one (engine.multimodal.llava.splice). Same merge -> the same inputs_embeds reach the language model
and the same logits come out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from engine.multimodal.llava import MLPProjector, splice

IMAGE_TOKEN_ID = 95  # a real id in the tiny vocabulary (transformers' processor adds "<image>" as a token)


@dataclass
class LlavaCheck:
    image_tokens: int  # patch features per image (the CLS token is dropped: strategy "default")
    sequence: list[int]  # the token ids used, placeholders included
    inputs_embeds_max_diff: float
    logits_max_diff: float
    same_embeds: bool
    same_logits: bool
    transformers_version: str

    def to_json(self) -> dict:
        return asdict(self)


def tiny_llava(seed: int = 0):
    """A random LlavaForConditionalGeneration: CLIP vision (28×28 gray-ish 3-channel images, 7×7 patches -> 16
    patch tokens + CLS) and a 2-layer Llama text model (the architecture of SmolLM2)."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=28, patch_size=7
    )
    text = LlamaConfig(
        vocab_size=96,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=IMAGE_TOKEN_ID,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    torch.manual_seed(seed)
    return LlavaForConditionalGeneration(cfg).eval()


def _parts(hf):
    inner = getattr(hf, "model", hf)  # transformers >= 4.52: LlavaForConditionalGeneration.model is a LlavaModel
    return inner.vision_tower, inner.multi_modal_projector, inner.language_model, hf.lm_head


@torch.no_grad()
def compare_with_transformers(seed: int = 0, images: int = 2) -> LlavaCheck:
    import transformers

    hf = tiny_llava(seed)
    tower, hf_proj, lm, lm_head = _parts(hf)
    n = (28 // 7) ** 2  # 16 patch tokens per image
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.randn(images, 3, 28, 28, generator=gen)
    # text, image 0, text, image 1, text: placeholders expanded to n slots each (what the processor does)
    text = torch.randint(1, IMAGE_TOKEN_ID, (3 * 5,), generator=gen).tolist()
    seq = text[:5] + [IMAGE_TOKEN_ID] * n + text[5:10] + [IMAGE_TOKEN_ID] * n + text[10:]
    ids = torch.tensor([seq])

    captured = {}

    def grab(module, args, kwargs):
        captured["embeds"] = kwargs.get("inputs_embeds")

    handle = lm.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        theirs = hf(input_ids=ids, pixel_values=pixels).logits  # (1, T, V)
    finally:
        handle.remove()

    # ours: the same tower output (last layer, CLS dropped), our projector with their weights, our splice
    feats = tower(pixels, output_hidden_states=True).hidden_states[-1][:, 1:]  # (images, n, D_v)
    proj = MLPProjector(feats.shape[-1], lm.config.hidden_size)
    proj.load_state_dict(hf_proj.state_dict())
    embeds = splice(ids, lm.get_input_embeddings(), proj(feats), IMAGE_TOKEN_ID)  # (1, T, D)
    ours = lm_head(lm(inputs_embeds=embeds).last_hidden_state)
    d_emb = float((embeds - captured["embeds"]).abs().max())
    d_log = float((ours - theirs).abs().max())
    return LlavaCheck(n, seq, d_emb, d_log, d_emb == 0.0, d_log < 1e-5, transformers.__version__)
