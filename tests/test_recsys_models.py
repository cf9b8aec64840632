"""Each model ranks a planted pattern above noise; business rules and cold-start paths."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys import (
    ALS,
    EASE,
    Blend,
    Catalogue,
    Content,
    CoOccurrence,
    Interactions,
    NotFitted,
    Popularity,
    Recommender,
    Rules,
    first_orders,
    tfidf,
)

N_USERS, N_ITEMS = 200, 40


def planted() -> sp.csr_matrix:
    """Items 0-4 are bought together; every user also buys 3 random noise items."""
    rng = np.random.default_rng(7)
    rows, cols = [], []
    for user in range(N_USERS):
        group = [0, 1, 2, 3, 4] if user < 150 else []
        if user < 150:
            group = [i for i in group if rng.random() < 0.8]
        noise = rng.choice(np.arange(10, N_ITEMS), size=3, replace=False).tolist()
        for item in group + noise:
            rows.append(user)
            cols.append(item)
    return sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(N_USERS, N_ITEMS)
    )


def content_vectors() -> np.ndarray:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(N_ITEMS, 8)).astype(np.float32) * 0.1
    vectors[:5, 0] += 1.0  # the planted group shares a direction
    return vectors


MODELS = {
    "ease": lambda: EASE(regularization=10.0),
    "cooccurrence": lambda: CoOccurrence(),
    "als": lambda: ALS(factors=8, regularization=3.0, iterations=15, num_threads=1),
    "content": lambda: Content(content_vectors()),
}


def probe_row(items: list[int]) -> sp.csr_matrix:
    data = np.ones(len(items), dtype=np.float32)
    return sp.csr_matrix((data, ([0] * len(items), items)), shape=(1, N_ITEMS))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_completes_the_planted_group(name: str) -> None:
    matrix = planted()
    model: Recommender = MODELS[name]().fit(matrix)
    ids, scores = model.recommend(-1, probe_row([0, 1]), N=3)
    assert set(ids.tolist()[:2]) <= {2, 3, 4}, (name, ids, scores)
    assert not {0, 1} & set(ids.tolist())
    similar, _ = model.similar_items(0, N=4)
    assert 0 not in similar.tolist()
    assert set(similar.tolist()[:3]) <= {1, 2, 3, 4}, (name, similar)


def test_als_known_user_uses_its_factors() -> None:
    matrix = planted()
    model = ALS(factors=8, regularization=0.05, iterations=10).fit(matrix)
    ids, _ = model.recommend(0, matrix[0], N=5)
    assert len(ids) == 5 and not set(matrix[0].indices.tolist()) & set(ids.tolist())


def test_popularity_ranks_the_most_bought() -> None:
    model = Popularity().fit(planted())
    ids, _ = model.recommend(5, sp.csr_matrix((1, N_ITEMS), dtype=np.float32), N=5)
    assert set(ids.tolist()) == {0, 1, 2, 3, 4}


def test_unfitted_model_says_so() -> None:
    with pytest.raises(NotFitted):
        EASE().recommend(0, probe_row([1]))


def test_rules_never_return_out_of_stock_or_bought() -> None:
    matrix = planted()
    model = EASE(regularization=10.0).fit(matrix)
    stock = np.ones(N_ITEMS, dtype=bool)
    stock[[2, 3]] = False
    for user in range(N_USERS):
        rules = Rules(in_stock=stock, exclude=np.asarray([4]))
        ids, _ = model.recommend(user, matrix[user], N=10, rules=rules)
        bought = set(matrix[user].indices.tolist())
        assert not set(ids.tolist()) & ({2, 3, 4} | bought)


def test_rules_price_and_category_diversity() -> None:
    scores = np.linspace(1.0, 0.1, 10).astype(np.float32)
    category = np.asarray([0, 0, 0, 0, 1, 1, 2, 2, 3, 3])
    price = np.asarray([5.0, 50, 5, 5, 5, 5, 5, 5, 5, 99])
    model = _Fixed(scores)
    rules = Rules(category=category, max_per_category=2, price=price, max_price=60)
    ids, _ = model.recommend(0, sp.csr_matrix((1, 10)), N=5, rules=rules)
    assert ids.tolist() == [0, 1, 4, 5, 6]
    rules = Rules(price=price, max_price=10)
    ids, _ = model.recommend(0, sp.csr_matrix((1, 10)), N=3, rules=rules)
    assert ids.tolist() == [0, 2, 3]


class _Fixed(Recommender):
    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores
        self.n_items = len(scores)

    def fit(self, user_items: sp.csr_matrix) -> _Fixed:
        return self

    def score(self, userids: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.scores, (len(userids), 1))

    def similar_items(self, itemid: int, N: int = 10) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def test_blend_cold_user_gets_the_cold_mix() -> None:
    matrix = planted()
    ease = EASE(regularization=10.0).fit(matrix)
    newcomers = _Fixed(np.r_[np.zeros(N_ITEMS - 1), 1.0].astype(np.float32))
    blend = Blend([(ease, 1.0)], cold=[(newcomers, 1.0)]).fit(matrix)
    ids, _ = blend.recommend(-1, sp.csr_matrix((1, N_ITEMS), dtype=np.float32), N=1)
    assert ids.tolist() == [N_ITEMS - 1]
    warm, _ = blend.recommend(-1, probe_row([0, 1]), N=3)
    assert set(warm.tolist()) <= {2, 3, 4}


def test_cold_item_reachable_through_content() -> None:
    """Item 39 was never bought, but its vector matches the user's purchases."""
    matrix = planted().tolil()
    matrix[:, 39] = 0
    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    vectors = content_vectors()
    vectors[39] = vectors[0]
    model = Content(vectors).fit(matrix)
    ids, _ = model.recommend(-1, probe_row([0]), N=3)
    assert 39 in ids.tolist()


def test_tfidf_groups_similar_titles() -> None:
    titles = ["red heart lantern", "white heart lantern", "blue mug", "green mug"]
    vectors = tfidf(titles, min_df=2)
    model = Content(vectors).fit(sp.csr_matrix((1, 4)))
    similar, _ = model.similar_items(0, N=1)
    assert similar.tolist() == [1]


def test_catalogue_matrix_and_baskets() -> None:
    events = Interactions.from_rows(
        ["u", "u", "u", "v"], ["a", "b", "a", "b"], [1, 1, 5, 1], [1.0, 1.0, 2.0, 1.0]
    )
    catalogue = Catalogue.of(events, items=["c"])
    assert catalogue.items == ("a", "b", "c")
    matrix = catalogue.matrix(events)
    assert matrix.toarray().tolist() == [[3.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
    assert catalogue.baskets(events).shape == (3, 3)
    assert first_orders(events).tolist() == [True, True, False, True]
