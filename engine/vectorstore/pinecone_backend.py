"""Pinecone behind the same LlamaIndex API, used when PINECONE_API_KEY is set.

Imported only on that path: `pinecone` and `llama-index-vector-stores-pinecone` are the optional `cloud` extra
(`pip install '.[cloud]'`). The key is read from the environment and never written anywhere. This path is tested
only when a key exists (tests/engine/test_vector_store.py says so when it skips).
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from engine.core.config import get_settings


def pinecone_index_name(collection: str) -> str:
    """`llmlab-<collection>` in Pinecone's alphabet (a-z, 0-9, -). A Hangul name also gets a short hash of itself,
    so 헌법 and 법률 do not both become `llmlab---`."""
    if collection.isascii():
        return re.sub(r"[^a-z0-9-]", "-", f"llmlab-{collection}".lower())[:45]
    kept = re.sub(r"[^a-z0-9]+", "-", collection.lower()).strip("-")[:27]  # the Latin part, if any: "notes-헌법"
    digest = hashlib.sha1(collection.encode("utf-8")).hexdigest()[:8]
    return "-".join(part for part in ("llmlab", kept, digest) if part)


def pinecone_vector_store(collection: str, dim: int) -> tuple[Any, str]:
    """A PineconeVectorStore on serverless index `llmlab-<collection>` (created on first use, cosine metric)."""
    from engine.vectorstore.errors import StoreError

    settings = get_settings()
    key = settings.pinecone_api_key
    if not key:
        raise StoreError("store.no_pinecone_key")
    try:
        from llama_index.vector_stores.pinecone import PineconeVectorStore
        from pinecone import Pinecone, ServerlessSpec
    except ImportError as exc:
        raise StoreError("store.no_pinecone_packages") from exc
    name = pinecone_index_name(collection)
    client = Pinecone(api_key=key)
    if name not in client.list_indexes().names():
        spec = ServerlessSpec(cloud=settings.pinecone_cloud, region=settings.pinecone_region)
        client.create_index(name=name, dimension=dim, metric="cosine", spec=spec)
        for _ in range(60):  # a new serverless index takes a few seconds to become ready
            if client.describe_index(name).status.get("ready"):
                break
            time.sleep(1)
    index = client.Index(name)
    return PineconeVectorStore(pinecone_index=index), f"pinecone://{name}"
