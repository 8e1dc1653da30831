"""The images and captions of chapter 14: Fashion-MNIST (10 clothing classes, 28x28 grayscale), read from the IDX
files Debian's `dataset-fashion-mnist` installs, with scikit-learn's digits as a clearly labelled fallback when the
files are not there; a few real photos from scikit-image as the out-of-domain set; class names and caption
templates in Korean and English.

    data = load_images("train")           # ImageSet: images (N, 28, 28) uint8, labels (N,), classes, source
    if data.notice: ...                   # a code: "multimodal.data_fallback" when the digits stand in
    captions(data.labels[:4], data.classes, "ko", rng)   # ["티셔츠 사진", ...]
    prompts(data.classes, "en")          # (n_classes, n_templates) list of "a photo of a {label}." strings
    photos = out_of_domain_photos()      # [Photo(name, image (28, 28) uint8, rgb (H, W, 3) uint8), ...]

Nothing here downloads: the IDX files are a Debian package, the digits ship inside scikit-learn, the photos ship
inside scikit-image (only the bundled ones are used, never pooch's downloads).
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.multimodal.errors import MultimodalError

__all__ = [
    "DIGITS",
    "FASHION",
    "FASHION_DIR",
    "SPLITS",
    "TEMPLATES",
    "ClassNames",
    "ImageSet",
    "Photo",
    "captions",
    "load_digits_set",
    "load_fashion_mnist",
    "load_images",
    "out_of_domain_photos",
    "prompts",
    "read_idx",
]

# LLMLAB_FASHION_MNIST points elsewhere (a test points it at an empty folder to exercise the fallback)
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
SPLITS = ("train", "test")
_FILES = {"train": "train", "test": "t10k"}
SIZE = 28  # every image of the chapter is 28x28 grayscale uint8 (the digits are scaled up to it)
MAX_IDX_ITEMS = 100_000  # a damaged header cannot make us allocate gigabytes


@dataclass(frozen=True)
class ClassNames:
    """Class names, index-aligned with the labels: `en` and `ko` tuples and the dataset's key."""

    key: str  # "fashion-mnist" or "digits"
    en: tuple[str, ...]
    ko: tuple[str, ...]

    def names(self, lang: str) -> tuple[str, ...]:
        if lang not in ("ko", "en"):
            raise MultimodalError("input.unknown_choice", name="lang", value=lang, choices="ko, en")
        return self.ko if lang == "ko" else self.en

    def __len__(self) -> int:
        return len(self.en)

    def index(self, name: str) -> int:
        """A class by its English or Korean name (case-insensitive) or its index as text."""
        wanted = str(name).strip().lower()
        for i, (en, ko) in enumerate(zip(self.en, self.ko, strict=True)):
            if wanted in (en.lower(), ko, str(i)):
                return i
        raise MultimodalError("input.unknown_choice", name="class", value=name, choices=", ".join(self.en))


# The label order of the IDX files (Zalando's README). Korean: the words a Korean shop would use.
FASHION = ClassNames(
    key="fashion-mnist",
    en=("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"),
    ko=("티셔츠", "바지", "스웨터", "원피스", "코트", "샌들", "셔츠", "운동화", "가방", "앵클부츠"),
)
DIGITS = ClassNames(
    key="digits",
    en=("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    ko=("영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"),
)

# Caption / prompt templates, `{label}` replaced by a class name. The first of each language is the plain prompt
# of the CLIP paper ("a photo of a {label}."); the others are what prompt ensembling averages over.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "a photo of a {label}.",
        "a picture of a {label}.",
        "a black and white photo of a {label}.",
        "a low resolution photo of a {label}.",
        "a product photo of a {label}.",
        "a {label}.",
    ),
    "ko": (
        "{label} 사진",
        "{label}의 사진",
        "흑백으로 찍은 {label} 사진",
        "해상도가 낮은 {label} 사진",
        "{label} 상품 사진",
        "{label}",
    ),
}


@dataclass
class ImageSet:
    """Images (N, 28, 28) uint8 with labels (N,) int64; `notice` is a message code when this is a stand-in."""

    images: np.ndarray  # (N, 28, 28) uint8, 0 = black background
    labels: np.ndarray  # (N,) int64 in [0, n_classes)
    classes: ClassNames
    source: str  # "fashion-mnist" | "digits"
    split: str
    notice: str | None = None  # "multimodal.data_fallback" when the digits stand in for Fashion-MNIST
    notice_fmt: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: np.ndarray) -> ImageSet:
        """The rows where `keep` (a boolean mask or an index array) selects."""
        return ImageSet(
            self.images[keep],
            self.labels[keep],
            self.classes,
            self.source,
            self.split,
            self.notice,
            dict(self.notice_fmt),
        )

    def as_float(self) -> np.ndarray:
        """(N, 1, 28, 28) float32 in [0, 1]: what the image tower reads."""
        return (self.images.astype(np.float32) / 255.0)[:, None]


