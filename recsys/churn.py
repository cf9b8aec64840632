"""Churn risk: the probability that a customer places no order in the next `horizon_days`.

Definitions (all times UTC, `h` = `horizon_days`, default 90):

- Features at a cutoff come from the orders placed strictly before it (`churn_features`, the
  columns of `FEATURES`): recency, frequency, monetary, tenure, mean days between orders,
  orders in the last 30 and 90 days, and the spend trend (log spend of the last 90 days minus
  log spend of the 90 days before). Only customers with at least one such order are scored.
- The label of such a customer is churn = 1 when none of its orders falls in
  `(cutoff, cutoff + h]` (`churn_labels`). An order placed exactly at the cutoff instant is in
  neither (it is not "before" the cutoff and the label window opens just after it).
- `ChurnModel.fit(orders, cutoff, h)` learns from features at `cutoff` and labels of
  `(cutoff, cutoff + h]`; `predict(orders, now)` scores every customer with an order before
  `now`. `train_for(orders, now, h)` fits on the latest cutoff whose label window is complete
  (`now - h`), ready to predict at `now`.
- `evaluate(orders, end, h)` is a time split: train at `end - 2h` (labels `(end - 2h, end - h]`),
  test at `end - h` (labels `(end - h, end]`); ROC AUC of the model and of the recency-only
  baseline (churn score = days since the last order; equivalently -recency ranks who stays).

Model: `"logistic"` (the default) = signed log1p of every feature, `StandardScaler`,
`LogisticRegression`; `"boosting"` = `HistGradientBoostingClassifier` on the same features.
Chosen by `evaluate` on the UCI Online Retail copy in ../shared (data to 2011-10-31,
h = 90, test cutoff 2011-08-02, 3,167 test customers): logistic AUC 0.758, boosting 0.738,
recency alone 0.700; the same order at end dates one and two months earlier (0.763 / 0.746 /
0.682 and 0.745 / 0.733 / 0.662). Boosting buys nothing on eight smooth features and ~2,500
training customers; the logistic model is monotone, readable (`weights()`: one per feature) and
its fitted state is a few numbers, which `to_json` / `from_json` store (no pickle).
Both are deterministic (`random_state` fixed, no early stopping).

scikit-learn is imported when a model is fitted or evaluated, not when `recsys` is imported.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from .rfm import DAY_SECONDS, OrderRecord, require_aware

FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "mean_gap_days",
    "orders_30d",
    "orders_90d",
    "spend_trend",
)
ModelKind = Literal["logistic", "boosting"]
MODELS: tuple[ModelKind, ...] = ("logistic", "boosting")
RANDOM_STATE = 0
JSON_FORMAT = "recsys.churn/1"


@dataclass(frozen=True)
class History:
    """Each customer's orders as sorted unix times (seconds) with the aligned totals."""

    times: dict[str, list[float]]
    totals: dict[str, list[float]]

    @classmethod
    def of(cls, orders: Iterable[OrderRecord]) -> History:
        rows: dict[str, list[tuple[float, float]]] = {}
        for order in orders:
            require_aware(order.placed_at, f"order of {order.customer_id} placed_at")
            rows.setdefault(order.customer_id, []).append(
                (order.placed_at.timestamp(), float(order.total))
            )
        times: dict[str, list[float]] = {}
        totals: dict[str, list[float]] = {}
        for customer in sorted(rows):
            ordered = sorted(rows[customer])
            times[customer] = [moment for moment, _ in ordered]
            totals[customer] = [total for _, total in ordered]
        return cls(times, totals)


def _history(orders: Iterable[OrderRecord] | History) -> History:
    return orders if isinstance(orders, History) else History.of(orders)


def _log_spend(value: float) -> float:
    return math.log1p(max(value, 0.0))


def churn_features(
    orders: Iterable[OrderRecord] | History, cutoff: datetime
) -> tuple[list[str], NDArray[np.float64]]:
    """Customers with an order before `cutoff` (sorted) and their `FEATURES` rows at it."""
    require_aware(cutoff, "cutoff")
    history = _history(orders)
    end = cutoff.timestamp()
    day30, day90, day180 = end - 30 * DAY_SECONDS, end - 90 * DAY_SECONDS, end - 180 * DAY_SECONDS
    customers: list[str] = []
    rows: list[list[float]] = []
    for customer, times in history.times.items():
        k = bisect_left(times, end)
        if k == 0:
            continue
        totals = history.totals[customer]
        first, last = times[0], times[k - 1]
        tenure = (end - first) / DAY_SECONDS
        i30, i90, i180 = (
            bisect_left(times, day30),
            bisect_left(times, day90),
            bisect_left(times, day180),
        )
        recent_spend = sum(totals[i90:k])
        earlier_spend = sum(totals[i180:i90])
        customers.append(customer)
        rows.append(
            [
                (end - last) / DAY_SECONDS,
                float(k),
                sum(totals[:k]),
                tenure,
                (last - first) / DAY_SECONDS / (k - 1) if k > 1 else tenure,
                float(k - min(i30, k)),
                float(k - min(i90, k)),
                _log_spend(recent_spend) - _log_spend(earlier_spend),
            ]
        )
    matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))
    return customers, matrix


