"""Photo search quality: leave-one-out nearest-neighbour precision of vectors against labels."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision.rerank import expand_query

DEFAULT_EXCLUDED_LABELS = ("Not sure", "Other")


@dataclass(frozen=True, slots=True)
class LabelledImage:
    """One row of a labels CSV: the image file and its label."""

    path: Path
    label: str


@dataclass(frozen=True, slots=True)
class PhotoSearchQuality:
    """Precision@k of leave-one-out neighbours, and what random neighbours would score."""

    model: str
    n: int
    precision_at_1: float
    precision_at_5: float
    precision_at_10: float
    random_precision: float

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "n": self.n,
            "precision_at_1": round(self.precision_at_1, 4),
            "precision_at_5": round(self.precision_at_5, 4),
            "precision_at_10": round(self.precision_at_10, 4),
            "random_precision": round(self.random_precision, 4),
        }


def read_labelled_images(
    images_dir: Path, labels_csv: Path, exclude_labels: Iterable[str] = DEFAULT_EXCLUDED_LABELS
) -> list[LabelledImage]:
    """Rows of a CSV with columns `image` (file name, `.jpg` optional) and `label`.

    Other columns are ignored. A row whose file is missing raises FileNotFoundError: the
    evaluation is over exactly the images the CSV lists.
    """
    excluded = set(exclude_labels)
    rows: list[LabelledImage] = []
    with labels_csv.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"image", "label"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{labels_csv} lacks column(s) {sorted(missing)}")
        for row in reader:
            label = row["label"].strip()
            if label in excluded:
                continue
            name = row["image"].strip()
            path = images_dir / name
            if not path.suffix and not path.exists():
                path = images_dir / f"{name}.jpg"
            if not path.exists():
                raise FileNotFoundError(f"{labels_csv} lists {name}, not found in {images_dir}")
            rows.append(LabelledImage(path, label))
    return rows


def _nearest(
    queries: np.ndarray, unit: np.ndarray, start: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k indices and cosines of each query row; row i is item start+i and never its own hit."""
    sims = queries @ unit.T
    rows = np.arange(sims.shape[0])
    sims[rows, rows + start] = -np.inf
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top_sims = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-top_sims, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)


def neighbour_precision(
    vectors: np.ndarray,
    labels: Sequence[str],
    model: str,
    ks: Sequence[int] = (1, 5, 10),
    query_expansion: int = 0,
) -> PhotoSearchQuality:
    """Each vector queries all the others (cosine); a neighbour counts when its label is equal.

    With `query_expansion` k > 0 each query is first expanded with its own top-k neighbours
    (never itself) and searched again, as photo search does.
    """
    n = len(labels)
    if n < 2:
        raise ValueError("need at least two labelled images")
    codes = np.unique(np.asarray(labels), return_inverse=True)[1]
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    k_max = min(max(ks), n - 1)
    hits = np.zeros((n, k_max), dtype=np.float64)
    for start in range(0, n, 1024):  # blocks keep memory flat for large catalogues
        queries = unit[start : start + 1024]
        if query_expansion > 0:
            first, sims = _nearest(queries, unit, start, min(query_expansion, n - 1))
            queries = expand_query(queries, unit[first], sims)
        top, _ = _nearest(queries, unit, start, k_max)
        hits[start : start + len(top)] = codes[top] == codes[start : start + len(top), None]
    counts = Counter(codes.tolist())
    random = float(np.mean([(counts[c] - 1) / (n - 1) for c in codes.tolist()]))
    p = {k: float(hits[:, : min(k, k_max)].mean()) for k in ks}
    name = f"{model}+qe{query_expansion}" if query_expansion > 0 else model
    return PhotoSearchQuality(name, n, p[1], p[5], p[10], random)


def embed_files(
    paths: Sequence[Path],
    model: str,
    clip_dir: Path | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> tuple[str, np.ndarray]:
    """Embed files exactly as the catalogue import does (same decoding, model and recipe)."""
    from vision.embedder import get_embedder

    embedder = get_embedder(model, clip_dir)
    vectors = np.zeros((len(paths), embedder.dim), dtype=np.float32)
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        found = embedder.embed_images([p.read_bytes() for p in chunk], batch_size=batch_size)
        vectors[start : start + len(chunk)] = np.stack([e.vector for e in found])
        if progress:
            progress(len(chunk))
    return embedder.model_id, vectors


def evaluate_photo_search(
    images_dir: Path,
    labels_csv: Path,
    model: str,
    exclude_labels: Iterable[str] = DEFAULT_EXCLUDED_LABELS,
    clip_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
    on_count: Callable[[int], None] | None = None,
    query_expansion: int = 0,
) -> PhotoSearchQuality:
    """`bot eval photo-search`: embed every listed image, then leave-one-out kNN precision."""
    rows = read_labelled_images(images_dir, labels_csv, exclude_labels)
    if on_count:
        on_count(len(rows))
    model_id, vectors = embed_files([r.path for r in rows], model, clip_dir, progress=progress)
    labels = [r.label for r in rows]
    return neighbour_precision(vectors, labels, model_id, query_expansion=query_expansion)
