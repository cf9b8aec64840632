"""Business rules applied when a ranked list is cut: stock, price, category diversity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Rules:
    """Per-item facts (arrays over item ids) and the limits a list must respect.

    `in_stock`: False items are never returned. `price` with `min_price`/`max_price`: items
    outside the range are dropped. `category` with `max_per_category`: at most that many items
    of one category in a list (the next best items of other categories move up). `exclude`:
    item ids never to return (e.g. bought by the customer in the shop, not only in training).
    """

    in_stock: NDArray[np.bool_] | None = None
    price: NDArray[np.float64] | None = None
    min_price: float | None = None
    max_price: float | None = None
    category: NDArray[np.int64] | None = None
    max_per_category: int | None = None
    exclude: NDArray[np.int64] | None = None

    def allowed(self, n_items: int) -> NDArray[np.bool_]:
        mask = np.ones(n_items, dtype=bool)
        if self.in_stock is not None:
            mask &= self.in_stock[:n_items]
        if self.price is not None:
            if self.min_price is not None:
                mask &= self.price[:n_items] >= self.min_price
            if self.max_price is not None:
                mask &= self.price[:n_items] <= self.max_price
        if self.exclude is not None and len(self.exclude):
            mask[self.exclude] = False
        return mask


def rank(
    scores: NDArray[np.float32],
    exclude: NDArray[np.int32] | NDArray[np.int64],
    N: int,
    rules: Rules | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Best N items of one score row, skipping `exclude` and anything `rules` forbid."""
    vals = scores.astype(np.float32, copy=True)
    if len(exclude):
        vals[exclude] = -np.inf
    if rules is not None:
        vals[~rules.allowed(len(vals))] = -np.inf
    candidates = np.flatnonzero(np.isfinite(vals))
    if len(candidates) == 0 or N <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    diverse = rules is not None and rules.category is not None and rules.max_per_category
    # Enough candidates that the diversity cap can still fill N slots in most catalogues.
    pool = min(len(candidates), N * 10 if diverse else N)
    part = candidates[np.argpartition(-vals[candidates], pool - 1)[:pool]]
    order = part[np.argsort(-vals[part], kind="stable")]
    if diverse:
        assert rules is not None and rules.category is not None
        limit = int(rules.max_per_category or 0)
        taken: dict[int, int] = {}
        chosen: list[int] = []
        for item in order.tolist():
            cat = int(rules.category[item])
            if taken.get(cat, 0) < limit:
                taken[cat] = taken.get(cat, 0) + 1
                chosen.append(item)
                if len(chosen) == N:
                    break
        order = np.asarray(chosen, dtype=np.int64)
    else:
        order = order[:N]
    return order.astype(np.int64), vals[order]
