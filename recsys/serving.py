"""Precomputed recommendations: top-N per user and item neighbours, saved as npz + json.

Training scores every known user once with the default blend (EASE on decayed history, trending
and seasonal popularity; new customers get the cold mix), re-orders the blend's candidates with
the re-ranker (`recsys.rerank`) when the history is long enough to train it, and keeps each
user's best `top_n` items, never one they already have. Item neighbours mix what was bought
together (EASE weights and basket co-occurrence) with content similarity (TF-IDF or any item
vectors), so a product nobody has bought yet still has neighbours. The app applies stock, price
and diversity rules at request time on top of these lists (they change faster than the model).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .base import row_max_normalised
from .blend import Blend
from .data import Catalogue, Interactions, decay_weights
from .ease import EASE
from .popularity import Popularity
from .training import (
    Config,
    Fitted,
    TrainingSet,
    als,
    blend,
    candidate_config,
    cooccurrence,
    ease,
    reranked,
    train_ranker,
)

ARTEFACT_VERSION = 1
# EASE inverts an items x items matrix; past this many items neighbours and scores come from
# basket co-occurrence instead (memory items², time items³). Neighbour lists are built
# from dense items x items matrices too: beyond ~20k items they want a blocked version.
EASE_MAX_ITEMS = 8_000
CONTENT_WEIGHT = 0.3  # content similarity next to bought-together evidence in neighbour lists
# The re-ranker scores (users x candidates) rows with boosted trees; past this many users the
# most recently active ones are re-ranked and the others keep the blend's lists.
RERANK_MAX_USERS = 50_000


@dataclass(frozen=True)
class Precomputed:
    """Arrays over `items` (columns) and `users` (rows); -1 pads short lists."""

    items: NDArray[np.str_]
    users: NDArray[np.str_]
    user_top: NDArray[np.int32]  # users x top_n item positions, best first
    user_scores: NDArray[np.float32]
    neighbours: NDArray[np.int32]  # items x k item positions, best first
    neighbour_scores: NDArray[np.float32]
    bought_together: NDArray[np.bool_]  # items x k: some customer bought both
    trending: NDArray[np.float32]  # decayed popularity ("this week"), max 1
    newcomers: NDArray[np.float32]  # the cold-start mix: what new customers buy first
    sold: NDArray[np.bool_]  # the item has interactions at all
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def item_index(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.items.tolist())}

    @property
    def user_index(self) -> dict[str, int]:
        return {user: i for i, user in enumerate(self.users.tolist())}

    def save(self, directory: str | Path, keep: int = 3) -> Path:
        """Write `model-<UTC time>.npz` (+ `.json`) atomically; keep the newest `keep`."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time_ns() % 10**9:09d}"
        path = folder / f"model-{stamp}.npz"
        partial = folder / f".{path.stem}.partial.npz"
        arrays = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "meta"}
        np.savez(partial, **arrays)
        path.with_suffix(".json").write_text(json.dumps(self.meta, indent=2, sort_keys=True))
        partial.replace(path)  # the npz appears last: a reader never sees half an artefact
        for old in sorted(folder.glob("model-*.npz"))[:-keep]:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Precomputed:
        path = Path(path)
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return cls(**arrays, meta=meta)


def latest(directory: str | Path) -> Path | None:
    """The newest saved artefact in `directory`, if any."""
    found = sorted(Path(directory).glob("model-*.npz"))
    return found[-1] if found else None


