"""Chapter 14 uploads: decoded with limits, first frame only, any mode converted; everything else refused with a
typed error whose code has ko/en text."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.multimodal import ImageInputError, decode_upload


def _bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _code(raw: bytes, **limits) -> str:
    with pytest.raises(ImageInputError) as err:
        decode_upload(raw, **limits)
    return err.value.code


def test_rgb_png_is_decoded_and_resized():
    im = Image.new("RGB", (600, 300), (200, 10, 10))
    out = decode_upload(_bytes(im, "PNG"))
    assert out.format == "PNG" and out.mode == "RGB" and out.size == (600, 300) and out.frames == 1
    assert out.rgb.shape == (256, 512, 3) and out.gray28.shape == (28, 28) and out.notes == []


def test_grayscale_cmyk_palette_alpha_and_16_bit_are_converted():
    gray = decode_upload(_bytes(Image.new("L", (40, 40), 128), "PNG"))
    assert gray.mode == "L" and "ch14.upload_gray" in gray.notes and gray.rgb.shape == (40, 40, 3)
    cmyk = decode_upload(_bytes(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG"))
    assert cmyk.mode == "CMYK" and "ch14.upload_mode" in cmyk.notes
    assert cmyk.rgb[0, 0, 0] > 200 and cmyk.rgb[0, 0, 1] < 60  # cyan 0, magenta+yellow full: red
    pal = decode_upload(_bytes(Image.new("P", (10, 10), 3), "GIF"))
    assert pal.mode == "P" and pal.rgb.dtype == np.uint8
    rgba = decode_upload(_bytes(Image.new("RGBA", (10, 10), (255, 255, 255, 0)), "PNG"))
    assert rgba.rgb.max() == 0  # fully transparent white on the black background
    deep = decode_upload(_bytes(Image.fromarray(np.arange(100, dtype=np.uint16).reshape(10, 10) * 600), "PNG"))
    assert deep.rgb.max() == 255 and deep.rgb.min() == 0


def test_animated_gif_uses_the_first_frame():
    frames = [Image.new("L", (20, 20), v) for v in (255, 0, 128)]
    raw = _bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    out = decode_upload(raw)
    assert out.frames == 3 and "ch14.upload_frames" in out.notes
    assert out.rgb.min() == 255  # the white first frame, not the black later ones


def test_refusals_have_codes():
    png = _bytes(Image.new("RGB", (100, 100)), "PNG")
    assert _code(b"") == "multimodal.image_empty"
    assert _code(png, max_bytes=10) == "multimodal.image_too_many_bytes"
    assert _code(png, max_pixels=5000) == "multimodal.image_too_many_pixels"
    assert _code(b"hello, this is text") == "multimodal.not_an_image"
    assert _code(b"%PDF-1.4 fake") == "multimodal.image_format"
    assert _code(b"\x7fELF\x02\x01\x01") == "multimodal.image_format"
    assert _code(_bytes(Image.new("RGB", (16, 16)), "ICO")) == "multimodal.image_format"
    jpeg = _bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    assert _code(jpeg[: len(jpeg) // 2]) == "multimodal.image_damaged"


def test_decompression_bomb_refused_from_its_header():
    bomb = _bytes(Image.new("1", (9000, 9000)), "PNG")  # 81 MP of zeros: ~10 KB on disk
    assert len(bomb) < 100_000
    assert _code(bomb) == "multimodal.image_too_many_pixels"


def test_every_code_has_ko_and_en():
    from engine.core.errors import MESSAGES
    from ui.i18n import strings

    codes = [c for c in MESSAGES if c.startswith("multimodal.")]
    assert len(codes) >= 15
    for code in codes:
        assert strings()[f"error.{code}"]["ko"] and strings()[f"error.{code}"]["en"]
    for key in ("ch14.upload_frames", "ch14.upload_mode", "ch14.upload_gray"):
        assert set(strings()[key]) == {"ko", "en"}
