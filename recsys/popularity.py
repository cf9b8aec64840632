"""Popularity: every user gets the items with the largest summed interaction weight.

Time decay, "new customers' first orders only" or "same season last year" are choices of the
weights in the matrix it is fitted on (see `recsys.data.decay_weights`, `recsys.training`).
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from .base import FloatArray, IntArray, Recommender, top_n


class Popularity(Recommender):
    def __init__(self) -> None:
        self.item_scores: FloatArray = np.zeros(0, dtype=np.float32)

    def fit(self, user_items: sp.csr_matrix) -> Self:
        totals = np.asarray(user_items.sum(axis=0)).ravel().astype(np.float32)
        top = totals.max() if len(totals) and totals.max() > 0 else 1.0
        self.item_scores = (totals / top).astype(np.float32)
        self.n_items = user_items.shape[1]
        return self

    def score(self, userids: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        self._check_fitted()
        return np.tile(self.item_scores, (len(userids), 1))

    def similar_items(self, itemid: int, N: int = 10) -> tuple[IntArray, FloatArray]:
        """Not a similarity model: the most popular other items."""
        self._check_fitted()
        return top_n(self.item_scores, N, exclude=itemid)
