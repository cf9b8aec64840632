"""RFM features, scores and segments; churn labels, model, time-split evaluation and CLI."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bot.recsys_cli import recsys_app
from recsys.churn import (
    FEATURES,
    ChurnModel,
    churn_features,
    churn_labels,
    evaluate,
    train_for,
)
from recsys.datasets import online_retail_orders
from recsys.rfm import (
    SEGMENTS,
    OrderRecord,
    RFMFeatures,
    rfm_features,
    rfm_scores,
    rfm_segments,
    segment_counts,
    segment_of,
)

SHARED_RETAIL = Path(__file__).resolve().parents[1].parent / "shared/datasets/online_retail"
NOW = datetime(2024, 3, 1, tzinfo=UTC)


def order(customer: str, moment: datetime, total: float = 10.0) -> OrderRecord:
    return OrderRecord(customer, moment, total)


def days_ago(days: float, now: datetime = NOW) -> datetime:
    return now - timedelta(days=days)


def feature(customer: str, recency: float, frequency: int, monetary: float = 1.0) -> RFMFeatures:
    return RFMFeatures(customer, recency, frequency, monetary, tenure_days=max(recency, 365.0))


# --- RFM -----------------------------------------------------------------------------------


def test_rfm_features_are_exact_and_ignore_orders_from_now_on() -> None:
    orders = [
        order("a", datetime(2024, 1, 1, tzinfo=UTC), 10.0),
        order("a", datetime(2024, 2, 20, 12, tzinfo=UTC), 5.5),
        order("a", datetime(2024, 3, 5, tzinfo=UTC), 100.0),  # future: ignored
        order("a", NOW, 7.0),  # at `now`: not before it, ignored
        order("future_only", datetime(2024, 3, 2, tzinfo=UTC), 50.0),
        order("b", datetime(2024, 2, 29, 18, tzinfo=UTC), 3.25),
    ]
    features = rfm_features(orders, NOW)
    assert set(features) == {"a", "b"}
    assert features["a"] == RFMFeatures("a", 9.5, 2, 15.5, 60.0)
    assert features["b"] == RFMFeatures("b", 0.25, 1, 3.25, 0.25)
    assert rfm_features([], NOW) == {}
    with pytest.raises(ValueError, match="timezone-aware"):
        rfm_features(orders, datetime(2024, 3, 1))


def test_rfm_scores_are_quintiles_with_shared_ties() -> None:
    five = {c: feature(c, recency=r, frequency=f, monetary=m) for c, r, f, m in [
        ("a", 1, 9, 500.0), ("b", 10, 7, 40.0), ("c", 50, 5, 300.0),
        ("d", 100, 3, 20.0), ("e", 400, 1, 10.0),
    ]}  # fmt: skip
    assert rfm_scores(five) == {
        "a": (5, 5, 5),
        "b": (4, 4, 3),
        "c": (3, 3, 4),
        "d": (2, 2, 2),
        "e": (1, 1, 1),
    }
    ten = {f"c{i}": feature(f"c{i}", recency=float(i), frequency=i + 1) for i in range(10)}
    scores = rfm_scores(ten)
    assert [scores[f"c{i}"][0] for i in range(10)] == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert [scores[f"c{i}"][1] for i in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # ties share one score, whatever the input order
    tied = {c: feature(c, recency=5.0, frequency=f) for c, f in [("x", 1), ("y", 1), ("z", 4)]}
    reverse = dict(reversed(list(tied.items())))
    assert rfm_scores(tied) == rfm_scores(reverse)
    assert rfm_scores(tied)["x"][1] == rfm_scores(tied)["y"][1] < rfm_scores(tied)["z"][1]
    # one customer, and everybody equal: the middle score
    assert rfm_scores({"solo": feature("solo", 3.0, 2)}) == {"solo": (3, 3, 3)}
    same = {f"s{i}": feature(f"s{i}", 7.0, 2, 9.0) for i in range(7)}
    assert set(rfm_scores(same).values()) == {(3, 3, 3)}
    assert rfm_scores({}) == {}


def test_each_segment_is_reached_by_a_hand_built_customer() -> None:
    orders = [
        *(order("champion", days_ago(2 + 20 * i), 50.0) for i in range(6)),
        *(order("loyal", days_ago(40 + 30 * i), 20.0) for i in range(3)),
        order("newcomer", days_ago(5), 15.0),
        *(order("lapsed", days_ago(200 + 25 * i), 30.0) for i in range(4)),
        order("sleeper", days_ago(300), 8.0),
        order("nobody_yet", NOW + timedelta(days=1)),
    ]
    features = rfm_features(orders, NOW)
    assert rfm_scores(features) == {
        "champion": (5, 5, 5),
        "newcomer": (4, 2, 2),
        "loyal": (3, 3, 3),
        "lapsed": (2, 4, 4),
        "sleeper": (1, 2, 1),
    }
    segments = rfm_segments(features)
    assert segments == {
        "champion": "champions",
        "loyal": "loyal",
        "newcomer": "new",
        "lapsed": "at_risk",
        "sleeper": "hibernating",
    }
    assert segment_counts(segments) == dict.fromkeys(SEGMENTS, 1)
    # a single order 20 days ago is "new" even with a low recency score (tenure <= 30 days)
    assert segment_of(RFMFeatures("n", 20.0, 1, 5.0, 20.0), (2, 1, 1)) == "new"
    assert segment_of(RFMFeatures("h", 31.0, 1, 5.0, 31.0), (3, 1, 1)) == "hibernating"
    # a recent repeat buyer who is not (yet) frequent is loyal, not hibernating
    assert segment_of(RFMFeatures("r", 3.0, 2, 5.0, 90.0), (5, 2, 1)) == "loyal"


def test_every_customer_gets_exactly_one_segment() -> None:
    rng = np.random.default_rng(7)
    orders = [
        order(
            f"c{rng.integers(300)}", days_ago(float(rng.uniform(0, 720))), float(rng.gamma(2, 30))
        )
        for _ in range(2000)
    ]
    features = rfm_features(orders, NOW)
    segments = rfm_segments(features)
    assert set(segments) == set(features)
    assert set(segments.values()) <= set(SEGMENTS)
    assert sum(segment_counts(segments).values()) == len(features)
    assert rfm_segments({"solo": feature("solo", 400.0, 1)}) == {"solo": "hibernating"}
    same = {f"s{i}": RFMFeatures(f"s{i}", 10.0, 3, 9.0, 100.0) for i in range(4)}
    assert set(rfm_segments(same).values()) == {"loyal"}


# --- churn: features and labels -------------------------------------------------------------

CUTOFF = datetime(2024, 1, 1, tzinfo=UTC)


def test_churn_labels_at_a_cutoff_are_exact() -> None:
    def after(days: float, seconds: float = 0.0) -> datetime:
        return CUTOFF + timedelta(days=days, seconds=seconds)

    orders = [
        order("back_soon", CUTOFF - timedelta(days=5)),
        order("back_soon", after(days=10)),
        order("back_on_last_day", CUTOFF - timedelta(days=5)),
        order("back_on_last_day", after(days=30)),  # the window's end is included
        order("back_too_late", CUTOFF - timedelta(days=5)),
        order("back_too_late", after(days=30, seconds=1)),
        order("only_at_cutoff", CUTOFF - timedelta(days=5)),
        order("only_at_cutoff", CUTOFF),  # the window opens just after the cutoff
        order("gone", CUTOFF - timedelta(days=50)),
        order("first_after", after(days=3)),  # no order before the cutoff: not a customer yet
    ]
    assert churn_labels(orders, CUTOFF, horizon_days=30) == {
        "back_on_last_day": 0,
        "back_soon": 0,
        "back_too_late": 1,
        "gone": 1,
        "only_at_cutoff": 1,
    }
    customers, x = churn_features(orders, CUTOFF)
    assert customers == ["back_on_last_day", "back_soon", "back_too_late", "gone", "only_at_cutoff"]
    assert x.shape == (5, len(FEATURES))


def test_churn_features_are_exact() -> None:
    orders = [
        order("a", CUTOFF - timedelta(days=100), 10.0),
        order("a", CUTOFF - timedelta(days=20), 30.0),
        order("a", CUTOFF + timedelta(days=1), 99.0),  # after the cutoff: not a feature
        order("b", CUTOFF - timedelta(days=200), 5.0),
    ]
    customers, x = churn_features(orders, CUTOFF)
    assert customers == ["a", "b"]
    row = dict(zip(FEATURES, x[0].tolist(), strict=True))
    assert row == pytest.approx(
        {
            "recency_days": 20.0,
            "frequency": 2.0,
            "monetary": 40.0,
            "tenure_days": 100.0,
            "mean_gap_days": 80.0,
            "orders_30d": 1.0,
            "orders_90d": 1.0,
            "spend_trend": math.log1p(30.0) - math.log1p(10.0),
        }
    )
    b = dict(zip(FEATURES, x[1].tolist(), strict=True))
    assert b["mean_gap_days"] == b["tenure_days"] == b["recency_days"] == 200.0
    assert b["orders_90d"] == b["spend_trend"] == 0.0
    assert churn_features(orders, CUTOFF - timedelta(days=300))[1].shape == (0, len(FEATURES))


# --- churn: model and evaluation ------------------------------------------------------------

END = datetime(2024, 1, 1, tzinfo=UTC)


def synthetic_orders(customers: int = 400, seed: int = 0) -> list[OrderRecord]:
    """Customers buy every few weeks from their start until they quit (exponential lifetime):
    whoever has been silent for long has probably quit, so recency separates churners."""
    rng = np.random.default_rng(seed)
    origin = END - timedelta(days=720)
    orders = []
    for i in range(customers):
        start = float(rng.uniform(0, 550))
        quit_at = start + float(rng.exponential(400))
        period = float(rng.uniform(7, 35))
        spend = float(rng.gamma(2.0, 40.0))
        moment = start
        while moment < min(quit_at, 720.0):
            total = round(spend * float(rng.uniform(0.5, 1.5)), 2)
            orders.append(order(f"u{i:03d}", origin + timedelta(days=moment), total))
            moment += period * float(rng.exponential(1.0)) + 1.0
    return orders


def test_evaluate_separates_churners_on_a_synthetic_population() -> None:
    orders = synthetic_orders()
    result = evaluate(orders, END, horizon_days=90)
    assert set(result) >= {
        "auc",
        "auc_recency_only",
        "train_customers",
        "test_customers",
        "test_churn_rate",
        "model",
        "horizon_days",
    }
    assert result["model"] == "logistic" and result["horizon_days"] == 90
    assert result["auc"] > 0.8
    assert result["auc"] >= result["auc_recency_only"] - 0.01
    assert 0.1 < result["test_churn_rate"] < 0.9
    assert 0 < result["train_customers"] <= result["test_customers"] <= 400
    boosting = evaluate(orders, END, horizon_days=90, kind="boosting")
    assert boosting["model"] == "boosting" and boosting["auc"] > 0.8
    assert evaluate(orders, END, horizon_days=90) == result  # deterministic


def test_one_class_split_is_a_clear_error() -> None:
    # everybody orders every 10 days up to the end: nobody churns
    orders = [
        order(f"c{c}", END - timedelta(days=day), 5.0)
        for c in range(20)
        for day in range(1, 400, 10)
    ]
    with pytest.raises(ValueError, match="every customer came back"):
        evaluate(orders, END, horizon_days=90)
    with pytest.raises(ValueError, match="every customer came back"):
        ChurnModel().fit(orders, END - timedelta(days=90), 90)
    with pytest.raises(ValueError, match="no customer has an order before"):
        ChurnModel().fit(orders, END - timedelta(days=1000), 90)


def test_train_for_predicts_every_customer_with_a_past_order() -> None:
    orders = synthetic_orders(200, seed=3)
    later = order("newcomer_after_now", END + timedelta(days=2))
    model = train_for([*orders, later], END, horizon_days=90)
    assert model.cutoff == END - timedelta(days=90) and model.horizon_days == 90
    risk = model.predict([*orders, later], END)
    assert set(risk) == {o.customer_id for o in orders}
    assert all(0.0 <= p <= 1.0 for p in risk.values())
    # silent for long = riskier than just bought
    features = rfm_features(orders, END)
    recent = min(features.values(), key=lambda f: f.recency_days).customer_id
    silent = max(features.values(), key=lambda f: f.recency_days).customer_id
    assert risk[silent] > risk[recent]
    assert model.weights()["recency_days"] > 0
    # JSON round trip (no pickle) predicts the same
    again = ChurnModel.from_json(model.to_json())
    assert again.predict(orders, END) == pytest.approx(risk, abs=1e-12)
    assert again.cutoff == model.cutoff
    boosting = train_for(orders, END, 90, kind="boosting")
    assert set(boosting.predict(orders, END)) == set(risk)
    with pytest.raises(ValueError, match="logistic"):
        boosting.to_json()
    with pytest.raises(ValueError, match="not fitted"):
        ChurnModel().predict(orders, END)


# --- Online Retail loader and CLI -----------------------------------------------------------

RETAIL_ROWS = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom
536365,85123A,WHITE HANGING HEART,2,2010-12-01 08:26:00,2.55,17850,United Kingdom
536365,POST,POSTAGE,1,2010-12-01 08:26:00,18.00,17850,United Kingdom
536365,22633,RETURNED LINE,-1,2010-12-01 08:26:00,1.85,17850,United Kingdom
536366,22633,HAND WARMER,-1,2010-12-01 08:28:00,1.85,17850,United Kingdom
C536379,22634,HAND WARMER,1,2010-12-01 09:41:00,1.85,14527,United Kingdom
536380,22635,FREE GIFT,1,2010-12-01 09:41:00,0,14527,United Kingdom
536381,22636,NO CUSTOMER,1,2010-12-01 09:45:00,1.00,,United Kingdom
536382,22637,KEPT,3,2010-12-02 10:00:00,1.00,14527,France
"""


