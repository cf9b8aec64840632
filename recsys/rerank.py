"""Second stage: gradient-boosted trees re-order the blend's best candidates per user.

The blend proposes each user's `candidates` best items (never one they already have); a
`HistGradientBoostingClassifier` scores every (user, candidate) pair from features the blend
alone cannot weigh against each other: each blend component's score, what was bought together
with the user's *last* order, how fast an item is selling now against a month ago, how long it
has been on sale and when it last sold, last year's sales around the same date, and how
recent, frequent and broad the user's buying is. It learns from a validation split of the
training period (the components fitted on its first part, labels from its last part), so the
test period is never seen. Re-ranked candidates score above every other item; the rest keep
the blend's order below them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .base import FloatArray, IntArray, Recommender, row_max_normalised
from .blend import Blend
from .cooccurrence import CoOccurrence
from .data import DAY, Catalogue, Interactions, seasonal_weights

CANDIDATES = 100
# Fewer labelled hits than this on the validation split and the ranker would learn noise:
# the blend is served alone.
MIN_POSITIVES = 200
MAX_TRAINING_USERS = 5_000  # sampled beyond this (rows = users x CANDIDATES)
POPULARITY_HALF_LIVES_DAYS = (7.0, 30.0, 120.0)
GROWTH_WINDOW_DAYS = 28.0
NEW_USER_DAYS = 0.0  # a user unknown at fitting time bought "now" (their row is their basket)


def _ranker() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    # Chosen by validation (never the test period) on Online Retail; small, regularised trees.
    return HistGradientBoostingClassifier(
        max_iter=400,
        learning_rate=0.03,
        max_leaf_nodes=15,
        min_samples_leaf=200,
        random_state=0,
    )


@dataclass(frozen=True)
class Moment:
    """What features are computed from: the interactions up to `now` and their matrices."""

    catalogue: Catalogue
    interactions: Interactions
    now: int
    binary: sp.csr_matrix  # users x items, 1 where bought

    def item_features(self, lead_days: float, width_days: float) -> dict[str, FloatArray]:
        inter = self.interactions
        cols = self.catalogue.cols(inter.item_ids)
        keep = cols >= 0
        cols, stamps = cols[keep], inter.timestamps[keep]
        n = len(self.catalogue.items)
        age = np.maximum(self.now - stamps, 0) / DAY
        out: dict[str, NDArray[Any]] = {}
        for half_life in POPULARITY_HALF_LIVES_DAYS:
            decayed = np.bincount(cols, weights=np.power(0.5, age / half_life), minlength=n)
            out[f"item_popularity_{half_life:g}d"] = np.log1p(decayed)
        out["item_popularity"] = np.log1p(np.bincount(cols, minlength=n))
        last_sale = np.full(n, np.inf)
        np.minimum.at(last_sale, cols, age)
        first_sale = np.zeros(n)
        np.maximum.at(first_sale, cols, age)
        out["item_days_since_last_sale"] = np.where(np.isfinite(last_sale), last_sale, 9999.0)
        out["item_days_on_sale"] = first_sale
        recent = np.bincount(cols[age <= GROWTH_WINDOW_DAYS], minlength=n)
        before = np.bincount(
            cols[(age > GROWTH_WINDOW_DAYS) & (age <= 2 * GROWTH_WINDOW_DAYS)], minlength=n
        )
        out["item_growth"] = np.log1p(recent) - np.log1p(before)
        target = int(self.now + lead_days * DAY)
        season = seasonal_weights(
            Interactions(inter.user_ids[keep], inter.item_ids[keep], stamps, inter.weights[keep]),
            target,
            width_days,
        )
        out["item_last_year_season"] = np.log1p(np.bincount(cols, weights=season, minlength=n))
        return {name: values.astype(np.float32) for name, values in out.items()}

    def user_features(self) -> dict[str, FloatArray]:
        inter = self.interactions
        rows = self.catalogue.rows(inter.user_ids)
        keep = rows >= 0
        rows, stamps = rows[keep], inter.timestamps[keep]
        m = len(self.catalogue.users)
        age = np.maximum(self.now - stamps, 0) / DAY
        last = np.full(m, 9999.0)
        np.minimum.at(last, rows, age)
        first = np.zeros(m)
        np.maximum.at(first, rows, age)
        orders = np.unique(np.stack([rows, stamps]), axis=1)[0]
        return {
            "user_days_since_last_order": last.astype(np.float32),
            "user_days_since_first_order": first.astype(np.float32),
            "user_orders": np.bincount(orders, minlength=m).astype(np.float32),
            "user_items": np.asarray(self.binary.getnnz(axis=1), dtype=np.float32),
        }

    def last_orders(self) -> sp.csr_matrix:
        """users x items, 1 for the items of each user's latest order."""
        inter = self.interactions
        rows = self.catalogue.rows(inter.user_ids)
        cols = self.catalogue.cols(inter.item_ids)
        keep = (rows >= 0) & (cols >= 0)
        rows, cols, stamps = rows[keep], cols[keep], inter.timestamps[keep]
        latest = np.full(len(self.catalogue.users), np.iinfo(np.int64).min)
        np.maximum.at(latest, rows, stamps)
        last = stamps == latest[rows]
        matrix = sp.csr_matrix(
            (np.ones(int(last.sum()), np.float32), (rows[last], cols[last])),
            shape=self.binary.shape,
        )
        matrix.data[:] = 1.0
        return matrix