# --- IDX files ---------------------------------------------------------------------------------------------------
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path, limit: int | None = None) -> np.ndarray:
    """An IDX file (gzip or raw) as an array: magic 0x00 0x00 <dtype> <ndim>, then ndim big-endian uint32 sizes.
    `limit` reads only the first `limit` items. A damaged file raises `multimodal.bad_idx` (never a huge
    allocation or a silently wrong array)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(4)
            if len(head) != 4 or head[:2] != b"\x00\x00" or head[2] not in _DTYPES or not 1 <= head[3] <= 4:
                raise MultimodalError("multimodal.bad_idx", path=str(path), reason="not an IDX header")
            ndim = head[3]
            dims = struct.unpack(f">{ndim}I", fh.read(4 * ndim))
            if dims[0] > MAX_IDX_ITEMS or any(d > 4096 for d in dims[1:]):
                raise MultimodalError("multimodal.bad_idx", path=str(path), reason=f"implausible sizes {dims}")
            n = dims[0] if limit is None else min(dims[0], int(limit))
            dtype = np.dtype(_DTYPES[head[2]])
            per_item = int(np.prod(dims[1:], dtype=np.int64)) if ndim > 1 else 1
            raw = fh.read(n * per_item * dtype.itemsize)
    except (OSError, EOFError, struct.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise MultimodalError("multimodal.data_missing", path=str(path)) from exc
        raise MultimodalError("multimodal.bad_idx", path=str(path), reason=str(exc)) from exc
    if len(raw) != n * per_item * dtype.itemsize:
        raise MultimodalError("multimodal.bad_idx", path=str(path), reason="the file ends early")
    return np.frombuffer(raw, dtype=dtype).reshape((n, *dims[1:])).astype(dtype.newbyteorder("="))


def fashion_dir() -> Path:
    return Path(os.environ.get("LLMLAB_FASHION_MNIST") or FASHION_DIR)


def load_fashion_mnist(split: str = "train", limit: int | None = None, root: str | Path | None = None) -> ImageSet:
    """Fashion-MNIST `split` ("train": 60,000 images, "test": 10,000) from the IDX files; `multimodal.data_missing`
    when they are not installed (`apt install dataset-fashion-mnist`)."""
    _check_split(split)
    root = Path(root) if root is not None else fashion_dir()
    stem = _FILES[split]
    images = read_idx(root / f"{stem}-images-idx3-ubyte.gz", limit)
    labels = read_idx(root / f"{stem}-labels-idx1-ubyte.gz", limit).astype(np.int64)
    if images.ndim != 3 or images.shape[1:] != (SIZE, SIZE) or len(images) != len(labels):
        raise MultimodalError("multimodal.bad_idx", path=str(root), reason=f"shapes {images.shape} / {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(FASHION)):
        raise MultimodalError("multimodal.bad_idx", path=str(root), reason="labels outside 0..9")
    return ImageSet(np.ascontiguousarray(images, dtype=np.uint8), labels, FASHION, "fashion-mnist", split)


def load_digits_set(split: str = "train", limit: int | None = None) -> ImageSet:
    """scikit-learn's 1,797 handwritten digits (8x8, 0..16), scaled up to 28x28 uint8 so every model of the chapter
    runs unchanged; a fixed split (seed 0): 1,437 train, 360 test."""
    from PIL import Image
    from sklearn.datasets import load_digits

    _check_split(split)
    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.target))
    cut = int(len(order) * 0.8)
    idx = order[:cut] if split == "train" else order[cut:]
    if limit is not None:
        idx = idx[: int(limit)]
    small = (d.images[idx] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)  # (n, 8, 8)
    # 8 -> 20 pixels with a 4-pixel border, like MNIST's centred digits
    big = np.zeros((len(idx), SIZE, SIZE), dtype=np.uint8)
    for i, im in enumerate(small):
        big[i, 4:24, 4:24] = np.asarray(Image.fromarray(im).resize((20, 20), Image.BILINEAR))
    return ImageSet(big, d.target[idx].astype(np.int64), DIGITS, "digits", split)


def load_images(split: str = "train", limit: int | None = None, fallback: bool = True) -> ImageSet:
    """Fashion-MNIST, or, when its files are missing and `fallback`, the digits with `notice` set to
    "multimodal.data_fallback" (a page shows it; the CLI prints it). Without fallback the error propagates."""
    try:
        return load_fashion_mnist(split, limit)
    except MultimodalError as exc:
        if not fallback or exc.code != "multimodal.data_missing":
            raise
        data = load_digits_set(split, limit)
        data.notice, data.notice_fmt = "multimodal.data_fallback", {"path": str(fashion_dir())}
        return data


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise MultimodalError("input.unknown_choice", name="split", value=split, choices=", ".join(SPLITS))


# --- captions and prompts ----------------------------------------------------------------------------------------
def _fill(template: str, label: str, lang: str) -> str:
    if lang == "en" and "a {label}" in template and label[:1].lower() in "aeiou":
        template = template.replace("a {label}", "an {label}")  # "an ankle boot"
    return template.replace("{label}", label)


def prompts(classes: ClassNames, lang: str = "en", templates: tuple[str, ...] | None = None) -> list[list[str]]:
    """(n_classes, n_templates) prompts: row c holds every template filled with class c's name."""
    names = classes.names(lang)
    templates = TEMPLATES[lang] if templates is None else templates
    for tpl in templates:
        if "{label}" not in tpl:
            raise MultimodalError("multimodal.template_without_label", template=tpl)
    return [[_fill(tpl, name, lang) for tpl in templates] for name in names]