def precompute(
    interactions: Interactions,
    items: Mapping[str, str] | None = None,
    item_vectors: Callable[[list[str]], sp.csr_matrix | NDArray[np.float32]] | None = None,
    now: int | None = None,
    config: Config | None = None,
    top_n: int = 50,
    k: int = 20,
    batch: int = 2048,
    rerank: bool = True,
) -> Precomputed:
    """Fit the default blend on `interactions` and keep its lists.

    `items` maps every catalogue item id to a text (title, description, category...) for
    TF-IDF content vectors; `item_vectors` may replace TF-IDF (e.g. image/text embeddings);
    items that were never bought are included through them. With `rerank`, the re-ranker
    (`recsys.rerank`) orders the lists of up to `RERANK_MAX_USERS` users when the history is
    long enough to train it (its validation split has `MIN_POSITIVES` hits).
    """
    started = time.perf_counter()
    config = replace(config or Config(), als_weight=0.0)  # ALS adds little and costs most
    catalogue = Catalogue.of(interactions, items=items or ())
    n_items = len(catalogue.items)
    if len(interactions) == 0:
        now = now or int(time.time())
        empty = np.zeros(n_items, dtype=np.float32)
        neighbours, scores, bought = _neighbours(None, _content(catalogue, items, item_vectors), k)
        return Precomputed(
            np.asarray(catalogue.items, dtype=str), np.asarray(catalogue.users, dtype=str),
            np.full((0, top_n), -1, np.int32), np.zeros((0, top_n), np.float32),
            neighbours, scores, bought, empty, empty.copy(), np.zeros(n_items, bool),
            {"version": ARTEFACT_VERSION, "interactions": 0, "trained_at": now},
        )  # fmt: skip
    data = TrainingSet(catalogue, interactions, now or int(interactions.timestamps.max()))
    use_ease = n_items <= EASE_MAX_ITEMS

    def base(
        data: TrainingSet,
        config: Config,
        als_model: Fitted | None = None,
        collaborative: Fitted | None = None,
    ) -> Fitted:
        # Without EASE the same blend runs with basket co-occurrence in its place.
        if collaborative is None:
            collaborative = ease(data, config) if use_ease else cooccurrence(data, config)
        return blend(data, config, ease_model=collaborative, als_model=als_model)

    fitted = base(data, config)
    assert isinstance(fitted.model, Blend)
    collaborative_model = fitted.model.warm[0][0]
    classifier, hits = (
        train_ranker(interactions, config, base, catalogue.items) if rerank else (None, 0)
    )
    ranker = None
    if classifier is not None:
        proposer = candidate_config(config)
        als_model = als(data, proposer)
        collaborative = Fitted("collaborative", collaborative_model, fitted.user_items, 0.0)
        proposing = base(data, proposer, als_model, collaborative)
        ranker = reranked(data, proposer, proposing, classifier, als_model).model
    model_seconds = time.perf_counter() - started

    history = fitted.user_items
    binary = data.binary()
    n_users = history.shape[0]
    user_top = np.full((n_users, top_n), -1, dtype=np.int32)
    user_scores = np.zeros((n_users, top_n), dtype=np.float32)
    reranked_users = _most_recent(data, RERANK_MAX_USERS) if ranker is not None else None
    for start in range(0, n_users, batch):
        rows = np.arange(start, min(start + batch, n_users), dtype=np.int64)
        scores = fitted.model.score(rows, history[rows])
        if ranker is not None and reranked_users is not None:
            chosen = rows[reranked_users[rows]]
            if len(chosen):
                # Scaled so each list's best is 1, as the blend's roughly is: the app mixes
                # these with last-order neighbours.
                scores[reranked_users[rows]] = row_max_normalised(
                    ranker.score(chosen, history[chosen])
                )
        scores[binary[rows].nonzero()] = -np.inf
        ids, vals = _top_rows(scores, top_n)
        user_top[rows] = ids
        user_scores[rows] = vals

    cf = collaborative_model
    cf_similarity = row_max_normalised(cf.weights) if isinstance(cf, EASE) else _sparse_rowmax(cf)
    content = _content(catalogue, items, item_vectors)
    neighbours, scores, _ = _neighbours(cf_similarity, content, k)
    bought = _bought_together(binary, neighbours)

    trend = Popularity().fit(
        data.matrix(decay_weights(interactions, data.now, config.trend_half_life_days))
    )
    empty_row = sp.csr_matrix((1, n_items), dtype=np.float32)
    newcomers = fitted.model.score(np.asarray([-1], dtype=np.int64), empty_row)[0]
    sold = np.asarray(binary.getnnz(axis=0) > 0)
    meta = {
        "version": ARTEFACT_VERSION,
        "trained_at": data.now,
        "interactions": len(interactions),
        "users": n_users,
        "items": n_items,
        "collaborative": "ease" if use_ease else "basket_cooccurrence",
        "reranker": {
            "trained": classifier is not None,
            "validation_hits": hits,
            "users": int(reranked_users.sum()) if reranked_users is not None else 0,
        },
        "content": "vectors" if item_vectors else ("tfidf" if items else "none"),
        "model_seconds": round(model_seconds, 3),
        "seconds": round(time.perf_counter() - started, 3),
        "config": {key: value for key, value in config.__dict__.items()},
    }
    return Precomputed(
        np.asarray(catalogue.items, dtype=str),
        np.asarray(catalogue.users, dtype=str),
        user_top,
        user_scores,
        neighbours,
        scores,
        bought,
        trend.item_scores.astype(np.float32),
        row_max_normalised(newcomers[None, :])[0],
        sold,
        meta,
    )


