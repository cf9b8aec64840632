"""EASE (Steck 2019): a closed-form item-item linear model, B = I - P·diag(1/diag(P)).

P = (XᵀX + λI)⁻¹ over the items; the diagonal of B is forced to zero so an item cannot
explain itself. Exact, no iterations; memory is items² (3,600 items: 50 MB in float32).
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from .base import FloatArray, IntArray, Recommender, top_n


class EASE(Recommender):
    def __init__(self, regularization: float = 500.0, binary: bool = True) -> None:
        self.regularization = regularization
        self.binary = binary
        self.weights: FloatArray = np.zeros((0, 0), dtype=np.float32)

    def fit(self, user_items: sp.csr_matrix) -> Self:
        matrix = sp.csr_matrix(user_items, dtype=np.float64, copy=True)
        if self.binary:
            matrix.data[:] = 1.0
        gram = (matrix.T @ matrix).toarray()
        diagonal = np.diag_indices(gram.shape[0])
        gram[diagonal] += self.regularization
        precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))
        weights[diagonal] = 0.0
        self.weights = weights.astype(np.float32)
        self.n_items = gram.shape[0]
        return self

    def score(self, userids: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        self._check_fitted()
        return np.asarray(user_items @ self.weights, dtype=np.float32)

    def similar_items(self, itemid: int, N: int = 10) -> tuple[IntArray, FloatArray]:
        self._check_fitted()
        return top_n(self.weights[itemid], N, exclude=itemid)
