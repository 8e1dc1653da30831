"""Chapter 14 data: the IDX reader (real Fashion-MNIST files and crafted ones), the digits fallback with its notice,
class names, prompts and captions in both languages, the out-of-domain photos."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from engine.multimodal import FASHION, MultimodalError, captions, load_images, out_of_domain_photos, prompts, read_idx
from engine.multimodal.data import fashion_dir


def _idx(path, array: np.ndarray, gz: bool = True) -> None:
    head = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = head + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(body) if gz else body)


def test_read_idx_round_trip_and_limit(tmp_path):
    a = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    _idx(tmp_path / "x.gz", a)
    _idx(tmp_path / "x.raw", a, gz=False)
    assert np.array_equal(read_idx(tmp_path / "x.gz"), a)
    assert np.array_equal(read_idx(tmp_path / "x.raw"), a)
    assert np.array_equal(read_idx(tmp_path / "x.gz", limit=2), a[:2])


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\x00\x08", b"\x01\x02\x08\x01\x00\x00\x00\x01", b"\x00\x00\x08\x01\x00\x00\x00\x09abc"],
    ids=["empty", "short", "bad-magic", "ends-early"],
)
def test_read_idx_refuses_damaged_files(tmp_path, raw):
    (tmp_path / "bad").write_bytes(raw)
    with pytest.raises(MultimodalError) as err:
        read_idx(tmp_path / "bad")
    assert err.value.code == "multimodal.bad_idx"


def test_read_idx_refuses_implausible_sizes_without_allocating(tmp_path):
    (tmp_path / "huge").write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3I", 4_000_000_000, 28, 28))
    with pytest.raises(MultimodalError, match="implausible"):
        read_idx(tmp_path / "huge")


@pytest.mark.skipif(not (fashion_dir() / "t10k-labels-idx1-ubyte.gz").exists(), reason="dataset-fashion-mnist")
def test_fashion_mnist_test_split():
    data = load_images("test")
    assert data.source == "fashion-mnist" and data.notice is None
    assert data.images.shape == (10_000, 28, 28) and data.images.dtype == np.uint8
    assert np.bincount(data.labels).tolist() == [1000] * 10
    assert data.labels[:5].tolist() == [9, 2, 1, 1, 6]  # ankle boot, pullover, trouser, trouser, shirt
    assert data.as_float().shape == (10_000, 1, 28, 28) and float(data.as_float().max()) <= 1.0


def test_missing_files_fall_back_to_digits_with_a_notice(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_FASHION_MNIST", str(tmp_path))
    data = load_images("test")
    assert data.source == "digits" and data.classes.key == "digits"
    assert data.notice == "multimodal.data_fallback" and data.notice_fmt["path"] == str(tmp_path)
    assert data.images.shape == (360, 28, 28) and set(np.unique(data.labels)) == set(range(10))
    with pytest.raises(MultimodalError) as err:
        load_images("test", fallback=False)
    assert err.value.code == "multimodal.data_missing"


def test_class_names_prompts_and_captions():
    assert FASHION.index("운동화") == FASHION.index("Sneaker") == 7
    with pytest.raises(MultimodalError):
        FASHION.index("hat")
    en, ko = prompts(FASHION, "en"), prompts(FASHION, "ko")
    assert len(en) == len(ko) == 10 and len(en[0]) == len(ko[0]) == 6
    assert en[9][0] == "a photo of an ankle boot." and ko[7][0] == "운동화 사진"
    caps = captions([0, 7, 9], FASHION, "both", np.random.default_rng(0))
    assert len(caps) == 3 and all(isinstance(c, str) and c for c in caps)
    with pytest.raises(MultimodalError) as err:
        prompts(FASHION, "en", ("no label here",))
    assert err.value.code == "multimodal.template_without_label"
    with pytest.raises(MultimodalError):
        FASHION.names("fr")


def test_out_of_domain_photos_load_from_scikit_image():
    photos = out_of_domain_photos()
    assert len(photos) >= 5
    for p in photos:
        assert p.image.shape == (28, 28) and p.image.dtype == np.uint8
        assert p.rgb.ndim == 3 and p.rgb.shape[2] == 3 and max(p.rgb.shape[:2]) <= 128
        assert p.ko and p.en
