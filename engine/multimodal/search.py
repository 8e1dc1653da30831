"""Multimodal search (book 12.5): image embeddings from our CLIP's image tower stored in chapter 12's vector store
(`SQLiteVectorStore`, one sqlite file, exact cosine search), queried with the text tower — text -> image search.

The store holds Fashion-MNIST test images and a few real photos from scikit-image, marked `out_of_domain`: the
model has never seen anything like them, and search shows what that means (they still get a cosine, and sometimes
a high one — a similarity is not a confidence).

    index = build_image_index(clip, n_images=2000)         # ImageIndex over a sqlite file under LLMLAB_CACHE
    hits = search_images(index, clip, "운동화 사진", k=10)  # [ImageHit(node_id, score, source, label, ...)]
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.core.progress import ProgressFn, null_progress
from engine.multimodal.data import ImageSet, Photo, load_images, out_of_domain_photos
from engine.multimodal.errors import MultimodalError
from engine.multimodal.zero_shot import LoadedClip, embed_texts

__all__ = ["COLLECTION", "ImageHit", "ImageIndex", "build_image_index", "search_images"]

COLLECTION = "ch14_images"
MAX_K = 50


@dataclass
class ImageHit:
    node_id: str
    score: float  # cosine similarity of the query text with the image
    source: str  # "fashion-mnist" | "digits" | "photo"
    out_of_domain: bool
    index: int  # row in the test set (or in the photo list)
    label: int | None  # the true class (None for a photo)
    class_en: str
    class_ko: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ImageIndex:
    store: object  # engine.vectorstore.sqlite_store.SQLiteVectorStore
    path: Path
    images: ImageSet
    photos: list[Photo]
    count: int

    def image_of(self, hit: ImageHit) -> np.ndarray:
        """The (28, 28) image a hit points at (the photo's tower view for out-of-domain hits)."""
        return self.photos[hit.index].image if hit.source == "photo" else self.images.images[hit.index]


def _fingerprint(clip: LoadedClip) -> str:
    """Which CLIP made the vectors: a store built by another model is rebuilt, never mixed."""
    h = hashlib.sha256()
    for name, tensor in sorted(clip.model.image_tower.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    return "ch14-clip-" + h.hexdigest()[:12]


def default_path() -> Path:
    from engine.core.config import get_settings

    return get_settings().cache_dir / "vector_store" / f"{COLLECTION}.sqlite"


def build_image_index(
    clip: LoadedClip,
    n_images: int = 2000,
    photos: bool = True,
    path: str | Path | None = None,
    progress: ProgressFn = null_progress,
    images: ImageSet | None = None,
) -> ImageIndex:
    """Embed the first `n_images` test images (+ the photos) and store them; a store already built by the same
    model with the same count is reused as it is."""
    from llama_index.core.schema import TextNode

    from engine.multimodal.clip import image_embeddings
    from engine.vectorstore.sqlite_store import SQLiteVectorStore, StoreCorruptedError

    if not isinstance(n_images, int) or not 1 <= n_images <= 10_000:
        raise MultimodalError("input.out_of_range", name="n_images", low=1, high=10_000, value=n_images)
    images = images if images is not None else load_images("test", n_images)
    images = images.subset(np.arange(min(n_images, len(images))))
    pics = out_of_domain_photos() if photos else []
    path = Path(path) if path is not None else default_path()
    model_name = _fingerprint(clip)
    try:
        store = SQLiteVectorStore(path, embed_model_name=model_name)
    except StoreCorruptedError:  # built by another model, or damaged: it is only a cache, so rebuild it
        path.unlink(missing_ok=True)
        for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            extra.unlink(missing_ok=True)
        store = SQLiteVectorStore(path, embed_model_name=model_name)
    want = len(images) + len(pics)
    if store.count() != want:
        store.clear()
        progress(0.1, f"embedding {len(images):,} images")
        emb = image_embeddings(clip.model, images.images).numpy()  # (N, D)
        nodes = []
        for i in range(len(images)):
            c = int(images.labels[i])
            en, ko = images.classes.en[c], images.classes.ko[c]
            meta = {"source": images.source, "out_of_domain": 0, "index": i, "label": c, "en": en, "ko": ko}
            nodes.append(TextNode(id_=f"img-{i}", text=f"{en} / {ko}", metadata=meta, embedding=emb[i].tolist()))
        if pics:
            pemb = image_embeddings(clip.model, np.stack([p.image for p in pics])).numpy()
            for j, p in enumerate(pics):
                meta = {"source": "photo", "out_of_domain": 1, "index": j, "label": -1, "en": p.en, "ko": p.ko}
                nodes.append(TextNode(id_=f"photo-{p.name}", text=p.en, metadata=meta, embedding=pemb[j].tolist()))
        progress(0.7, "writing the vector store")
        for start in range(0, len(nodes), 1000):
            store.add(nodes[start : start + 1000])
    progress(1.0, "index ready")
    return ImageIndex(store, path, images, pics, store.count())


def search_images(
    index: ImageIndex, clip: LoadedClip, query: str, k: int = 10, include_out_of_domain: bool = True
) -> list[ImageHit]:
    """Text -> image: the query through the text tower, then the store's cosine search (a metadata filter drops
    the out-of-domain photos when asked)."""
    from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters, VectorStoreQuery

    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise MultimodalError("input.out_of_range", name="k", low=1, high=MAX_K, value=k)
    q = embed_texts(clip, [query])[0].numpy()
    filters = None
    if not include_out_of_domain:
        # 0/1, not a bool: LlamaIndex filter values are str, int, float or lists of them
        filters = MetadataFilters(filters=[MetadataFilter(key="out_of_domain", value=0)])
    res = index.store.query(VectorStoreQuery(query_embedding=q.tolist(), similarity_top_k=k, filters=filters))
    hits = []
    for node, score in zip(res.nodes, res.similarities, strict=True):
        m = node.metadata
        label = int(m["label"])
        hits.append(
            ImageHit(
                node.node_id,
                float(score),
                m["source"],
                bool(m["out_of_domain"]),
                int(m["index"]),
                None if label < 0 else label,
                m["en"],
                m["ko"],
            )
        )
    return hits


def search_report(index: ImageIndex, clip: LoadedClip, k: int = 10) -> dict:
    """For the shipped file: each class's plain prompt (en, ko) -> precision of the top k, and where the photos
    land; plus queries for things that are not clothes at all."""
    rows = []
    for c in range(len(index.images.classes)):
        for lang in ("en", "ko"):
            from engine.multimodal.data import prompts

            q = prompts(index.images.classes, lang)[c][0]
            hits = search_images(index, clip, q, k)
            right = sum(1 for h in hits if h.label == c)
            rows.append(
                {
                    "class": c,
                    "lang": lang,
                    "query": q,
                    "precision_at_k": right / k,
                    "photos_in_top_k": [h.node_id for h in hits if h.out_of_domain],
                }
            )
    odd = []
    for q in ("a photo of a cat", "고양이 사진", "a rocket", "a cup of coffee"):
        hits = search_images(index, clip, q, k)
        odd.append(
            {
                "query": q,
                "top": [{"id": h.node_id, "score": h.score, "en": h.class_en} for h in hits[:5]],
                "best_score": hits[0].score if hits else None,
            }
        )
    return {"k": k, "images": index.count, "by_class": rows, "odd_queries": odd}