def churn_labels(
    orders: Iterable[OrderRecord] | History,
    cutoff: datetime,
    horizon_days: float = 90,
    customers: Sequence[str] | None = None,
) -> dict[str, int]:
    """1 = churned (no order in `(cutoff, cutoff + horizon]`), for customers with an order
    before `cutoff` (or for `customers` when given)."""
    require_aware(cutoff, "cutoff")
    history = _history(orders)
    start = cutoff.timestamp()
    stop = (cutoff + timedelta(days=horizon_days)).timestamp()
    if customers is None:
        customers = [c for c, times in history.times.items() if times[0] < start]
    labels: dict[str, int] = {}
    for customer in customers:
        times = history.times.get(customer, [])
        i = bisect_right(times, start)  # the first order strictly after the cutoff
        labels[customer] = 0 if i < len(times) and times[i] <= stop else 1
    return labels


def signed_log1p(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """sign(x) * log(1 + |x|): tames the heavy tails of spend and counts, keeps the order."""
    return np.sign(values) * np.log1p(np.abs(values))


def _check_two_classes(labels: NDArray[np.int64], what: str) -> None:
    classes = set(labels.tolist())
    if len(classes) < 2:
        only = "churned" if classes == {1} else "came back" if classes == {0} else "(none)"
        raise ValueError(
            f"{what}: every customer {only} ({len(labels)} customers); churn needs both "
            "churned and returning customers (pick another cutoff or horizon)"
        )


class ChurnModel:
    """Probability of churn in the next `horizon_days` (see the module docstring)."""

    def __init__(self, kind: ModelKind = "logistic", random_state: int = RANDOM_STATE) -> None:
        if kind not in MODELS:
            raise ValueError(f"unknown churn model {kind!r}; choose one of {MODELS}")
        self.kind: ModelKind = kind
        self.random_state = random_state
        self.horizon_days: float | None = None
        self.cutoff: datetime | None = None
        self.train_customers = 0
        self.train_churn_rate = 0.0
        # logistic state (numpy, what to_json stores) or the fitted boosting estimator
        self._mean: NDArray[np.float64] | None = None
        self._scale: NDArray[np.float64] | None = None
        self._coef: NDArray[np.float64] | None = None
        self._intercept = 0.0
        self._estimator: Any = None

    @property
    def fitted(self) -> bool:
        return self._coef is not None or self._estimator is not None

    def fit(
        self,
        orders: Iterable[OrderRecord] | History,
        cutoff: datetime,
        horizon_days: float = 90,
    ) -> ChurnModel:
        """Learn from features at `cutoff` and churn labels of `(cutoff, cutoff + horizon]`."""
        history = _history(orders)
        customers, x = churn_features(history, cutoff)
        if not customers:
            raise ValueError(f"no customer has an order before the cutoff {cutoff.isoformat()}")
        labels = churn_labels(history, cutoff, horizon_days, customers)
        y = np.asarray([labels[c] for c in customers], dtype=np.int64)
        _check_two_classes(y, f"training labels at {cutoff:%Y-%m-%d} + {horizon_days:g} days")
        self.fit_arrays(x, y)
        self.horizon_days = float(horizon_days)
        self.cutoff = cutoff
        self.train_customers = len(customers)
        self.train_churn_rate = float(y.mean())
        return self

    def fit_arrays(self, x: NDArray[np.float64], y: NDArray[np.int64]) -> ChurnModel:
        if self.kind == "logistic":
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            pipeline = make_pipeline(
                StandardScaler(),
                LogisticRegression(C=1.0, max_iter=1000, random_state=self.random_state),
            )
            pipeline.fit(signed_log1p(x), y)
            scaler, regression = pipeline[0], pipeline[-1]
            self._mean = np.asarray(scaler.mean_, dtype=np.float64)
            self._scale = np.asarray(scaler.scale_, dtype=np.float64)
            self._coef = np.asarray(regression.coef_[0], dtype=np.float64)
            self._intercept = float(regression.intercept_[0])
        else:
            from sklearn.ensemble import HistGradientBoostingClassifier

            self._estimator = HistGradientBoostingClassifier(
                learning_rate=0.05,
                max_iter=200,
                max_leaf_nodes=15,
                min_samples_leaf=40,
                l2_regularization=1.0,
                early_stopping=False,
                random_state=self.random_state,
            ).fit(x, y)
        return self

    def predict_arrays(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Churn probability of each row of `FEATURES` values."""
        if len(x) == 0:
            return np.zeros(0, dtype=np.float64)
        if self._coef is not None and self._mean is not None and self._scale is not None:
            z = (signed_log1p(x) - self._mean) / self._scale @ self._coef + self._intercept
            return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)
        if self._estimator is not None:
            return np.asarray(self._estimator.predict_proba(x)[:, 1], dtype=np.float64)
        raise ValueError("ChurnModel is not fitted: call fit() or train_for() first")

    def predict(self, orders: Iterable[OrderRecord] | History, now: datetime) -> dict[str, float]:
        """Churn probability for every customer with at least one order before `now`."""
        customers, x = churn_features(orders, now)
        return dict(zip(customers, self.predict_arrays(x).tolist(), strict=True))

    def weights(self) -> dict[str, float]:
        """Logistic weight of each (log-scaled, standardised) feature; > 0 raises churn risk."""
        if self._coef is None:
            raise ValueError("weights exist for a fitted logistic model only")
        return dict(zip(FEATURES, self._coef.tolist(), strict=True))

    def to_json(self) -> str:
        """The fitted logistic model as JSON (no pickle); `from_json` reads it back."""
        if self._coef is None or self._mean is None or self._scale is None:
            raise ValueError("to_json needs a fitted logistic model (boosting is not serialised)")
        return json.dumps(
            {
                "format": JSON_FORMAT,
                "kind": self.kind,
                "features": list(FEATURES),
                "horizon_days": self.horizon_days,
                "cutoff": self.cutoff.isoformat() if self.cutoff else None,
                "train_customers": self.train_customers,
                "train_churn_rate": self.train_churn_rate,
                "mean": self._mean.tolist(),
                "scale": self._scale.tolist(),
                "coef": self._coef.tolist(),
                "intercept": self._intercept,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ChurnModel:
        data = json.loads(text)
        if data.get("format") != JSON_FORMAT or data.get("features") != list(FEATURES):
            raise ValueError(f"not a {JSON_FORMAT} churn model with features {FEATURES}")
        model = cls("logistic")
        model.horizon_days = data["horizon_days"]
        model.cutoff = datetime.fromisoformat(data["cutoff"]) if data["cutoff"] else None
        model.train_customers = int(data["train_customers"])
        model.train_churn_rate = float(data["train_churn_rate"])
        model._mean = np.asarray(data["mean"], dtype=np.float64)
        model._scale = np.asarray(data["scale"], dtype=np.float64)
        model._coef = np.asarray(data["coef"], dtype=np.float64)
        model._intercept = float(data["intercept"])
        return model


def train_for(
    orders: Iterable[OrderRecord] | History,
    now: datetime,
    horizon_days: float = 90,
    kind: ModelKind = "logistic",
) -> ChurnModel:
    """A model fitted at `now - horizon` (the latest cutoff with a complete label window),
    to call as `predict(orders, now)`."""
    require_aware(now)
    return ChurnModel(kind).fit(orders, now - timedelta(days=horizon_days), horizon_days)


def evaluate(
    orders: Iterable[OrderRecord] | History,
    end: datetime,
    horizon_days: float = 90,
    kind: ModelKind = "logistic",
) -> dict[str, Any]:
    """Time split: fit at `end - 2h`, test at `end - h` on labels of `(end - h, end]`."""
    from sklearn.metrics import roc_auc_score

    require_aware(end, "end")
    history = _history(orders)
    horizon = timedelta(days=horizon_days)
    train_cutoff, test_cutoff = end - 2 * horizon, end - horizon
    model = ChurnModel(kind).fit(history, train_cutoff, horizon_days)
    customers, x = churn_features(history, test_cutoff)
    if not customers:
        raise ValueError(f"no customer has an order before the test cutoff {test_cutoff}")
    labels = churn_labels(history, test_cutoff, horizon_days, customers)
    y = np.asarray([labels[c] for c in customers], dtype=np.int64)
    _check_two_classes(y, f"test labels at {test_cutoff:%Y-%m-%d} + {horizon_days:g} days")
    recency = x[:, FEATURES.index("recency_days")]
    return {
        "model": kind,
        "horizon_days": horizon_days,
        "train_cutoff": train_cutoff.astimezone(UTC).isoformat(),
        "test_cutoff": test_cutoff.astimezone(UTC).isoformat(),
        "train_customers": model.train_customers,
        "test_customers": len(customers),
        "train_churn_rate": round(model.train_churn_rate, 4),
        "test_churn_rate": round(float(y.mean()), 4),
        "auc": round(float(roc_auc_score(y, model.predict_arrays(x))), 4),
        "auc_recency_only": round(float(roc_auc_score(y, recency)), 4),
    }