def _most_recent(data: TrainingSet, limit: int) -> NDArray[np.bool_]:
    """Per user row: among the `limit` most recently active users."""
    rows = data.catalogue.rows(data.interactions.user_ids)
    keep = rows >= 0
    latest = np.full(len(data.catalogue.users), np.iinfo(np.int64).min)
    np.maximum.at(latest, rows[keep], data.interactions.timestamps[keep])
    chosen = np.zeros(len(latest), dtype=bool)
    chosen[np.argsort(-latest, kind="stable")[:limit]] = True
    return chosen


def _top_rows(scores: NDArray[np.float32], n: int) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    n_cols = scores.shape[1]
    n_take = min(n, n_cols)
    part = np.argpartition(-scores, n_take - 1, axis=1)[:, :n_take]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int32)
    vals = np.take_along_axis(vals, order, axis=1)
    ids[~np.isfinite(vals) | (vals <= 0)] = -1
    vals = np.where(ids >= 0, vals, 0.0).astype(np.float32)
    out_ids = np.full((scores.shape[0], n), -1, dtype=np.int32)
    out_vals = np.zeros((scores.shape[0], n), dtype=np.float32)
    out_ids[:, :n_take] = ids
    out_vals[:, :n_take] = vals
    return out_ids, out_vals


def _sparse_rowmax(model: Any) -> NDArray[np.float32]:
    similarity = sp.csr_matrix(model.similarity, dtype=np.float32)
    return row_max_normalised(similarity.toarray())


def _content(
    catalogue: Catalogue,
    items: Mapping[str, str] | None,
    item_vectors: Callable[[list[str]], sp.csr_matrix | NDArray[np.float32]] | None,
) -> NDArray[np.float32] | None:
    """Cosine similarity between items' content vectors (None without content)."""
    from .content import tfidf

    ids = list(catalogue.items)
    if item_vectors is not None:
        vectors = item_vectors(ids)
    elif items:
        vectors = tfidf([items.get(item, "") for item in ids], min_df=1)
    else:
        return None
    if isinstance(vectors, np.ndarray):
        dense = np.asarray(vectors, dtype=np.float32)
    else:
        dense = np.asarray(sp.csr_matrix(vectors).toarray(), dtype=np.float32)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    dense /= norms
    similarity = np.asarray(dense @ dense.T, dtype=np.float32)
    np.fill_diagonal(similarity, 0.0)
    return similarity


def _bought_together(binary: sp.csr_matrix, neighbours: NDArray[np.int32]) -> NDArray[np.bool_]:
    """True where a customer really bought both items (EASE also links items indirectly)."""
    together = sp.csr_matrix(binary.T @ binary)
    out = np.zeros(neighbours.shape, dtype=bool)
    for item in range(neighbours.shape[0]):
        partners = together.indices[together.indptr[item] : together.indptr[item + 1]]
        out[item] = np.isin(neighbours[item], partners) & (neighbours[item] >= 0)
    return out


def _neighbours(
    cf: NDArray[np.float32] | None, content: NDArray[np.float32] | None, k: int
) -> tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.bool_]]:
    if cf is None and content is None:
        return (np.zeros((0, k), np.int32), np.zeros((0, k), np.float32), np.zeros((0, k), bool))
    base = cf if cf is not None else content
    assert base is not None
    combined = np.zeros_like(base, dtype=np.float32)
    if cf is not None:
        combined += cf
    if content is not None:
        combined += (CONTENT_WEIGHT if cf is not None else 1.0) * np.maximum(content, 0.0)
    np.fill_diagonal(combined, -np.inf)
    ids, vals = _top_rows(combined, k)
    if cf is not None:
        bought = np.take_along_axis(cf, np.maximum(ids, 0), axis=1) > 0
        bought &= ids >= 0
    else:
        bought = np.zeros(ids.shape, dtype=bool)
    return ids, vals, bought
