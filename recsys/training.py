"""From interactions to fitted models: the default blend, the baselines, and their tuning.

Time enters through the matrices, not the models: trending popularity is popularity on
time-decayed weights, the cold-start mix uses new customers' first orders, the seasonal part
counts last year's sales around the same date, and the blend scores a user's history with
older purchases decayed. Hyper-parameters are chosen on a validation split carved from the
training period only (its last `VALIDATION_FRACTION` of the time span); the test period is
never looked at.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from .als import ALS
from .base import Recommender
from .blend import Blend
from .cooccurrence import CoOccurrence
from .data import (
    DAY,
    Catalogue,
    Interactions,
    decay_weights,
    first_orders,
    seasonal_weights,
    time_split,
)
from .ease import EASE
from .evaluation import EvaluationSet, Scores, evaluate, relevant_items
from .popularity import Popularity

VALIDATION_FRACTION = 0.2

ALS_GRID = {"factors": (32, 64, 128), "regularization": (0.01, 0.1), "alpha": (1.0, 10.0)}
EASE_GRID = {"regularization": (100.0, 300.0, 1000.0)}
BLEND_GRID = {
    "trend_weight": (0.05, 0.1, 0.2),
    "als_weight": (0.0, 0.3),
    "history_half_life_days": (None, 180.0),
}


@dataclass(frozen=True)
class Config:
    """Every knob of the models built here; the defaults are the tuned values."""

    als_factors: int = 64
    als_regularization: float = 0.01
    als_alpha: float = 1.0
    als_iterations: int = 15
    ease_regularization: float = 300.0
    trend_half_life_days: float = 14.0
    trend_weight: float = 0.1
    als_weight: float = 0.3
    history_half_life_days: float | None = 180.0
    # Last year's same season: cannot be tuned on a validation period that has no previous
    # year in the data, so it is a fixed prior (it only acts where last year's data exists).
    seasonal_weight: float = 0.3
    seasonal_width_days: float = 30.0
    season_lead_days: float = 30.0
    cooccurrence_alpha: float = 0.5


@dataclass
class Fitted:
    """A fitted model and the matrix of user rows it is scored with."""

    name: str
    model: Recommender
    user_items: sp.csr_matrix
    train_seconds: float


@dataclass(frozen=True)
class TrainingSet:
    catalogue: Catalogue
    interactions: Interactions
    now: int

    @classmethod
    def of(cls, train: Interactions, catalogue: Catalogue | None = None) -> TrainingSet:
        return cls(catalogue or Catalogue.of(train), train, int(train.timestamps.max()))

    def matrix(self, weights: np.ndarray | None = None) -> sp.csr_matrix:
        return self.catalogue.matrix(self.interactions, weights)

    def binary(self) -> sp.csr_matrix:
        matrix = self.matrix()
        matrix.data[:] = 1.0
        return matrix

    def history(self, half_life_days: float | None) -> sp.csr_matrix:
        """Users' rows for scoring: each pair weighted by its latest event's decay (≤ 1)."""
        if half_life_days is None:
            return self.binary()
        data = self.interactions
        decayed = decay_weights(
            Interactions(data.user_ids, data.item_ids, data.timestamps, np.ones(len(data), "f4")),
            self.now,
            half_life_days,
        )
        rows = self.catalogue.rows(data.user_ids)
        cols = self.catalogue.cols(data.item_ids)
        keep = (rows >= 0) & (cols >= 0)
        matrix = sp.coo_matrix(
            (decayed[keep], (rows[keep], cols[keep])),
            shape=(len(self.catalogue.users), len(self.catalogue.items)),
        ).tocsr()  # duplicates summed: clip to the most recent event's weight at most 1
        matrix.data = np.minimum(matrix.data, 1.0).astype(np.float32)
        return matrix


def _timed(name: str, build: Callable[[], Recommender], user_items: sp.csr_matrix) -> Fitted:
    start = time.perf_counter()
    model = build()
    return Fitted(name, model, user_items, time.perf_counter() - start)


def popularity(data: TrainingSet) -> Fitted:
    return _timed("popularity", lambda: Popularity().fit(data.binary()), data.binary())


def als(data: TrainingSet, config: Config) -> Fitted:
    model = ALS(
        config.als_factors, config.als_regularization, config.als_alpha, config.als_iterations
    )
    return _timed("implicit_als", lambda: model.fit(data.binary()), data.binary())


def ease(data: TrainingSet, config: Config) -> Fitted:
    model = EASE(config.ease_regularization)
    return _timed("ease", lambda: model.fit(data.binary()), data.binary())


def cooccurrence(data: TrainingSet, config: Config) -> Fitted:
    def build() -> Recommender:
        baskets = data.catalogue.baskets(data.interactions)
        return CoOccurrence(config.cooccurrence_alpha, baskets=baskets).fit(data.binary())

    return _timed("basket_cooccurrence", build, data.binary())


def trending(data: TrainingSet, config: Config) -> Fitted:
    weights = decay_weights(data.interactions, data.now, config.trend_half_life_days)
    model = Popularity()
    return _timed("popularity_decayed", lambda: model.fit(data.matrix(weights)), data.binary())


def blend(
    data: TrainingSet,
    config: Config,
    ease_model: Fitted | None = None,
    als_model: Fitted | None = None,
) -> Fitted:
    """The default: EASE (+ ALS) on decayed history, plus trending and seasonal popularity;
    new customers get what other new customers bought first, trending and seasonal items."""

    def build() -> Recommender:
        inter = data.interactions
        trend = Popularity().fit(
            data.matrix(decay_weights(inter, data.now, config.trend_half_life_days))
        )
        newcomers = Popularity().fit(
            data.matrix(
                decay_weights(inter, data.now, config.trend_half_life_days) * first_orders(inter)
            )
        )
        target = int(data.now + config.season_lead_days * DAY)
        season_weights = seasonal_weights(inter, target, config.seasonal_width_days)
        warm: list[tuple[Recommender, float]] = [
            (ease_model.model if ease_model else ease(data, config).model, 1.0),
            (trend, config.trend_weight),
        ]
        cold: list[tuple[Recommender, float]] = [(newcomers, 1.0), (trend, 0.3)]
        if season_weights.sum() > 0 and config.seasonal_weight:
            season = Popularity().fit(data.matrix(season_weights))
            warm.append((season, config.trend_weight * config.seasonal_weight))
            cold.append((season, config.seasonal_weight))
        if config.als_weight:
            warm.append(
                (als_model.model if als_model else als(data, config).model, config.als_weight)
            )
        return Blend(warm, cold).fit(data.binary())

    extra = (ease_model.train_seconds if ease_model else 0.0) + (
        als_model.train_seconds if als_model and config.als_weight else 0.0
    )
    fitted = _timed("blend", build, data.history(config.history_half_life_days))
    fitted.train_seconds += extra
    return fitted


def score_with_fallback(fitted: Fitted, fallback: Recommender) -> Callable:
    """Scores of `fitted`; users with an empty row get `fallback`'s (popularity) scores."""

    def score(userids: np.ndarray, _history: sp.csr_matrix) -> np.ndarray:
        rows = fitted.user_items[userids]
        scores = fitted.model.score(userids, rows)
        if isinstance(fitted.model, Blend):
            return scores
        cold = np.asarray(rows.getnnz(axis=1) == 0)
        if cold.any():
            scores[cold] = fallback.score(userids[cold], rows[np.flatnonzero(cold)])
        return scores

    return score


