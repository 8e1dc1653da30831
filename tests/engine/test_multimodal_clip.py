"""Chapter 14 CLIP: the symmetric contrastive loss equals transformers' CLIPModel loss on the same logits (a tiny
random-configuration CLIPModel built here, no hub), the logits equal CLIP's, the temperature starts at 1/0.07 and
is clamped at 100, a short training run learns (tiny subset, fixed seed), and a Stop keeps the finished rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.core.progress import Cancelled
from engine.multimodal import (
    INIT_LOGIT_SCALE,
    MAX_LOGIT_SCALE,
    ClipConfig,
    DualEncoder,
    MultimodalError,
    capped_recall_at_k,
    clip_logits,
    clip_loss,
    load_images,
    save_tiny_clip,
    text_tower,
    train_clip,
)


@pytest.fixture(scope="module")
def hf_clip(tmp_path_factory):
    from transformers import CLIPModel

    path = save_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))
    return CLIPModel.from_pretrained(path).eval()


@pytest.fixture(scope="module")
def small_data():
    train, test = load_images("train", 1200), load_images("test", 300)
    return train, test


def _hf_forward(model, batch: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 256, (batch, 7), generator=g)
    pixels = torch.randn(batch, 3, 32, 32, generator=g)
    with torch.no_grad():
        return model(input_ids=ids, pixel_values=pixels, return_loss=True)


def test_loss_equals_transformers_clip_loss(hf_clip):
    for seed in range(3):
        out = _hf_forward(hf_clip, seed=seed)
        assert torch.allclose(clip_loss(out.logits_per_image), out.loss, atol=1e-6, rtol=0)
        # symmetric: the transposed logits (logits_per_text) give the same loss
        assert torch.allclose(clip_loss(out.logits_per_text), out.loss, atol=1e-6, rtol=0)


def test_logits_equal_transformers_clip_logits(hf_clip):
    out = _hf_forward(hf_clip)
    ours = clip_logits(out.image_embeds, out.text_embeds, hf_clip.logit_scale)
    assert torch.allclose(ours, out.logits_per_image, atol=1e-5, rtol=0)
    assert math.isclose(float(hf_clip.logit_scale.detach()), INIT_LOGIT_SCALE, rel_tol=1e-4)  # 2.6592 vs ln(1/0.07)


def test_loss_is_log_batch_for_uninformative_logits_and_zero_for_perfect_ones():
    assert math.isclose(float(clip_loss(torch.zeros(8, 8))), math.log(8), rel_tol=1e-6)
    assert float(clip_loss(100 * torch.eye(8))) < 1e-6


def test_temperature_starts_at_one_over_0_07_and_is_clamped_at_100():
    model = DualEncoder(width=4, embed_dim=8, text_hidden=16)
    assert math.isclose(model.scale, 1 / 0.07, rel_tol=1e-5)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)  # exp(10) = 22026
    assert model.scale == MAX_LOGIT_SCALE
    a = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    assert float(clip_logits(a, a, model.logit_scale.detach()).diagonal().max()) <= MAX_LOGIT_SCALE + 1e-4


def test_capped_recall():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.0], [0.0, 0.1, 0.2, 0.3]])
    relevant = torch.tensor([[True, False, True, True], [False, False, False, True]])
    # query 0: top-2 = {0, 1}: 1 of min(2, 3) right; query 1: top-2 = {3, 2}: 1 of min(2, 1)
    assert capped_recall_at_k(scores, relevant, k=2) == pytest.approx((0.5 + 1.0) / 2)


def test_short_training_learns_and_reports(small_data):
    train, test = small_data
    rows = []
    cfg = ClipConfig(steps=60, batch_size=64, max_seconds=None, log_every=20, holdout=("sneaker",))
    run = train_clip(cfg, on_row=rows.append, train=train, test=test, text=text_tower())
    r = run.result
    assert r.steps == 60 and [row["step"] for row in rows] == [20, 40, 60] and r.curve == rows
    assert rows[-1]["loss"] < rows[0]["loss"]
    m = r.metrics
    assert m["seen_class_accuracy"] > 0.3  # 10 classes: chance is 0.1
    assert 0 <= m["heldout_class_accuracy"] <= 1 and r.holdout == [7]
    assert len(r.per_class) == 10 and r.per_class[7]["heldout"]
    assert np.asarray(r.confusion).sum() == len(test)
    assert len(r.heatmap["images"]) == 10 and np.asarray(r.heatmap["cosine"]["ko"]).shape == (10, 10)
    assert len(m["calibration_curve"]) == 21 and m["calibration_curve"][0]["gamma"] == 0.0
    demo = r.scale_demo
    assert math.isclose(sum(demo["scales"]["100"]["clip_like"]), 1.0, rel_tol=1e-5)
    assert max(demo["scales"]["100"]["clip_like"]) > 0.95 > 0.3 > max(demo["scales"]["1"]["clip_like"])


def test_same_seed_same_curve(small_data):
    train, test = small_data
    cfg = ClipConfig(steps=10, batch_size=32, max_seconds=None, log_every=5, threads=1)
    a = train_clip(cfg, train=train, test=test.subset(np.arange(50)), text=text_tower()).result.curve
    b = train_clip(cfg, train=train, test=test.subset(np.arange(50)), text=text_tower()).result.curve
    assert [r["loss"] for r in a] == [r["loss"] for r in b]


def test_stop_keeps_the_finished_rows(small_data):
    train, test = small_data
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) >= 2

    cfg = ClipConfig(steps=100, batch_size=16, max_seconds=None, log_every=5)
    with pytest.raises(Cancelled) as err:
        train_clip(cfg, should_stop=stop, train=train, test=test, text=text_tower())
    assert [r["step"] for r in err.value.partial] == [5, 10]


@pytest.mark.parametrize(
    "changes",
    [
        {"steps": 0},
        {"lr": float("nan")},
        {"caption_lang": "fr"},
        {"holdout": ("a", "b", "c", "d", "e", "f")},
        {"max_seconds": -1.0},
        {"batch_size": 1},
    ],
)
def test_bad_settings_are_refused(changes):
    from dataclasses import replace

    with pytest.raises(MultimodalError):
        replace(ClipConfig(), **changes).check()


def test_unknown_holdout_class_is_refused(small_data):
    train, test = small_data
    with pytest.raises(MultimodalError) as err:
        train_clip(ClipConfig(steps=1, holdout=("hat",)), train=train, test=test, text=text_tower())
    assert err.value.code == "input.unknown_choice"
