"""PCA-whitening fitted on a catalogue's own vectors (unsupervised: no labels involved).

Centring on the catalogue mean and dividing each principal direction by a power of its spread
stops the few directions every photo shares (background, lighting) from dominating cosine
similarity. Fit once per catalogue after embedding it, save next to the index, and apply the
same transform to queries (the service loads it with --whitening).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class Whitening:
    """x → normalise((x - mean) @ projection); projection is (input_dim, dim)."""

    mean: np.ndarray
    projection: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.projection.shape[1])

    @property
    def tag(self) -> str:
        """Short content hash: vectors whitened by different fits must not be mixed."""
        digest = hashlib.sha1(self.projection.tobytes() + self.mean.tobytes()).hexdigest()
        return f"pcaw{self.dim}-{digest[:8]}"

    @classmethod
    def fit(cls, vectors: np.ndarray, dim: int = 256, power: float = 0.5) -> Whitening:
        """Fit on unit vectors (one row per catalogue image); `power` 0.5 = half whitening."""
        x = np.asarray(vectors, dtype=np.float64)
        dim = min(dim, x.shape[0] - 1, x.shape[1])
        mean = x.mean(axis=0)
        _, singular, vt = np.linalg.svd(x - mean, full_matrices=False)
        variance = singular[:dim] ** 2 / len(x)
        projection = vt[:dim].T / (variance + 1e-6) ** (power / 2)
        return cls(mean.astype(np.float32), projection.astype(np.float32))

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        out = (np.asarray(vectors, dtype=np.float32) - self.mean) @ self.projection
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, mean=self.mean, projection=self.projection)

    @classmethod
    def load(cls, path: Path) -> Whitening:
        with np.load(path) as data:
            return cls(data["mean"].astype(np.float32), data["projection"].astype(np.float32))
