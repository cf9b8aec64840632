"""The interface every model implements (in the manner of the `implicit` library).

Rows of `user_items` are users, columns items (a `scipy.sparse.csr_matrix`, the shared
currency); ids are row/column positions fixed by a `Catalogue`. A model is fitted once on the
training matrix; at serving time it is handed a user's current row, so history added after
training (or a user unknown at training time) is taken into account where the model can.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .rules import Rules, rank

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int64]


class NotFitted(RuntimeError):
    """`fit` must be called before scoring."""


class Recommender(ABC):
    """fit(user_items) once; then score, recommend and similar_items."""

    n_items: int = 0

    @abstractmethod
    def fit(self, user_items: sp.csr_matrix) -> Self:
        """Learn from users x items interaction weights."""

    @abstractmethod
    def score(self, userids: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        """Dense scores, one row per entry of `userids`; `user_items` holds those users' rows.

        A user id outside the fitted range (or -1) is a new user: only their row counts.
        Higher is better; scores are comparable within a row only.
        """

    @abstractmethod
    def similar_items(self, itemid: int, N: int = 10) -> tuple[IntArray, FloatArray]:
        """Items most similar to `itemid` (the item itself left out)."""

    def recommend(
        self,
        userid: int,
        user_items: sp.csr_matrix,
        N: int = 10,
        filter_already_liked_items: bool = True,
        rules: Rules | None = None,
    ) -> tuple[IntArray, FloatArray]:
        """Top-N item ids and scores for one user; `user_items` is that user's 1 x items row."""
        row = sp.csr_matrix(user_items)
        if row.shape[0] != 1:
            raise ValueError("user_items must be the user's single row")
        scores = self.score(np.asarray([userid], dtype=np.int64), row)[0]
        exclude = row.indices if filter_already_liked_items else np.empty(0, dtype=np.int64)
        return rank(scores, exclude, N, rules)

    def _check_fitted(self) -> None:
        if self.n_items == 0:
            raise NotFitted(f"{type(self).__name__}.fit has not been called")


def row_max_normalised(scores: FloatArray) -> FloatArray:
    """Each row divided by its largest positive value (negative scores clipped to 0)."""
    clipped = np.maximum(scores, 0.0, dtype=np.float32)
    top = clipped.max(axis=1, keepdims=True)
    top[top <= 0] = 1.0
    return (clipped / top).astype(np.float32)


def has_history(user_items: sp.csr_matrix) -> NDArray[np.bool_]:
    return np.asarray(user_items.getnnz(axis=1) > 0)


def top_n(values: FloatArray, N: int, exclude: int | None = None) -> tuple[IntArray, FloatArray]:
    vals = values.astype(np.float32, copy=True)
    if exclude is not None:
        vals[exclude] = -np.inf
    n = min(N, len(vals))
    if n <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    part = np.argpartition(-vals, n - 1)[:n]
    order = part[np.argsort(-vals[part], kind="stable")]
    order = order[np.isfinite(vals[order])]
    return order.astype(np.int64), vals[order]
