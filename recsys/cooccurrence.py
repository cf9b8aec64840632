"""Item-item co-occurrence ("bought together"), from orders when baskets are given.

similarity(i, j) = count(i and j together) / (count(i)·count(j))^alpha. Together means in one
basket (one order) when `baskets` (orders x items) are given at fit time, otherwise in one
user's history. A user's score for j sums the similarities to the items in their row.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from .base import FloatArray, IntArray, Recommender, top_n


class CoOccurrence(Recommender):
    def __init__(
        self,
        alpha: float = 0.5,
        neighbours: int = 100,
        baskets: sp.csr_matrix | None = None,
        user_weight: float = 0.0,
    ) -> None:
        self.alpha = alpha
        self.neighbours = neighbours
        self.baskets = baskets
        self.user_weight = user_weight
        self.similarity: sp.csr_matrix = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(self, user_items: sp.csr_matrix) -> Self:
        counts = _binary(user_items)
        together = counts.T @ counts if self.baskets is None else _basket_pairs(self.baskets)
        if self.baskets is not None and self.user_weight:
            together = together + self.user_weight * (counts.T @ counts)
        together = sp.csr_matrix(together, dtype=np.float32)
        together.setdiag(0.0)
        together.eliminate_zeros()
        source = counts if self.baskets is None else _binary(self.baskets)
        freq = np.asarray(source.sum(axis=0)).ravel().astype(np.float32) + 1.0
        scale = sp.diags(1.0 / np.power(freq, self.alpha))
        self.similarity = _keep_top(sp.csr_matrix(scale @ together @ scale), self.neighbours)
        self.n_items = user_items.shape[1]
        return self

    def score(self, userids: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        self._check_fitted()
        return np.asarray((user_items @ self.similarity).toarray(), dtype=np.float32)

    def similar_items(self, itemid: int, N: int = 10) -> tuple[IntArray, FloatArray]:
        self._check_fitted()
        return top_n(self.similarity[itemid].toarray().ravel(), N, exclude=itemid)


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data[:] = 1.0
    return out


def _basket_pairs(baskets: sp.csr_matrix) -> sp.csr_matrix:
    binary = _binary(baskets)
    return sp.csr_matrix(binary.T @ binary)


def _keep_top(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of every row (the neighbourhood)."""
    rows, cols, vals = [], [], []
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        data, idx = matrix.data[start:end], matrix.indices[start:end]
        if len(data) > k:
            keep = np.argpartition(-data, k - 1)[:k]
            data, idx = data[keep], idx[keep]
        rows.append(np.full(len(idx), row))
        cols.append(idx)
        vals.append(data)
    if not rows:
        return matrix
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=matrix.shape,
        dtype=np.float32,
    )