def assess(fitted: Fitted, data: TrainingSet, evaluation: EvaluationSet, k: int) -> Scores:
    fallback = Popularity().fit(data.binary())
    return evaluate(score_with_fallback(fitted, fallback), data.binary(), evaluation, k)


def _grid(grid: dict[str, tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    keys = list(grid)
    for values in itertools.product(*(grid[key] for key in keys)):
        yield dict(zip(keys, values, strict=True))


def tune(train: Interactions, k: int = 10, log: Callable[[str], None] | None = None) -> Config:
    """Grid-search ALS, EASE and the blend weights on the training period's last part."""
    fit_part, validation = time_split(train, VALIDATION_FRACTION)
    catalogue = Catalogue.of(fit_part, validation)
    data = TrainingSet.of(fit_part, catalogue)
    evaluation = relevant_items(catalogue, data.binary(), validation)
    say = log or (lambda _line: None)
    config = Config()

    best_als = (-1.0, config)
    for point in _grid(ALS_GRID):
        candidate = replace(config, **{f"als_{key}": value for key, value in point.items()})
        ndcg = assess(als(data, candidate), data, evaluation, k).ndcg
        say(f"validation als {point}: ndcg@{k} {ndcg:.4f}")
        best_als = max(best_als, (ndcg, candidate), key=lambda pair: pair[0])
    config = best_als[1]

    best_ease: tuple[float, Config, Fitted | None] = (-1.0, config, None)
    for point in _grid(EASE_GRID):
        candidate = replace(config, ease_regularization=point["regularization"])
        fitted = ease(data, candidate)
        ndcg = assess(fitted, data, evaluation, k).ndcg
        say(f"validation ease {point}: ndcg@{k} {ndcg:.4f}")
        if ndcg > best_ease[0]:
            best_ease = (ndcg, candidate, fitted)
    config, ease_fitted = best_ease[1], best_ease[2]
    als_fitted = als(data, config)

    best_blend = (-1.0, config)
    for point in _grid(BLEND_GRID):
        candidate = replace(config, **point)
        ndcg = assess(blend(data, candidate, ease_fitted, als_fitted), data, evaluation, k).ndcg
        say(f"validation blend {point}: ndcg@{k} {ndcg:.4f}")
        best_blend = max(best_blend, (ndcg, candidate), key=lambda pair: pair[0])
    return best_blend[1]


DEFAULT_MODEL = "blend"


@dataclass(frozen=True)
class Result:
    model: str
    scores: Scores
    train_seconds: float
    default: bool

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "recall_at_10": round(self.scores.recall, 4),
            "ndcg_at_10": round(self.scores.ndcg, 4),
            "map_at_10": round(self.scores.map, 4),
            "coverage": round(self.scores.coverage, 4),
            "train_seconds": round(self.train_seconds, 2),
            "users_evaluated": self.scores.users,
            "default": self.default,
        }


def compare(
    train: Interactions,
    test: Interactions,
    k: int = 10,
    config: Config | None = None,
    log: Callable[[str], None] | None = None,
) -> Iterator[Result]:
    """Tune on `train` alone (unless `config` is given), then score every model on `test`."""
    chosen = config or tune(train, k, log)
    if log:
        log(f"chosen: {chosen}")
    catalogue = Catalogue.of(train, test)
    data = TrainingSet.of(train, catalogue)
    evaluation = relevant_items(catalogue, data.binary(), test)
    ease_fitted = ease(data, chosen)
    als_fitted = als(data, chosen)
    models = [
        popularity(data),
        trending(data, chosen),
        cooccurrence(data, chosen),
        als_fitted,
        ease_fitted,
        blend(data, chosen, ease_fitted, als_fitted),
    ]
    for fitted in models:
        scores = assess(fitted, data, evaluation, k)
        yield Result(fitted.name, scores, fitted.train_seconds, fitted.name == DEFAULT_MODEL)
