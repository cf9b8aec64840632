"""Implicit-feedback ALS (Hu, Koren, Volinsky 2008) through the `implicit` library, on CPU."""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from .base import FloatArray, IntArray, Recommender, top_n


class ALS(Recommender):
    """`alpha` scales the confidence of observed weights (confidence = 1 + alpha·weight)."""

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        random_state: int = 0,
        num_threads: int = 0,
    ) -> None:
        """`num_threads=0` uses every core; 1 makes training reproducible (no thread races)."""
        self.factors = factors
        self.num_threads = num_threads
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self._model: Any = None

    def fit(self, user_items: sp.csr_matrix) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares

        model = AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.random_state,
            num_threads=self.num_threads,
            calculate_training_loss=False,
        )
        # implicit's own threads do the work; BLAS threads on top of them only contend.
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="OpenBLAS is configured", category=RuntimeWarning
            )
            model.fit(sp.csr_matrix(user_items, dtype=np.float32), show_progress=False)
        self._model = model
        self.n_items = user_items.shape[1]
        return self

    def score(self, userids: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        self._check_fitted()
        users = np.asarray(self._model.user_factors)
        items = np.asarray(self._model.item_factors)
        known = (userids >= 0) & (userids < users.shape[0])
        factors = np.zeros((len(userids), items.shape[1]), dtype=np.float32)
        factors[known] = users[userids[known]]
        if (~known).any():
            # New users: solve for their factors from their current row.
            rows = sp.csr_matrix(user_items[np.flatnonzero(~known)], dtype=np.float32)
            with threadpool_limits(1, "blas"):
                factors[~known] = self._model.recalculate_user(np.arange(rows.shape[0]), rows)
        return np.asarray(factors @ items.T, dtype=np.float32)

    def similar_items(self, itemid: int, N: int = 10) -> tuple[IntArray, FloatArray]:
        self._check_fitted()
        items = np.asarray(self._model.item_factors)
        norms = np.linalg.norm(items, axis=1) + 1e-9
        cosine = (items @ items[itemid]) / (norms * norms[itemid])
        return top_n(cosine.astype(np.float32), N, exclude=itemid)
