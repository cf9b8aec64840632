"""Value types shared by the library, the service and the client (numpy only, no torch)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class ImageLabel:
    """One ImageNet class the picture may show, with the model's probability."""

    name: str
    probability: float

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "probability": round(self.probability, 4)}


@dataclass(frozen=True, slots=True, eq=False)
class Embedding:
    """One picture's vector (unit L2 norm, float32) and the model that made it."""

    vector: np.ndarray
    model: str
    labels: tuple[ImageLabel, ...] = field(default=())

    @property
    def dim(self) -> int:
        return int(self.vector.shape[0])

    def to_json(self) -> dict[str, object]:
        """The service's body for this picture. The vector stays a float32 array: the service
        encodes it with orjson, which writes each float32 in the shortest form that reads back
        to the same float32 (half the bytes of float64 digits, a twentieth of the time)."""
        return {
            "model": self.model,
            "dim": self.dim,
            "vector": self.vector,
            "labels": [label.to_json() for label in self.labels],
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any], model: str | None = None) -> Embedding:
        vector = np.asarray(body["vector"], dtype=np.float32)
        labels: Sequence[Mapping[str, Any]] = body.get("labels") or ()
        return cls(
            vector=vector,
            model=str(body.get("model") or model or ""),
            labels=tuple(ImageLabel(str(x["name"]), float(x["probability"])) for x in labels),
        )


def confident_label(labels: Sequence[ImageLabel], threshold: float = 0.3) -> ImageLabel | None:
    """The top label when the model is sure enough to say "looks like a ..."; else None."""
    if labels and labels[0].probability >= threshold:
        return labels[0]
    return None
