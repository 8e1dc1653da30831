"""Chapter 14 search (book 12.5): image vectors in chapter 12's SQLite vector store, text -> image queries, the
out-of-domain photos marked and filterable, a store built by another model rebuilt rather than mixed."""

from __future__ import annotations

import pytest
import torch

from engine.multimodal import (
    ClipConfig,
    MultimodalError,
    build_image_index,
    load_images,
    search_images,
    text_tower,
    train_clip,
)
from engine.multimodal.zero_shot import LoadedClip


@pytest.fixture(scope="module")
def clip():
    train, test = load_images("train", 600), load_images("test", 60)
    run = train_clip(
        ClipConfig(steps=20, batch_size=32, max_seconds=None, holdout=(), width=4),
        train=train,
        test=test,
        text=text_tower(),
    )
    return LoadedClip(run.model, run.text, run.classes, [], run.result.config), test


def test_index_and_search(clip, tmp_path):
    model, test = clip
    index = build_image_index(model, 50, path=tmp_path / "s.sqlite", images=test)
    assert index.count == 50 + len(index.photos) and len(index.photos) >= 5
    hits = search_images(index, model, "운동화 사진", k=7)
    assert len(hits) == 7 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        assert index.image_of(h).shape == (28, 28)
    inside = search_images(index, model, "a photo of a cat", k=50, include_out_of_domain=False)
    assert not any(h.out_of_domain for h in inside) and len(inside) == 50
    everything = search_images(index, model, "a photo of a cat", k=50)
    assert any(h.out_of_domain and h.label is None for h in everything)
    # the same model and size: the store is reused as it is
    again = build_image_index(model, 50, path=tmp_path / "s.sqlite", images=test)
    assert again.count == index.count
    index.store.close()
    again.store.close()


def test_another_model_rebuilds_the_store(clip, tmp_path):
    model, test = clip
    build_image_index(model, 20, path=tmp_path / "s.sqlite", images=test, photos=False).store.close()
    other = LoadedClip(type(model.model)(4, 64, 256), model.text, model.classes, [], {})
    with torch.no_grad():
        for p in other.model.parameters():
            p.add_(0.5)
    index = build_image_index(other, 20, path=tmp_path / "s.sqlite", images=test, photos=False)
    assert index.count == 20
    index.store.close()


def test_bad_queries(clip, tmp_path):
    model, test = clip
    index = build_image_index(model, 10, path=tmp_path / "s.sqlite", images=test, photos=False)
    with pytest.raises(MultimodalError) as err:
        search_images(index, model, "  ", k=5)
    assert err.value.code == "multimodal.empty_prompt"
    with pytest.raises(MultimodalError):
        search_images(index, model, "bag", k=0)
    index.store.close()
