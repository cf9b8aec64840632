"""CSV loading, the Online Retail converter and `bot recsys eval` end to end on small data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bot.recsys_cli import recsys_app
from recsys import load_csv
from recsys.datasets import convert_online_retail

SHARED_RETAIL = Path(__file__).resolve().parents[2] / "shared/datasets/online_retail"

RETAIL_ROWS = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom
536365,85123A,WHITE HANGING HEART,2,2010-12-01 08:26:00,2.55,17850,United Kingdom
536365,POST,POSTAGE,1,2010-12-01 08:26:00,18.00,17850,United Kingdom
536366,22633,HAND WARMER,-1,2010-12-01 08:28:00,1.85,17850,United Kingdom
C536379,22634,HAND WARMER,1,2010-12-01 09:41:00,1.85,14527,United Kingdom
536380,22635,FREE GIFT,1,2010-12-01 09:41:00,0,14527,United Kingdom
536381,22636,NO CUSTOMER,1,2010-12-01 09:45:00,1.00,,United Kingdom
536382,22637,KEPT,3,2010-12-02 10:00:00,1.00,14527,France
"""


def test_convert_keeps_only_sales_of_products_to_customers(tmp_path: Path) -> None:
    source = tmp_path / "transactions.csv"
    source.write_text(RETAIL_ROWS)
    events = convert_online_retail(source)
    assert list(zip(events.user_ids.tolist(), events.item_ids.tolist(), strict=True)) == [
        ("17850", "85123A"),
        ("14527", "22637"),
    ]
    assert events.weights.tolist() == [1.0, 1.0]


def test_load_csv_iso_and_unix_times_and_default_weight(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,timestamp\nu,a,1970-01-01 00:01:00\nu,b,120\n")
    events = load_csv(path)
    assert events.timestamps.tolist() == [60, 120]
    assert events.weights.tolist() == [1.0, 1.0]
    path.write_text("user_id,timestamp\nu,1\n")
    with pytest.raises(ValueError, match="item_id"):
        load_csv(path)


def test_eval_prints_one_line_per_model_with_one_default(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lines = ["user_id,item_id,timestamp,weight"]
    for user in range(120):
        group = ("a", "b", "c", "d") if user % 2 else ("w", "x", "y", "z")
        for step, item in enumerate(rng.permutation(group)):
            lines.append(f"u{user},{item},{1000 + user * 10 + step * 2000},1")
        lines.append(f"u{user},n{rng.integers(30)},{1000 + user * 10},1")
    path = tmp_path / "events.csv"
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(recsys_app, ["eval", "--interactions", str(path)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {"popularity", "implicit_als", "blend"} <= {row["model"] for row in rows}
    assert sum(row["default"] for row in rows) == 1
    keys = {"model", "recall_at_10", "ndcg_at_10", "map_at_10", "coverage", "train_seconds"}
    assert all(keys | {"users_evaluated", "default"} <= row.keys() for row in rows)


def test_real_online_retail_counts() -> None:
    if not (SHARED_RETAIL / "transactions.csv").exists():
        pytest.skip(f"shared data set not found at {SHARED_RETAIL} (needs ../shared)")
    events = convert_online_retail(SHARED_RETAIL / "transactions.csv")
    assert len(set(events.user_ids.tolist())) == 3970
    assert len(set(events.item_ids.tolist())) == 3607
    assert not {"POST", "DOT", "M", "BANK CHARGES"} & set(events.item_ids.tolist())
