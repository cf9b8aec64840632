"""Blend: a weighted sum of fitted models, with a separate mix for users without history.

Each component's row is scaled to [0, 1] by its row maximum before weighting, so weights mean
the same whatever a model's score scale. Users whose row is empty get the `cold` mix
(popularity among new customers, trending, content...). Business rules apply in `recommend`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import scipy.sparse as sp

from .base import FloatArray, IntArray, Recommender, has_history, row_max_normalised, top_n

Weighted = Sequence[tuple[Recommender, float]]


class Blend(Recommender):
    def __init__(self, warm: Weighted, cold: Weighted | None = None, refit: bool = False) -> None:
        """`refit`: `fit` fits every component on its matrix; otherwise they arrive fitted."""
        if not warm:
            raise ValueError("a blend needs at least one component")
        self.warm = list(warm)
        self.cold = list(cold or [])
        self.refit = refit

    def fit(self, user_items: sp.csr_matrix) -> Self:
        if self.refit:
            for model, _ in self.warm + self.cold:
                model.fit(user_items)
        self.n_items = user_items.shape[1]
        return self

    def score(self, userids: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        self._check_fitted()
        total = _mix(self.warm, userids, user_items)
        if self.cold:
            cold = ~has_history(user_items)
            if cold.any():
                total[cold] = _mix(self.cold, userids[cold], user_items[np.flatnonzero(cold)])
        return total

    def similar_items(self, itemid: int, N: int = 10) -> tuple[IntArray, FloatArray]:
        """Weighted sum of the components' similarity lists (each scaled to its maximum)."""
        self._check_fitted()
        combined = np.zeros(self.n_items, dtype=np.float32)
        for model, weight in self.warm:
            ids, scores = model.similar_items(itemid, N * 5)
            if len(scores) and scores.max() > 0:
                combined[ids] += weight * np.maximum(scores, 0) / scores.max()
        return top_n(combined, N, exclude=itemid)


def _mix(parts: Weighted, userids: IntArray, user_items: sp.csr_matrix) -> FloatArray:
    total = np.zeros((len(userids), user_items.shape[1]), dtype=np.float32)
    for model, weight in parts:
        if weight:
            total += weight * row_max_normalised(model.score(userids, user_items))
    return total
