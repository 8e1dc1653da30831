"""Chapter 14 zero-shot and retrieval on a checkpoint: save/load round trip (weights_only), prompts checked,
probabilities from softmax(scale * cosine), ensembling, text->image and image->text, typed errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.multimodal import (
    ClipConfig,
    MultimodalError,
    check_prompt,
    classify_zero_shot,
    image_to_text,
    load_clip,
    load_images,
    save_clip,
    text_to_image,
    text_tower,
    train_clip,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    train, test = load_images("train", 1000), load_images("test", 100)
    cfg = ClipConfig(steps=40, batch_size=64, max_seconds=None, holdout=(), width=8)
    run = train_clip(cfg, train=train, test=test, text=text_tower())
    path = save_clip(run, tmp_path_factory.mktemp("ckpt") / "clip.pt")
    loaded = load_clip(path)
    assert path.stat().st_size < 5_000_000
    for a, b in zip(run.model.state_dict().values(), loaded.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    return loaded, test


def test_zero_shot_probabilities(clip):
    model, test = clip
    zs = classify_zero_shot(model, test.images[0], ["ankle boot", "T-shirt", "가방"], langs=("en",))
    assert zs.prompts[0] == ["a photo of an ankle boot."]
    assert sum(zs.probabilities) == pytest.approx(1.0, abs=1e-5)
    expected = torch.softmax(torch.tensor(zs.cosines) * zs.scale, 0)
    assert np.allclose(zs.probabilities, expected.tolist(), atol=1e-6)
    ens = classify_zero_shot(model, test.images[0], ["ankle boot", "T-shirt"], langs=("ko", "en"), ensemble=True)
    assert len(ens.prompts[0]) == 12 and ens.prompts[0][0] == "ankle boot 사진"


def test_retrieval_both_ways(clip):
    model, test = clip
    hits = text_to_image(model, "a photo of an ankle boot.", test.images, k=5)
    assert len(hits.indices) == 5 and hits.cosines == sorted(hits.cosines, reverse=True)
    caps = image_to_text(model, test.images[0], k=3)
    assert len(caps.texts) == 3 and all(isinstance(x, str) for x in caps.texts)


@pytest.mark.parametrize("bad", ["", "   ", None, "x" * 201])
def test_bad_prompts(bad):
    with pytest.raises(MultimodalError) as err:
        check_prompt(bad)
    assert err.value.code in ("multimodal.empty_prompt", "multimodal.prompt_too_long")


def test_label_list_errors(clip):
    model, test = clip
    with pytest.raises(MultimodalError) as err:
        classify_zero_shot(model, test.images[0], [])
    assert err.value.code == "multimodal.empty_prompt"
    with pytest.raises(MultimodalError) as err:
        classify_zero_shot(model, test.images[0], [f"c{i}" for i in range(21)])
    assert err.value.code == "multimodal.too_many_prompts"
    with pytest.raises(MultimodalError):
        classify_zero_shot(model, np.zeros((5, 5)), ["a"])


def test_missing_and_damaged_checkpoints(tmp_path):
    with pytest.raises(MultimodalError) as err:
        load_clip(tmp_path / "none.pt")
    assert err.value.code == "multimodal.no_checkpoint"
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MultimodalError) as err:
        load_clip(tmp_path / "bad.pt")
    assert err.value.code == "multimodal.bad_checkpoint"


def test_shipped_checkpoint_loads_and_is_small():
    from engine.core.assets import asset

    path = asset("multimodal", "clip_fashion.pt")
    if not path.exists():
        pytest.skip("no shipped checkpoint yet")
    assert path.stat().st_size <= 5_000_000
    loaded = load_clip()
    assert loaded.classes.en[7] == "sneaker" and loaded.holdout == []
