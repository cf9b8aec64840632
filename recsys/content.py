"""Content model: items are dense vectors (text or image embeddings, TF-IDF...).

A user's profile is the weighted mean of the vectors of the items in their row; scores are
cosine similarities. Items nobody has bought yet are scored like any other, which is how a new
product gets recommended. `tfidf` makes vectors from product titles when nothing better exists.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Self

import numpy as np
import scipy.sparse as sp

from .base import FloatArray, IntArray, Recommender, top_n


class Content(Recommender):
    def __init__(self, item_vectors: FloatArray | sp.csr_matrix) -> None:
        if isinstance(item_vectors, sp.spmatrix | sp.sparray):
            vectors = np.asarray(item_vectors.toarray(), dtype=np.float32)
        else:
            vectors = np.asarray(item_vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        self.vectors = vectors / norms

    def fit(self, user_items: sp.csr_matrix) -> Self:
        if user_items.shape[1] != self.vectors.shape[0]:
            raise ValueError(
                f"{user_items.shape[1]} items in the matrix, {self.vectors.shape[0]} vectors"
            )
        self.n_items = user_items.shape[1]
        return self

    def score(self, userids: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        self._check_fitted()
        profiles = np.asarray(user_items @ self.vectors, dtype=np.float32)
        norms = np.linalg.norm(profiles, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return np.asarray((profiles / norms) @ self.vectors.T, dtype=np.float32)

    def similar_items(self, itemid: int, N: int = 10) -> tuple[IntArray, FloatArray]:
        self._check_fitted()
        return top_n(self.vectors @ self.vectors[itemid], N, exclude=itemid)


_WORD = re.compile(r"[a-z0-9]+")


def tfidf(texts: Sequence[str], min_df: int = 2) -> sp.csr_matrix:
    """L2-normalised TF-IDF rows (one per text) over lower-case words seen in ≥ min_df texts."""
    docs = [Counter(_WORD.findall(text.lower())) for text in texts]
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(doc.keys())
    vocab = {w: i for i, w in enumerate(sorted(w for w, n in df.items() if n >= min_df))}
    n = len(docs)
    rows, cols, vals = [], [], []
    for row, doc in enumerate(docs):
        for word, count in doc.items():
            if word in vocab:
                rows.append(row)
                cols.append(vocab[word])
                vals.append((1 + math.log(count)) * math.log((1 + n) / (1 + df[word])) + 1)
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(n, len(vocab)), dtype=np.float32)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ matrix, dtype=np.float32)