class Reranker(Recommender):
    """The blend's top `candidates` per user, re-ordered by a trained classifier."""

    def __init__(
        self,
        blend: Blend,
        history: sp.csr_matrix,
        moment: Moment,
        baskets: sp.csr_matrix,
        signals: Sequence[Recommender] = (),
        lead_days: float = 30.0,
        width_days: float = 30.0,
        candidates: int = CANDIDATES,
    ) -> None:
        """`blend` arrives fitted on `moment`'s interactions and scores the users' `history`
        rows (as the blend's own `Fitted.user_items`); `baskets` are the orders; `signals` are
        more fitted models (e.g. ALS) whose scores of the users' purchases become features."""
        self.blend = blend
        self.signals = list(signals)
        self.history = history
        self.moment = moment
        self.candidates = candidates
        self.together = CoOccurrence(baskets=baskets).fit(moment.binary)
        self.items = moment.item_features(lead_days, width_days)
        self.users = moment.user_features()
        self.last = moment.last_orders()
        self.classifier: Any = None
        self.n_items = moment.binary.shape[1]

    def fit(self, user_items: sp.csr_matrix) -> Self:
        """Nothing to fit on the matrix: the classifier is learnt from `examples`."""
        return self

    def examples(
        self, userids: IntArray, relevant: tuple[frozenset[int], ...]
    ) -> tuple[FloatArray, NDArray[np.int8]]:
        """Feature rows and 0/1 labels of the candidates of `userids` (rows), labelled by
        their `relevant` items; candidates the user already has are left out."""
        candidates, features = self.features(userids, self.history[userids])
        labels = np.zeros(candidates.shape, dtype=np.int8)
        for row, wanted in enumerate(relevant):
            labels[row] = np.isin(candidates[row], list(wanted))
        usable = features[:, 0] > -np.inf
        return features[usable], labels.ravel()[usable]

    def features(
        self, userids: IntArray, history: sp.csr_matrix
    ) -> tuple[NDArray[np.int64], FloatArray]:
        """(users x candidates item columns, best blend score first; their feature rows).
        The first feature (the blend's score) is -inf where the candidate is already the
        user's (a catalogue with fewer free items than candidates)."""
        base = self.blend.score(userids, history)
        owned = _owned(userids, history, self.moment.binary)
        base[owned.nonzero()] = -np.inf
        k = min(self.candidates, base.shape[1])
        candidates = np.argpartition(-base, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(base, candidates, axis=1), axis=1, kind="stable")
        candidates = np.take_along_axis(candidates, order, axis=1)
        pick = (np.repeat(np.arange(len(userids)), k), candidates.ravel())

        last = self._last_orders(userids, history)
        first_model = self.blend.warm[0][0]
        columns: list[NDArray[Any]] = [base[pick], np.tile(np.arange(k), len(userids))]
        # The blend's parts vary with the data (last year's season only where it exists);
        # the features do not: its first, collaborative part, the others as item features.
        columns.append(row_max_normalised(first_model.score(userids, history))[pick])
        for model in self.signals:
            columns.append(row_max_normalised(model.score(userids, owned))[pick])
        columns.append(row_max_normalised(first_model.score(userids, owned))[pick])
        columns.append(row_max_normalised(first_model.score(userids, last))[pick])
        columns.append(row_max_normalised(self.together.score(userids, owned))[pick])
        columns.append(row_max_normalised(self.together.score(userids, last))[pick])
        columns.extend(values[pick[1]] for values in self.items.values())
        columns.extend(self._user_columns(userids, owned, k))
        features = np.column_stack([np.asarray(c, dtype=np.float32) for c in columns])
        owned_candidate = ~np.isfinite(features[:, 0])  # short catalogues: fewer free items
        features[~np.isfinite(features)] = -1.0
        features[owned_candidate, 0] = -np.inf
        return candidates.astype(np.int64), features

    def _last_orders(self, userids: IntArray, history: sp.csr_matrix) -> sp.csr_matrix:
        """Each user's latest order; a user unknown at fitting time: their current row."""
        known = _known(userids, self.last.shape[0])
        if known.all():
            return sp.csr_matrix(self.last[userids])
        rows = [
            self.last[[user]] if ok else _binary(history[[i]])
            for i, (user, ok) in enumerate(zip(userids.tolist(), known.tolist(), strict=True))
        ]
        return sp.csr_matrix(sp.vstack(rows), dtype=np.float32)

    def _user_columns(self, userids: IntArray, owned: sp.csr_matrix, k: int) -> list[FloatArray]:
        known = _known(userids, self.last.shape[0])
        safe = np.where(known, userids, 0)
        new_items = np.asarray(owned.getnnz(axis=1), dtype=np.float32)
        new_users: dict[str, FloatArray | float] = {
            "user_days_since_last_order": NEW_USER_DAYS,
            "user_days_since_first_order": NEW_USER_DAYS,
            "user_orders": np.minimum(new_items[~known], 1.0),
            "user_items": new_items[~known],
        }
        columns = []
        for name, values in self.users.items():
            column = values[safe].copy()
            if (~known).any():
                column[~known] = new_users[name]
            columns.append(np.repeat(column, k))
        return columns

    def score(self, userids: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        """Candidates score 1 + the classifier's probability (-inf for the user's own items);
        every other item half its row-scaled blend score, so the blend's order continues."""
        self._check_fitted()
        base = row_max_normalised(self.blend.score(userids, user_items)) * 0.5
        if self.classifier is None or len(userids) == 0:
            return base
        candidates, features = self.features(userids, user_items)
        probability = self.classifier.predict_proba(features)[:, 1].astype(np.float32)
        lifted = np.where(features[:, 0] > -np.inf, 1.0 + probability, -np.inf)
        np.put_along_axis(base, candidates, lifted.reshape(candidates.shape), axis=1)
        return base

    def similar_items(self, itemid: int, N: int = 10) -> tuple[IntArray, FloatArray]:
        return self.blend.similar_items(itemid, N)


def fit_classifier(features: FloatArray, labels: NDArray[np.int8]) -> Any:
    """The re-ranker's classifier, fitted on `Reranker.examples` (of one or more windows)."""
    return _ranker().fit(features, labels)


def _known(userids: IntArray, n_users: int) -> NDArray[np.bool_]:
    return (userids >= 0) & (userids < n_users)


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data[:] = 1.0
    return out


def _owned(userids: IntArray, history: sp.csr_matrix, binary: sp.csr_matrix) -> sp.csr_matrix:
    """What each user already has: their fitted row (known users) plus their current row."""
    known = _known(userids, binary.shape[0])
    current = _binary(history)
    if not known.any():
        return current
    fitted = sp.csr_matrix(binary[np.where(known, userids, 0)], dtype=np.float32)
    fitted = sp.diags(known.astype(np.float32)) @ fitted
    return _binary(sp.csr_matrix(fitted + current))
