"""Chapter 14's real CLIP path: a tiny random-configuration CLIP saved with save_pretrained is loaded through the
same code a hub id uses, and the book's zero-shot code runs on it; offline, the hub id gives a typed error."""

from __future__ import annotations

import numpy as np
import pytest

from engine.multimodal import CLIP_HUB_ID, MultimodalError, hf_zero_shot, load_hf_clip, save_tiny_clip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_hf_clip(str(save_tiny_clip(tmp_path_factory.mktemp("tiny"))))


def test_tiny_clip_loads_through_from_pretrained(tiny):
    from transformers import CLIPModel

    assert isinstance(tiny.model, CLIPModel) and tiny.local
    assert 0 < tiny.parameters < 200_000
    # config.logit_scale_init_value = 2.6592 (ln(1/0.07) rounded to 4 decimals): exp = 14.285
    assert float(tiny.model.logit_scale.detach().exp()) == pytest.approx(1 / 0.07, rel=1e-4)


def test_book_zero_shot_code_runs(tiny):
    images = [np.zeros((28, 28), np.uint8), np.full((40, 30, 3), 200, np.uint8)]
    out = hf_zero_shot(tiny, images, ["cat", "dog", "운동화"])
    assert out.prompts == ["a photo of a cat.", "a photo of a dog.", "a photo of a 운동화."]
    probs = np.asarray(out.probabilities)
    assert probs.shape == (2, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    cos = np.asarray(out.cosines)
    assert np.all(np.abs(cos) <= 1 + 1e-5)
    logits = cos * out.logit_scale
    assert np.allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), probs, atol=1e-5)


def test_empty_label_refused(tiny):
    with pytest.raises(MultimodalError) as err:
        hf_zero_shot(tiny, [np.zeros((8, 8), np.uint8)], ["  "])
    assert err.value.code == "multimodal.empty_prompt"


def test_hub_id_offline_is_a_typed_error(monkeypatch):
    from engine.core import config

    monkeypatch.setenv("LLMLAB_OFFLINE", "1")
    if hasattr(config.get_settings, "cache_clear"):
        config.get_settings.cache_clear()
    try:
        with pytest.raises(MultimodalError) as err:
            load_hf_clip(CLIP_HUB_ID)
    finally:
        if hasattr(config.get_settings, "cache_clear"):
            config.get_settings.cache_clear()
    assert err.value.code == "multimodal.hub_offline" and CLIP_HUB_ID in str(err.value)


def test_folder_that_is_not_a_clip(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(MultimodalError) as err:
        load_hf_clip(str(tmp_path))
    assert err.value.code == "multimodal.hub_load_failed"
