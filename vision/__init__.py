"""vision: product photos → L2-normalised float32 vectors (+ ImageNet "looks like" labels).

In-process (catalog import, evaluation)::

    from vision import embed_images
    [emb] = embed_images([jpeg_bytes], top_k=5)   # emb.vector, emb.model, emb.dim, emb.labels

Over HTTP (the app; needs no torch)::

    async with VisionClient("http://127.0.0.1:8090") as vision:
        emb = await vision.embed(jpeg_bytes, labels=5)

The torch-backed names (`embed_images`, `ImageEmbedder`, `get_embedder`, `load_model`) are
imported on first use, so importing the client does not load PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vision.client import VisionClient, VisionUnavailable
from vision.errors import (
    ImageRejected,
    ImageTooLarge,
    ImageTooManyPixels,
    ModelUnavailable,
    UnsupportedImage,
)
from vision.values import Embedding, ImageLabel, confident_label

if TYPE_CHECKING:
    from vision.embedder import ImageEmbedder, embed_images, get_embedder
    from vision.models import DEFAULT_MODEL, MODEL_NAMES, load_model

_LAZY = {
    "ImageEmbedder": "vision.embedder",
    "embed_images": "vision.embedder",
    "get_embedder": "vision.embedder",
    "load_model": "vision.models",
    "DEFAULT_MODEL": "vision.models",
    "MODEL_NAMES": "vision.models",
}

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_NAMES",
    "Embedding",
    "ImageEmbedder",
    "ImageLabel",
    "ImageRejected",
    "ImageTooLarge",
    "ImageTooManyPixels",
    "ModelUnavailable",
    "UnsupportedImage",
    "VisionClient",
    "VisionUnavailable",
    "confident_label",
    "embed_images",
    "get_embedder",
    "load_model",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vision' has no attribute {name!r}")
