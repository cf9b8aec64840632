"""Offline evaluation: ranking metrics and the evaluation protocol.

Protocol (the one the project's figures are quoted with): a test user's relevant items are the
items they interacted with in the test period and not in training; items from the user's
training history are never recommended; users with an empty relevant set are skipped; users
with no training history are scored by the model's cold-start path; relevance is binary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .data import Catalogue, Interactions


def ndcg_at_k(ranked: Sequence[int], relevant: Collection[int], k: int = 10) -> float:
    """Binary-relevance NDCG@k; the ideal DCG puts min(|relevant|, k) hits on top."""
    if not relevant:
        raise ValueError("relevant set is empty")
    dcg = sum(1.0 / math.log2(rank + 2) for rank, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), k)))
    return dcg / ideal


def recall_at_k(ranked: Sequence[int], relevant: Collection[int], k: int = 10) -> float:
    """Hits in the top k divided by min(|relevant|, k)."""
    if not relevant:
        raise ValueError("relevant set is empty")
    hits = sum(1 for item in ranked[:k] if item in relevant)
    return hits / min(len(relevant), k)


def average_precision_at_k(ranked: Sequence[int], relevant: Collection[int], k: int = 10) -> float:
    """AP@k: mean of precision@i over the hit ranks i ≤ k, divided by min(|relevant|, k)."""
    if not relevant:
        raise ValueError("relevant set is empty")
    hits = 0
    total = 0.0
    for rank, item in enumerate(ranked[:k]):
        if item in relevant:
            hits += 1
            total += hits / (rank + 1)
    return total / min(len(relevant), k)


def coverage(recommended: Sequence[Sequence[int]], n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    if n_items == 0:
        return 0.0
    distinct = {item for ranked in recommended for item in ranked}
    return len(distinct) / n_items


@dataclass(frozen=True)
class EvaluationSet:
    """Test users (rows of the training matrix) and their relevant item columns."""

    users: NDArray[np.int64]
    relevant: tuple[frozenset[int], ...]


def relevant_items(
    catalogue: Catalogue, train_user_items: sp.csr_matrix, test: Interactions
) -> EvaluationSet:
    """Per test user: test-period items not in their training history (empty sets dropped)."""
    rows = catalogue.rows(test.user_ids)
    cols = catalogue.cols(test.item_ids)
    keep = (rows >= 0) & (cols >= 0)
    by_user: dict[int, set[int]] = {}
    for row, col in zip(rows[keep].tolist(), cols[keep].tolist(), strict=True):
        by_user.setdefault(row, set()).add(col)
    users: list[int] = []
    relevant: list[frozenset[int]] = []
    indptr, indices = train_user_items.indptr, train_user_items.indices
    for row in sorted(by_user):
        history = set(indices[indptr[row] : indptr[row + 1]].tolist())
        new = frozenset(by_user[row] - history)
        if new:
            users.append(row)
            relevant.append(new)
    return EvaluationSet(np.asarray(users, dtype=np.int64), tuple(relevant))


@dataclass(frozen=True)
class Scores:
    recall: float
    ndcg: float
    map: float
    coverage: float
    users: int


ScoreFunction = Callable[[NDArray[np.int64], sp.csr_matrix], NDArray[np.float32]]


def top_k(
    score: ScoreFunction,
    users: NDArray[np.int64],
    user_items: sp.csr_matrix,
    k: int = 10,
    batch: int = 512,
) -> list[list[int]]:
    """Top-k columns per user, never one of the user's training items."""
    ranked: list[list[int]] = []
    for start in range(0, len(users), batch):
        rows = users[start : start + batch]
        history = user_items[rows]
        scores = np.array(score(rows, history), dtype=np.float32, copy=True)
        scores[history.nonzero()] = -np.inf
        kk = min(k, scores.shape[1])
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        best = np.take_along_axis(part, order, axis=1)
        best_scores = np.take_along_axis(part_scores, order, axis=1)
        for cols, vals in zip(best, best_scores, strict=True):
            ranked.append([int(c) for c, v in zip(cols, vals, strict=True) if np.isfinite(v)])
    return ranked


def evaluate(
    score: ScoreFunction, user_items: sp.csr_matrix, evaluation: EvaluationSet, k: int = 10
) -> Scores:
    """Mean recall/NDCG/MAP@k over the evaluation users, and catalogue coverage."""
    if len(evaluation.users) == 0:
        return Scores(0.0, 0.0, 0.0, 0.0, 0)
    ranked = top_k(score, evaluation.users, user_items, k)
    pairs = list(zip(ranked, evaluation.relevant, strict=True))
    return Scores(
        recall=float(np.mean([recall_at_k(r, rel, k) for r, rel in pairs])),
        ndcg=float(np.mean([ndcg_at_k(r, rel, k) for r, rel in pairs])),
        map=float(np.mean([average_precision_at_k(r, rel, k) for r, rel in pairs])),
        coverage=coverage(ranked, user_items.shape[1]),
        users=len(pairs),
    )
