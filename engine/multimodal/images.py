"""Uploaded images, decoded safely: an upload is bytes from a stranger, so it is only ever *decoded* by Pillow, with
limits checked before the pixels are (a decompression bomb declares its size in a small header), never executed or
written anywhere.

    img = decode_upload(raw_bytes)        # DecodedImage: rgb (H, W, 3) uint8 at most MAX_SIDE, gray28 (28, 28)
    img.notes                             # codes: "ch14.upload_frames" (animated: first frame), "..._mode" (CMYK ...)

Refused with an `ImageInputError` (ko/en messages): empty file, more than MAX_UPLOAD_BYTES, not an image, a format
outside ALLOWED_FORMATS, more than MAX_PIXELS pixels, a truncated or damaged file. Accepted but converted, with a
note: animated GIF/WebP/PNG (first frame only), grayscale / palette / CMYK / 16-bit / alpha (converted to RGB).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np

from engine.multimodal.errors import ImageInputError

__all__ = ["ALLOWED_FORMATS", "MAX_PIXELS", "MAX_SIDE", "MAX_UPLOAD_BYTES", "DecodedImage", "decode_upload"]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # 10 MB: a phone photo fits, a video renamed .gif does not
MAX_PIXELS = 40_000_000  # 40 MP (Pillow's own warning starts at ~89 MP and its error at twice that)
MAX_SIDE = 512  # what is kept after decoding: every model here reads 28x28 (D's models too), the page shows 512
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")


@dataclass
class DecodedImage:
    rgb: np.ndarray  # (H, W, 3) uint8, longest side <= MAX_SIDE
    gray28: np.ndarray  # (28, 28) uint8 on Fashion-MNIST's terms (engine.multimodal.data.to_tower_image)
    format: str  # what the file was: "PNG", "JPEG", ...
    mode: str  # its mode before conversion: "RGB", "L", "CMYK", "P", "RGBA", "I;16", ...
    size: tuple[int, int]  # its (width, height) before resizing
    frames: int  # 1, or the frame count of an animation (only the first is used)
    notes: list[str] = field(default_factory=list)  # ui string codes the page shows as a caption


def decode_upload(
    raw: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE
) -> DecodedImage:
    """Check and decode an uploaded file; see the module doc for what is refused and what is converted."""
    from PIL import Image, UnidentifiedImageError

    from engine.multimodal.data import to_tower_image

    if raw is None or len(raw) == 0:
        raise ImageInputError("multimodal.image_empty")
    if len(raw) > max_bytes:
        raise ImageInputError("multimodal.image_too_many_bytes", size=len(raw), limit=max_bytes)
    try:
        # open() reads only the header: the size is known before a single pixel is decoded
        im = Image.open(io.BytesIO(bytes(raw)), formats=list(ALLOWED_FORMATS))
    except UnidentifiedImageError as exc:
        fmt = _sniff(raw)
        if fmt:
            raise ImageInputError("multimodal.image_format", format=fmt, allowed=", ".join(ALLOWED_FORMATS)) from exc
        raise ImageInputError("multimodal.not_an_image", detail="unknown file type") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageInputError("multimodal.not_an_image", detail=str(exc)[:120]) from exc
    width, height = im.size
    if width * height > max_pixels:
        raise ImageInputError("multimodal.image_too_many_pixels", width=width, height=height, limit=max_pixels)
    if width == 0 or height == 0:
        raise ImageInputError("multimodal.image_damaged", detail="zero width or height")
    frames = int(getattr(im, "n_frames", 1) or 1)
    notes = []
    if frames > 1:
        notes.append("ch14.upload_frames")
    mode = im.mode
    try:
        with warnings.catch_warnings():
            # a size between Pillow's warning and error thresholds is already refused above
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.seek(0)
            im.load()
            rgb_im = _to_rgb(im)
    except Image.DecompressionBombError as exc:
        raise ImageInputError("multimodal.image_too_many_pixels", width=width, height=height, limit=max_pixels) from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageInputError("multimodal.image_damaged", detail=str(exc)[:120]) from exc
    if mode not in ("RGB", "L"):
        notes.append("ch14.upload_mode")
    if mode in ("L", "LA", "1", "I", "I;16", "F"):
        notes.append("ch14.upload_gray")
    rgb_im.thumbnail((max_side, max_side))
    rgb = np.asarray(rgb_im, dtype=np.uint8)
    return DecodedImage(rgb, to_tower_image(rgb), im.format or "", mode, (width, height), frames, notes)


def _to_rgb(im):
    """Any Pillow mode -> RGB: CMYK through Pillow's conversion, 16-bit and float scaled to 8 bits, alpha composited
    on black (Fashion-MNIST's background), palette expanded."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        span = float(a.max() - a.min()) or 1.0
        return Image.fromarray(((a - a.min()) / span * 255).astype(np.uint8)).convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return im.convert("RGB")


_MAGIC = {
    b"%PDF": "PDF",
    b"PK\x03\x04": "ZIP",
    b"\x7fELF": "ELF",
    b"MZ": "EXE",
    b"<svg": "SVG",
    b"<?xml": "XML",
    b"\x00\x00\x01\x00": "ICO",
    b"8BPS": "PSD",
}


def _sniff(raw: bytes) -> str | None:
    """Name a common non-accepted file type by its first bytes (a clearer message than "not an image")."""
    head = bytes(raw[:8]).lstrip()
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    return None
