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
from numpy.typing import NDArray

from .als import ALS
from .base import FloatArray, Recommender
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
from .rerank import MAX_TRAINING_USERS, MIN_POSITIVES, Moment, Reranker, fit_classifier

VALIDATION_FRACTION = 0.2
# The re-ranker learns from these held-out windows of the training period (each the last
# fraction of its time span), together.
RANKER_WINDOWS = (0.2, 0.1)

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
    rerank_candidates: int = 200


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


# (data, config, fitted ALS) -> the fitted blend that proposes candidates
BaseBuilder = Callable[[TrainingSet, Config, Fitted], Fitted]
# The re-ranker's candidates come from the blend with ALS in it even where ALS adds nothing to
# the blend's own top 10: candidates want recall from more than one source.
CANDIDATE_ALS_WEIGHT = 0.3


def candidate_config(config: Config) -> Config:
    """The blend configuration that proposes the re-ranker's candidates."""
    return replace(config, als_weight=max(config.als_weight, CANDIDATE_ALS_WEIGHT))


def reranker(
    data: TrainingSet, config: Config, base: Fitted, als_model: Fitted | None = None
) -> Reranker:
    """A re-ranker over the fitted blend `base` (no classifier yet); ALS (fitted here unless
    given) is one of its signals whatever the blend's ALS weight."""
    assert isinstance(base.model, Blend)
    return Reranker(
        base.model,
        base.user_items,
        Moment(data.catalogue, data.interactions, data.now, data.binary()),
        data.catalogue.baskets(data.interactions),
        [(als_model or als(data, config)).model],
        config.season_lead_days,
        config.seasonal_width_days,
        config.rerank_candidates,
    )


def train_ranker(
    train: Interactions,
    config: Config,
    build_base: BaseBuilder | None = None,
    catalogue_items: tuple[str, ...] = (),
    seed: int = 0,
) -> tuple[Any, int]:
    """The classifier of the re-ranker, learnt from `train` only. For each of
    `RANKER_WINDOWS` (the last fraction of the time span held out): the blend (or
    `build_base`) fitted on the part before, its candidates labelled by what each user bought
    in the part after. Several windows teach it more than one season, the latest the most
    recent one. Returns (classifier, labelled hits); no classifier with fewer than
    `MIN_POSITIVES` hits."""
    config = candidate_config(config)
    features: list[FloatArray] = []
    labels: list[NDArray[np.int8]] = []
    for fraction in RANKER_WINDOWS:
        fit_part, validation = time_split(train, fraction)
        if len(fit_part) == 0 or len(validation) == 0:
            continue
        catalogue = Catalogue.of(fit_part, validation, items=catalogue_items)
        data = TrainingSet.of(fit_part, catalogue)
        evaluation = relevant_items(catalogue, data.binary(), validation)
        if sum(len(wanted) for wanted in evaluation.relevant) < MIN_POSITIVES:
            continue
        pick = np.arange(len(evaluation.users))
        if len(pick) > MAX_TRAINING_USERS:
            pick = np.sort(np.random.default_rng(seed).choice(pick, MAX_TRAINING_USERS, False))
        als_fitted = als(data, config)
        if build_base is None:
            base = blend(data, config, als_model=als_fitted)
        else:
            base = build_base(data, config, als_fitted)
        model = reranker(data, config, base, als_fitted)
        window = model.examples(evaluation.users[pick], tuple(evaluation.relevant[i] for i in pick))
        features.append(window[0])
        labels.append(window[1])
    hits = int(sum(int(part.sum()) for part in labels))
    if hits < MIN_POSITIVES:
        return None, hits
    return fit_classifier(np.concatenate(features), np.concatenate(labels)), hits


def reranked(
    data: TrainingSet,
    config: Config,
    base: Fitted,
    classifier: Any,
    als_model: Fitted | None = None,
) -> Fitted:
    """The blend `base` (fitted with `candidate_config`) with its candidates re-ordered by a
    trained `classifier`."""

    def build() -> Recommender:
        model = reranker(data, config, base, als_model)
        model.classifier = classifier
        return model

    fitted = _timed("blend_reranked", build, base.user_items)
    fitted.train_seconds += base.train_seconds
    return fitted


def score_with_fallback(fitted: Fitted, fallback: Recommender) -> Callable:
    """Scores of `fitted`; users with an empty row get `fallback`'s (popularity) scores."""

    def score(userids: np.ndarray, _history: sp.csr_matrix) -> np.ndarray:
        rows = fitted.user_items[userids]
        scores = fitted.model.score(userids, rows)
        if isinstance(fitted.model, Blend | Reranker):
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


DEFAULT_MODEL = "blend_reranked"


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
    started = time.perf_counter()
    classifier, hits = train_ranker(train, chosen)
    ranker_seconds = time.perf_counter() - started
    if log:
        log(f"re-ranker: {hits} labelled hits on the validation split, {ranker_seconds:.1f} s")
    ease_fitted = ease(data, chosen)
    als_fitted = als(data, chosen)
    blended = blend(data, chosen, ease_fitted, als_fitted)
    models = [
        popularity(data),
        trending(data, chosen),
        cooccurrence(data, chosen),
        als_fitted,
        ease_fitted,
        blended,
    ]
    if classifier is not None:
        proposer = candidate_config(chosen)
        base = blend(data, proposer, ease_fitted, als_fitted)
        models.append(reranked(data, proposer, base, classifier, als_fitted))
        models[-1].train_seconds += ranker_seconds
    for fitted in models:
        scores = assess(fitted, data, evaluation, k)
        default = fitted.name == (DEFAULT_MODEL if classifier is not None else "blend")
        yield Result(fitted.name, scores, fitted.train_seconds, default)