def captions(labels, classes: ClassNames, lang: str, rng: np.random.Generator) -> list[str]:
    """One caption per label: the class name in a template drawn at random (`lang` "ko", "en" or "both": each
    caption's language drawn too)."""
    labels = np.asarray(labels)
    out = []
    for label in labels:
        use = lang if lang != "both" else ("ko" if rng.random() < 0.5 else "en")
        tpl = TEMPLATES[use][int(rng.integers(len(TEMPLATES[use])))]
        out.append(_fill(tpl, classes.names(use)[int(label)], use))
    return out


# --- out-of-domain photos ----------------------------------------------------------------------------------------
# scikit-image's bundled photos (in the wheel, no download). Fashion-MNIST's model has never seen any of them.
PHOTOS = {
    "astronaut": ("우주비행사", "an astronaut"),
    "camera": ("카메라맨", "a cameraman"),
    "coffee": ("커피잔", "a cup of coffee"),
    "chelsea": ("고양이", "a cat"),
    "rocket": ("로켓", "a rocket"),
    "coins": ("동전", "coins"),
    "moon": ("달 표면", "the moon's surface"),
    "page": ("책 페이지", "a page of text"),
}


@dataclass
class Photo:
    name: str  # the scikit-image function name
    ko: str
    en: str
    image: np.ndarray  # (28, 28) uint8: the photo as the tower sees it (gray, inverted when its background is light)
    rgb: np.ndarray  # (<=128, <=128, 3) uint8 thumbnail to show


def to_tower_image(array: np.ndarray) -> np.ndarray:
    """Any photo (H, W) or (H, W, 3|4) -> (28, 28) uint8 on Fashion-MNIST's terms: grayscale, square-padded, and
    inverted when its border is lighter than its centre (Fashion-MNIST items are light on a black background)."""
    from PIL import Image

    im = Image.fromarray(np.asarray(array)).convert("L")
    side = max(im.size)
    square = Image.new("L", (side, side), 0)
    square.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    small = np.asarray(square.resize((SIZE, SIZE), Image.BILINEAR), dtype=np.uint8)
    border = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]]).mean()
    if border > small[8:20, 8:20].mean():
        small = 255 - small
    return small


def out_of_domain_photos(names: tuple[str, ...] | None = None) -> list[Photo]:
    """The bundled scikit-image photos that load here (one missing from an install is skipped, not fatal)."""
    from PIL import Image
    from skimage import data as skdata

    out = []
    for name in names or tuple(PHOTOS):
        if name not in PHOTOS:
            raise MultimodalError("input.unknown_choice", name="photo", value=name, choices=", ".join(PHOTOS))
        try:
            array = np.asarray(getattr(skdata, name)())
        except Exception:
            continue
        if array.dtype != np.uint8:
            array = (array.astype(np.float64) / max(float(array.max()), 1.0) * 255).astype(np.uint8)
        thumb = Image.fromarray(array).convert("RGB")
        thumb.thumbnail((128, 128))
        ko, en = PHOTOS[name]
        out.append(Photo(name, ko, en, to_tower_image(array), np.asarray(thumb, dtype=np.uint8)))
    return out
