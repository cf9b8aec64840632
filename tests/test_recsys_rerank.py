"""The re-ranker: learns from the validation split only, lifts a planted pattern the blend
under-weighs, never offers what a user has, and stands aside when there is too little data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from recsys import Catalogue, Interactions, precompute, time_split
from recsys.evaluation import evaluate, relevant_items
from recsys.rerank import MIN_POSITIVES, Reranker
from recsys.training import (
    Config,
    TrainingSet,
    als,
    blend,
    compare,
    reranked,
    score_with_fallback,
    train_ranker,
)

DAY = 86_400
CONFIG = Config(als_factors=8, als_iterations=5, ease_regularization=50.0)


def next_order_pattern(n_users: int = 900, seed: int = 1) -> Interactions:
    """Items 0-19 are "starters": whoever buys starter s in an order buys its refill s+20 in
    the next order. Everyone also buys popular noise items 40-79 in every order. Six orders per
    user, a fortnight apart, at staggered start dates over a year."""
    rng = np.random.default_rng(seed)
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    noise_p = 1.0 / np.arange(1, 41) ** 0.7
    noise_p /= noise_p.sum()
    for user in range(n_users):
        start = 1_700_000_000 + int(rng.integers(0, 300)) * DAY
        previous: int | None = None
        for order in range(6):
            moment = start + order * 14 * DAY
            starter = int(rng.integers(0, 20))
            basket = {starter, *(40 + rng.choice(40, size=3, replace=False, p=noise_p)).tolist()}
            if previous is not None:
                basket.add(previous + 20)
            for item in basket:
                users.append(f"u{user}")
                items.append(f"i{item}")
                times.append(moment)
            previous = starter
    return Interactions.from_rows(users, items, times)


def test_reranker_beats_the_blend_on_next_order_pattern() -> None:
    train, test = time_split(next_order_pattern(), 0.2)
    catalogue = Catalogue.of(train, test)
    data = TrainingSet.of(train, catalogue)
    evaluation = relevant_items(catalogue, data.binary(), test)
    classifier, hits = train_ranker(train, CONFIG)
    assert classifier is not None and hits >= MIN_POSITIVES
    base = blend(data, CONFIG)
    fitted_als = als(data, CONFIG)
    ranked = reranked(data, CONFIG, base, classifier, fitted_als)

    def ndcg(model: object) -> float:
        from recsys import Popularity

        fallback = Popularity().fit(data.binary())
        return evaluate(score_with_fallback(model, fallback), data.binary(), evaluation).ndcg  # type: ignore[arg-type]

    blend_ndcg, reranked_ndcg = ndcg(base), ndcg(ranked)
    assert reranked_ndcg > blend_ndcg * 1.04, (blend_ndcg, reranked_ndcg)


def test_candidates_rank_above_the_rest_and_never_owned_items() -> None:
    events = next_order_pattern(400)
    config = replace(CONFIG, rerank_candidates=30)  # of 80 items: some left outside
    classifier, _ = train_ranker(events, config)
    assert classifier is not None
    data = TrainingSet.of(events)
    model = reranked(data, config, blend(data, config), classifier).model
    assert isinstance(model, Reranker)
    users = np.arange(20, dtype=np.int64)
    history = data.history(CONFIG.history_half_life_days)[users]
    scores = model.score(users, history)
    owned = data.binary()[users].toarray() > 0
    candidates, features = model.features(users, history)
    free = (features[:, 0] > -np.inf).reshape(candidates.shape)
    for row in range(len(users)):
        assert not owned[row, candidates[row][free[row]]].any()
        assert owned[row, candidates[row][~free[row]]].all()
        inside = scores[row, candidates[row][free[row]]]
        outside = np.delete(scores[row], candidates[row])
        assert inside.min() >= 1.0 > outside.max()
        assert scores[row, owned[row]].max() < 1.0


def test_new_user_gets_the_refill_of_what_they_just_bought() -> None:
    events = next_order_pattern(600)
    classifier, _ = train_ranker(events, CONFIG)
    data = TrainingSet.of(events)
    model = reranked(data, CONFIG, blend(data, CONFIG), classifier).model
    column = data.catalogue.item_index
    row = sp.csr_matrix(
        (np.ones(2, np.float32), ([0, 0], [column["i3"], column["i41"]])),
        shape=(1, len(data.catalogue.items)),
    )
    ids, _ = model.recommend(-1, row, N=3)
    assert column["i23"] in ids.tolist()
    assert not {column["i3"], column["i41"]} & set(ids.tolist())
    empty = sp.csr_matrix((1, len(data.catalogue.items)), dtype=np.float32)
    cold, _ = model.recommend(-1, empty, N=5)
    assert len(cold) == 5  # a visitor with nothing bought still gets the cold mix, re-ranked


def test_too_little_history_trains_no_ranker_and_serving_keeps_the_blend() -> None:
    events = next_order_pattern(30)
    classifier, hits = train_ranker(events, CONFIG)
    assert classifier is None and hits < MIN_POSITIVES
    served = precompute(events, config=CONFIG, top_n=5)
    assert served.meta["reranker"]["trained"] is False
    assert (served.user_top[:, 0] >= 0).all()


def test_serving_reranks_when_history_allows_and_lists_exclude_purchases() -> None:
    events = next_order_pattern(600)
    served = precompute(events, config=CONFIG, top_n=5)
    assert served.meta["reranker"]["trained"] is True
    assert served.meta["reranker"]["users"] == 600
    catalogue = Catalogue.of(events)
    owned = catalogue.matrix(events)
    for row in range(0, 600, 37):
        top = served.user_top[row]
        assert not set(top[top >= 0].tolist()) & set(owned[row].indices.tolist())
        assert served.user_scores[row, 0] == 1.0  # scaled: each list's best is 1


def test_eval_marks_the_reranked_blend_default_when_it_trains() -> None:
    train, test = time_split(next_order_pattern(), 0.2)
    results = {r.model: r for r in compare(train, test, config=CONFIG)}
    assert {"popularity", "implicit_als", "blend", "blend_reranked"} <= set(results)
    assert [name for name, r in results.items() if r.default] == ["blend_reranked"]
