"""Ranking metrics and the evaluation protocol, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys import (
    Catalogue,
    Interactions,
    average_precision_at_k,
    coverage,
    evaluate,
    ndcg_at_k,
    recall_at_k,
    relevant_items,
    time_split,
)


def test_ndcg_hand_computed() -> None:
    # hits at ranks 1 and 3; 3 relevant → ideal = 1 + 1/log2(3) + 1/log2(4)
    dcg = 1.0 + 1.0 / math.log2(4)
    ideal = 1.0 + 1.0 / math.log2(3) + 0.5
    assert ndcg_at_k([7, 1, 8, 2], {7, 8, 9}, k=10) == pytest.approx(dcg / ideal)


def test_ndcg_ideal_uses_min_of_relevant_and_k() -> None:
    # 20 relevant, all top-10 are hits → perfect score, not 10/20-ish
    relevant = set(range(20))
    assert ndcg_at_k(list(range(10)), relevant, k=10) == pytest.approx(1.0)
    # single hit at rank 2 of 1 relevant: 1/log2(3)
    assert ndcg_at_k([5, 4], {4}, k=10) == pytest.approx(1 / math.log2(3))


def test_recall_divides_by_min_relevant_k() -> None:
    assert recall_at_k([1, 2, 3], {2, 3, 4, 5}, k=10) == pytest.approx(2 / 4)
    assert recall_at_k(list(range(10)), set(range(5, 30)), k=10) == pytest.approx(5 / 10)
    assert recall_at_k([1, 2, 3], {3}, k=2) == 0.0


def test_average_precision_hand_computed() -> None:
    # hits at ranks 1 and 3: (1/1 + 2/3) / min(3, 10)
    assert average_precision_at_k([7, 1, 8, 2], {7, 8, 9}) == pytest.approx((1 + 2 / 3) / 3)


def test_empty_relevant_is_an_error() -> None:
    with pytest.raises(ValueError):
        ndcg_at_k([1], set())


def test_coverage() -> None:
    assert coverage([[0, 1], [1, 2]], 10) == pytest.approx(0.3)


def _events(rows: list[tuple[str, str, int]]) -> Interactions:
    users, items, times = zip(*rows, strict=True)
    return Interactions.from_rows(list(users), list(items), list(times))


def test_protocol_relevant_set_skips_and_cold_users() -> None:
    train = _events([("a", "x", 1), ("a", "y", 2), ("b", "x", 3)])
    test = _events([("a", "x", 10), ("a", "z", 11), ("b", "x", 12), ("c", "y", 13)])
    catalogue = Catalogue.of(train, test)
    matrix = catalogue.matrix(train)
    evaluation = relevant_items(catalogue, matrix, test)
    index = catalogue.user_index
    item = catalogue.item_index
    # a: x was in training → only z; b: nothing new → skipped; c: no history → kept.
    assert evaluation.users.tolist() == [index["a"], index["c"]]
    assert evaluation.relevant == (frozenset({item["z"]}), frozenset({item["y"]}))


def test_evaluate_never_recommends_training_items() -> None:
    train = _events([("a", "x", 1), ("b", "y", 2)])
    test = _events([("a", "y", 10), ("b", "x", 11)])
    catalogue = Catalogue.of(train, test)
    matrix = catalogue.matrix(train)
    evaluation = relevant_items(catalogue, matrix, test)

    def prefers_history(users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return np.asarray(history.toarray() * 10 + 1, dtype=np.float32)

    scores = evaluate(prefers_history, matrix, evaluation, k=1)
    # history scored highest but masked: the only other item is the relevant one
    assert scores.ndcg == pytest.approx(1.0) and scores.recall == pytest.approx(1.0)
    assert scores.users == 2


def test_time_split_last_fifth_of_span() -> None:
    events = _events([("a", "x", t) for t in range(0, 101, 10)])
    train, test = time_split(events, 0.2)
    assert test.timestamps.min() == 80 and train.timestamps.max() == 70
