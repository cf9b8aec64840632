"""Recommendations: interactions as sparse matrices, models behind one interface, evaluation.

    catalogue = Catalogue.of(train)
    user_items = catalogue.matrix(train)
    model = EASE().fit(user_items)
    ids, scores = model.recommend(row, user_items[row], N=10, rules=Rules(in_stock=stock))

Customers, not items: `rfm` (recency/frequency/monetary scores and segments) and `churn`
(probability of no order in the next 90 days) work on `OrderRecord`s.

Never imports the app: the app hands arrays in (store rows → `Interactions`).
"""

from .als import ALS
from .base import NotFitted, Recommender
from .blend import Blend
from .churn import ChurnModel, churn_features, churn_labels, train_for
from .churn import evaluate as evaluate_churn
from .content import Content, tfidf
from .cooccurrence import CoOccurrence
from .data import (
    Catalogue,
    Interactions,
    decay_weights,
    first_orders,
    load_csv,
    seasonal_weights,
    split_at,
    time_split,
    write_csv,
)
from .ease import EASE
from .evaluation import (
    EvaluationSet,
    Scores,
    average_precision_at_k,
    coverage,
    evaluate,
    ndcg_at_k,
    recall_at_k,
    relevant_items,
)
from .popularity import Popularity
from .rfm import SEGMENTS, OrderRecord, RFMFeatures, rfm_features, rfm_scores, rfm_segments
from .rules import Rules
from .serving import Precomputed, latest, precompute
from .training import Config, TrainingSet, compare, tune

__all__ = [
    "ALS",
    "EASE",
    "SEGMENTS",
    "Blend",
    "Catalogue",
    "ChurnModel",
    "CoOccurrence",
    "Config",
    "Content",
    "EvaluationSet",
    "Interactions",
    "NotFitted",
    "OrderRecord",
    "Popularity",
    "Precomputed",
    "RFMFeatures",
    "Recommender",
    "Rules",
    "Scores",
    "TrainingSet",
    "average_precision_at_k",
    "churn_features",
    "churn_labels",
    "compare",
    "coverage",
    "decay_weights",
    "evaluate",
    "evaluate_churn",
    "first_orders",
    "latest",
    "load_csv",
    "ndcg_at_k",
    "precompute",
    "recall_at_k",
    "relevant_items",
    "rfm_features",
    "rfm_scores",
    "rfm_segments",
    "seasonal_weights",
    "split_at",
    "tfidf",
    "time_split",
    "train_for",
    "tune",
    "write_csv",
]
