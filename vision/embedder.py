"""ImageEmbedder: pictures → L2-normalised float32 vectors (+ ImageNet labels), on CPU or CUDA."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vision.imaging import ImageLimits, open_image
from vision.labels import imagenet_class_names
from vision.models import DEFAULT_MODEL, ImageModel, load_model, normalise
from vision.values import Embedding, ImageLabel


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA when present (or asked for), else the CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ImageEmbedder:
    """Holds one model on one device, channels_last everywhere (oneDNN's depthwise convolutions
    on the CPU are much faster in it, the more so in batches); CUDA adds fp16. One code path."""

    def __init__(
        self,
        model: ImageModel,
        device: torch.device | None = None,
        limits: ImageLimits | None = None,
    ) -> None:
        self.model = model
        self.device = device or pick_device()
        self.half = self.device.type == "cuda"
        self.limits = limits or ImageLimits()
        net = model.module().to(self.device)
        if self.half:
            net.half()
        net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._names = imagenet_class_names() if model.has_labels else ()

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def dim(self) -> int:
        return self.model.dim

    def prepare(self, data: bytes | Image.Image) -> np.ndarray:
        """Untrusted bytes (or a decoded picture) → model input; raises ImageRejected.

        Thread-safe and GIL-light (Pillow releases it while decoding): the service runs it in
        a thread pool.
        """
        image = (
            data
            if isinstance(data, Image.Image)
            else open_image(data, self.limits, draft=self.model.input_size)
        )
        return self.model.prepare(image)

    @torch.inference_mode()
    def embed_arrays(self, arrays: Sequence[np.ndarray], top_k: int = 0) -> list[Embedding]:
        """One forward pass over prepared inputs (all the same shape)."""
        if not arrays:
            return []
        batch = torch.from_numpy(np.stack(arrays)).to(self.device, non_blocking=True)
        if self.half:
            batch = batch.half()
        batch = batch.contiguous(memory_format=torch.channels_last)
        features, logits = self.model.forward(batch)
        vectors = normalise(features.float().cpu().numpy())
        labels: list[tuple[ImageLabel, ...]] = [()] * len(arrays)
        if top_k > 0 and logits is not None:
            labels = self._top_labels(logits.float(), top_k)
        model_id = self.model_id
        return [Embedding(v, model_id, lab) for v, lab in zip(vectors, labels, strict=True)]

    def embed_images(
        self, images: Sequence[bytes | Image.Image], top_k: int = 0, batch_size: int = 16
    ) -> list[Embedding]:
        """Decode, prepare and embed, `batch_size` at a time. Raises on the first bad image."""
        out: list[Embedding] = []
        for start in range(0, len(images), batch_size):
            arrays = [self.prepare(item) for item in images[start : start + batch_size]]
            out.extend(self.embed_arrays(arrays, top_k))
        return out

    def warm_up(self) -> None:
        """One forward pass so the first request does not pay for lazy initialisation."""
        size = self.model.input_size
        self.embed_arrays([np.zeros((3, size, size), dtype=np.float32)], top_k=1)

    def _top_labels(self, logits: torch.Tensor, k: int) -> list[tuple[ImageLabel, ...]]:
        probs = torch.softmax(logits, dim=1)
        values, indices = probs.topk(min(k, probs.shape[1]), dim=1)
        return [
            tuple(
                ImageLabel(self._names[i], float(p))
                for p, i in zip(row_p.tolist(), row_i.tolist(), strict=True)
            )
            for row_p, row_i in zip(values, indices, strict=True)
        ]


_CACHE: dict[tuple[str, str | None, str], ImageEmbedder] = {}


def get_embedder(
    model: str = DEFAULT_MODEL, clip_dir: Path | None = None, device: str | None = None
) -> ImageEmbedder:
    """A process-wide embedder per (model, checkpoint, device), loaded on first use."""
    dev = pick_device(device)
    key = (model, str(clip_dir) if clip_dir else None, str(dev))
    if key not in _CACHE:
        _CACHE[key] = ImageEmbedder(load_model(model, clip_dir), dev)
    return _CACHE[key]


def embed_images(
    images: Sequence[bytes | Image.Image],
    model: str = DEFAULT_MODEL,
    top_k: int = 0,
    clip_dir: Path | None = None,
) -> list[Embedding]:
    """In-process embedding (catalog import, evaluation): same vectors as the service's."""
    return get_embedder(model, clip_dir).embed_images(images, top_k=top_k)
