"""Interactions: loading, splitting by time, and turning them into sparse matrices.

An `Interactions` value is four aligned arrays (user id, item id, unix time, weight) — the
shape in which the app's store or a CSV file hands events over. `Catalogue` fixes the row and
column order (users x items) that every model's sparse matrix uses.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

DAY = 86_400.0

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Interactions:
    """Events: `user_ids[i]` interacted with `item_ids[i]` at `timestamps[i]` (unix seconds)."""

    user_ids: NDArray[np.str_]
    item_ids: NDArray[np.str_]
    timestamps: IntArray
    weights: FloatArray

    @classmethod
    def from_rows(
        cls,
        users: Sequence[str],
        items: Sequence[str],
        timestamps: Sequence[int] | IntArray,
        weights: Sequence[float] | FloatArray | None = None,
    ) -> Interactions:
        n = len(users)
        if not (len(items) == len(timestamps) == n) or (weights is not None and len(weights) != n):
            raise ValueError("users, items, timestamps and weights must have the same length")
        return cls(
            user_ids=np.asarray(users, dtype=str),
            item_ids=np.asarray(items, dtype=str),
            timestamps=np.asarray(timestamps, dtype=np.int64),
            weights=(
                np.ones(n, dtype=np.float32)
                if weights is None
                else np.asarray(weights, dtype=np.float32)
            ),
        )

    def __len__(self) -> int:
        return len(self.timestamps)

    def select(self, mask: NDArray[np.bool_]) -> Interactions:
        return Interactions(
            self.user_ids[mask], self.item_ids[mask], self.timestamps[mask], self.weights[mask]
        )

    @property
    def time_span(self) -> tuple[int, int]:
        if len(self) == 0:
            raise ValueError("no interactions")
        return int(self.timestamps.min()), int(self.timestamps.max())


def parse_time(value: str) -> int:
    """Unix seconds from an integer string or an ISO date/time (naive means UTC)."""
    value = value.strip()
    if value.lstrip("-").isdigit():
        return int(value)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def load_csv(path: str | Path) -> Interactions:
    """Read `user_id,item_id,timestamp[,weight]` (header required; timestamp ISO or unix)."""
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    weights: list[float] = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        missing = {"user_id", "item_id", "timestamp"} - fields
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        has_weight = "weight" in fields
        for line, row in enumerate(reader, start=2):
            try:
                times.append(parse_time(row["timestamp"]))
                weights.append(float(row["weight"]) if has_weight and row["weight"] else 1.0)
            except ValueError as error:
                raise ValueError(f"{path}:{line}: {error}") from None
            users.append(row["user_id"])
            items.append(row["item_id"])
    return Interactions.from_rows(users, items, times, weights)


def write_csv(path: str | Path, interactions: Interactions) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "timestamp", "weight"])
        for user, item, moment, weight in zip(
            interactions.user_ids,
            interactions.item_ids,
            interactions.timestamps,
            interactions.weights,
            strict=True,
        ):
            stamp = datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%d %H:%M:%S")
            writer.writerow([user, item, stamp, f"{float(weight):g}"])


def split_at(interactions: Interactions, moment: int) -> tuple[Interactions, Interactions]:
    """Events before `moment` (train) and from `moment` on (test)."""
    before = interactions.timestamps < moment
    return interactions.select(before), interactions.select(~before)


def time_split(
    interactions: Interactions, test_fraction: float = 0.2
) -> tuple[Interactions, Interactions]:
    """The last `test_fraction` of the time span is the test period."""
    start, end = interactions.time_span
    return split_at(interactions, int(end - (end - start) * test_fraction))


@dataclass(frozen=True)
class Catalogue:
    """Row (user) and column (item) order of the sparse matrices."""

    users: tuple[str, ...]
    items: tuple[str, ...]

    @classmethod
    def of(cls, *sources: Interactions, items: Iterable[str] = ()) -> Catalogue:
        """Users and items seen in `sources` (plus extra `items`, e.g. unsold products)."""
        user_set: set[str] = set()
        item_set: set[str] = set(items)
        for source in sources:
            user_set.update(np.unique(source.user_ids).tolist())
            item_set.update(np.unique(source.item_ids).tolist())
        return cls(tuple(sorted(user_set)), tuple(sorted(item_set)))

    @property
    def user_index(self) -> dict[str, int]:
        return {user: row for row, user in enumerate(self.users)}

    @property
    def item_index(self) -> dict[str, int]:
        return {item: col for col, item in enumerate(self.items)}

    def rows(self, user_ids: NDArray[np.str_]) -> IntArray:
        return _lookup(self.users, user_ids)

    def cols(self, item_ids: NDArray[np.str_]) -> IntArray:
        return _lookup(self.items, item_ids)

    def matrix(
        self, interactions: Interactions, weights: FloatArray | None = None
    ) -> sp.csr_matrix:
        """users x items, summing the weights of repeated pairs; unknown ids are dropped."""
        rows = self.rows(interactions.user_ids)
        cols = self.cols(interactions.item_ids)
        data = interactions.weights if weights is None else weights
        keep = (rows >= 0) & (cols >= 0)
        matrix = sp.csr_matrix(
            (data[keep].astype(np.float32), (rows[keep], cols[keep])),
            shape=(len(self.users), len(self.items)),
            dtype=np.float32,
        )
        matrix.sum_duplicates()
        return matrix

    def baskets(self, interactions: Interactions) -> sp.csr_matrix:
        """baskets x items (binary): one basket per (user, timestamp), i.e. one order."""
        cols = self.cols(interactions.item_ids)
        keep = cols >= 0
        keys = np.char.add(
            np.char.add(interactions.user_ids[keep], "\x1f"),
            interactions.timestamps[keep].astype(str),
        )
        _, basket = np.unique(keys, return_inverse=True)
        matrix = sp.csr_matrix(
            (np.ones(len(basket), dtype=np.float32), (basket, cols[keep])),
            shape=(int(basket.max()) + 1 if len(basket) else 0, len(self.items)),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return matrix


def _lookup(vocabulary: tuple[str, ...], ids: NDArray[np.str_]) -> IntArray:
    """Positions of `ids` in the sorted `vocabulary`, -1 where absent."""
    if len(vocabulary) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    vocab = np.asarray(vocabulary, dtype=str)
    pos = np.searchsorted(vocab, ids)
    pos = np.clip(pos, 0, len(vocab) - 1)
    found = vocab[pos] == ids
    return np.where(found, pos, -1).astype(np.int64)


def decay_weights(interactions: Interactions, now: int, half_life_days: float | None) -> FloatArray:
    """Each event's weight halved every `half_life_days` before `now` (None: no decay)."""
    if half_life_days is None:
        return interactions.weights.astype(np.float32)
    age_days = np.maximum(now - interactions.timestamps, 0) / DAY
    return (interactions.weights * np.power(0.5, age_days / half_life_days)).astype(np.float32)


def seasonal_weights(
    interactions: Interactions, target: int, width_days: float = 30.0
) -> FloatArray:
    """Weight by closeness to the same moment a year before `target` (0 beyond 2·width)."""
    distance = np.abs(interactions.timestamps - (target - 365.25 * DAY)) / DAY
    weight = np.exp(-0.5 * (distance / width_days) ** 2) * (distance <= 2 * width_days)
    return (interactions.weights * weight).astype(np.float32)


def first_orders(interactions: Interactions) -> NDArray[np.bool_]:
    """True for events in each user's first basket (their first timestamp)."""
    order = np.lexsort((interactions.timestamps, interactions.user_ids))
    users = interactions.user_ids[order]
    times = interactions.timestamps[order]
    starts = np.r_[True, users[1:] != users[:-1]]
    first_time = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    mask = np.empty(len(order), dtype=bool)
    mask[order] = times == times[first_time]
    return mask