def test_online_retail_orders_one_per_sale_invoice(tmp_path: Path) -> None:
    source = tmp_path / "transactions.csv"
    source.write_text(RETAIL_ROWS)
    assert online_retail_orders(source) == [
        OrderRecord("17850", datetime(2010, 12, 1, 8, 26, tzinfo=UTC), 38.4),
        OrderRecord("14527", datetime(2010, 12, 2, 10, 0, tzinfo=UTC), 3.0),
    ]


def write_retail_csv(path: Path, orders: list[OrderRecord]) -> None:
    lines = [RETAIL_ROWS.splitlines()[0]]
    for number, o in enumerate(orders):
        when = o.placed_at.strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{600000 + number},22637,THING,1,{when},{o.total},{o.customer_id},UK")
    path.write_text("\n".join(lines) + "\n")


def test_churn_eval_cli_prints_one_json_line(tmp_path: Path) -> None:
    path = tmp_path / "transactions.csv"
    write_retail_csv(path, synthetic_orders(200, seed=5))
    runner = CliRunner()
    result = runner.invoke(
        recsys_app, ["churn-eval", "--transactions", str(path), "--horizon-days", "60"]
    )
    assert result.exit_code == 0, result.output
    [line] = [text for text in result.stdout.splitlines() if text.startswith("{")]
    row = json.loads(line)
    assert row["horizon_days"] == 60 and row["model"] == "logistic"
    assert row["auc"] > 0.7 and row["test_customers"] > 0
    bad = runner.invoke(recsys_app, ["churn-eval", "--transactions", str(path), "--model", "x"])
    assert bad.exit_code != 0


def test_real_online_retail_churn_auc_is_well_above_chance() -> None:
    source = SHARED_RETAIL / "transactions.csv"
    if not source.exists():
        pytest.skip(f"shared data set not found at {source} (needs ../shared/datasets)")
    orders = online_retail_orders(source)
    assert len({o.customer_id for o in orders}) > 3500
    end = max(o.placed_at for o in orders)
    result = evaluate(orders, end, horizon_days=90)
    assert result["test_customers"] > 2000
    assert result["auc"] > 0.7
    assert result["auc"] > result["auc_recency_only"]
    segments = rfm_segments(rfm_features(orders, end))
    assert all(count > 0 for count in segment_counts(segments).values())
