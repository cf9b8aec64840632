"""Recommendations at scale: training time and peak memory at 100k / 1M / 5M synthetic
interactions, and in-process `recommend()` latency against a store with the same catalogue.

    .venv/bin/python bench/recsys_bench.py [--sizes 100000,1000000,5000000] [--limit-s 240]

Each (model, size) trains in a child process (peak RSS from the child's rusage; a run past
`--limit-s` is killed and reported). A size is skipped for a model when the previous size,
scaled linearly, predicts more than the time limit or 8 GB (for the models whose cost grows
with the interactions; EASE's grows with the items, fixed here). Writes bench/results/recsys.json.
Synthetic data: 5,000 items with Zipf popularity, users with 10 events each in taste clusters,
baskets of 1-6 items over one year. The baseline in the same run is popularity.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import latency_summary_ms, machine_info, write_result

N_ITEMS = 5_000
EVENTS_PER_USER = 10
MODELS = ("popularity", "basket_cooccurrence", "implicit_als", "ease", "default_precompute")
MEMORY_LIMIT_GB = 8.0
# Cost grows with the interactions; EASE's is items² memory and items³ time whatever the
# interactions, so it (and the default, built on it) is only bounded by the kill timeout.
LINEAR = ("popularity", "basket_cooccurrence", "implicit_als")


def synthetic(n_events: int, seed: int = 0):  # type: ignore[no-untyped-def]
    from recsys import Interactions

    rng = np.random.default_rng(seed)
    n_users = max(1, n_events // EVENTS_PER_USER)
    clusters = 50
    popularity = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8
    popularity /= popularity.sum()
    user_cluster = rng.integers(0, clusters, n_users)
    users = np.repeat(np.arange(n_users), EVENTS_PER_USER)[:n_events]
    # Half the events follow the popularity curve, half the user's cluster block of items.
    taste = rng.random(n_events) < 0.5
    items = rng.choice(N_ITEMS, size=n_events, p=popularity)
    block = N_ITEMS // clusters
    items[taste] = user_cluster[users[taste]] * block + rng.integers(0, block, taste.sum())
    basket = rng.integers(0, 4, n_events)  # events of a user share ~4 order times
    start = 1_700_000_000
    times = start + ((users * 7919 + basket * 104729) % (365 * 86_400))
    return Interactions(
        users.astype(str), items.astype(str), times.astype(np.int64),
        np.ones(n_events, dtype=np.float32),
    )  # fmt: skip


def train_one(model: str, n_events: int) -> dict[str, float]:
    """Child process body: fit one model, report seconds and peak RSS."""
    from recsys import ALS, EASE, Catalogue, CoOccurrence, Popularity, precompute

    data = synthetic(n_events)
    started = time.perf_counter()
    if model == "default_precompute":
        precompute(data, top_n=50)
    else:
        catalogue = Catalogue.of(data)
        matrix = catalogue.matrix(data)
        matrix.data[:] = 1.0
        if model == "popularity":
            Popularity().fit(matrix)
        elif model == "basket_cooccurrence":
            CoOccurrence(baskets=catalogue.baskets(data)).fit(matrix)
        elif model == "implicit_als":
            ALS(factors=32, regularization=0.1).fit(matrix)
        elif model == "ease":
            EASE(300.0).fit(matrix)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"train_seconds": round(seconds, 2), "peak_rss_mb": round(peak_kb / 1024, 1)}


def run_child(model: str, n_events: int, limit_s: float) -> dict[str, object]:
    argv = [sys.executable, __file__, "--child", model, str(n_events)]
    started = time.perf_counter()
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=limit_s, check=True)
    except subprocess.TimeoutExpired:
        return {"skipped": f"killed after {limit_s:.0f} s"}
    except subprocess.CalledProcessError as error:
        return {"failed": error.stderr.strip().splitlines()[-1:]}
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - started, 2)  # data generation included
    return result


def latency(n_events: int, calls: int = 2_000) -> dict[str, object]:
    """recommend() p50/p99 over a SQLite store holding the synthetic catalogue."""
    from sqlalchemy import insert

    from bot.recommendations import Filters, Recommendations
    from bot.store.db import make_engine, migrate
    from bot.store.models import Product, ProductVariant
    from recsys import precompute

    data = synthetic(n_events)
    model = precompute(data, top_n=50)
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/shop.db")
        migrate(engine)
        with engine.begin() as connection:
            connection.execute(insert(Product), [
                {"id": i, "sku": f"P{i}", "title": f"Product {i}", "description": "",
                 "category": f"C{i % 12}", "brand": "B", "material": "M", "colour": "red",
                 "price": Decimal("10.00") + i % 90, "currency": "EUR"}
                for i in range(N_ITEMS)
            ])  # fmt: skip
            connection.execute(insert(ProductVariant), [
                {"product_id": i, "sku": f"P{i}-M", "size": "M", "colour": "red",
                 "stock": 0 if i % 10 == 0 else 3}
                for i in range(N_ITEMS)
            ])  # fmt: skip
        shop = Recommendations(engine, model)
        rng = np.random.default_rng(1)
        known = rng.choice(len(model.users), size=calls)
        shop.recommend(int(model.users[0]), n=5)  # facts cache warm, as in a running app
        timings: dict[str, list[float]] = {"known_customer": [], "anonymous": [], "similar": []}
        for row in known.tolist():
            started = time.perf_counter()
            shop.recommend(int(model.users[row]), n=5, filters=Filters(max_price=Decimal("80")))
            timings["known_customer"].append(time.perf_counter() - started)
        for item in rng.integers(0, N_ITEMS, size=calls // 4).tolist():
            started = time.perf_counter()
            shop.recommend(None, n=5)
            timings["anonymous"].append(time.perf_counter() - started)
            started = time.perf_counter()
            shop.similar(item, n=5)
            timings["similar"].append(time.perf_counter() - started)
        engine.dispose()
    return {
        "interactions": n_events,
        "customers_in_artefact": len(model.users),
        "items": N_ITEMS,
        "store": "sqlite",
        **{name: latency_summary_ms(values) for name, values in timings.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000,5000000")
    parser.add_argument("--limit-s", type=float, default=240.0)
    parser.add_argument("--latency-size", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(train_one(args.child[0], int(args.child[1]))))
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    training: dict[str, dict[str, object]] = {}
    for model in MODELS:
        training[model] = {}
        previous: tuple[int, dict[str, object]] | None = None
        for size in sizes:
            if model in LINEAR and previous is not None and "train_seconds" in previous[1]:
                scale = size / previous[0]
                wall = float(previous[1]["wall_seconds"])  # type: ignore[arg-type]
                rss = float(previous[1]["peak_rss_mb"]) / 1024  # type: ignore[arg-type]
                if wall * scale > args.limit_s or rss * scale > MEMORY_LIMIT_GB:
                    training[model][str(size)] = {
                        "skipped": f"predicted {wall * scale:.0f} s / {rss * scale:.1f} GB"
                    }
                    print(model, size, training[model][str(size)], flush=True)
                    continue
            result = run_child(model, size, args.limit_s)
            training[model][str(size)] = result
            print(model, size, result, flush=True)
            previous = (size, result) if "train_seconds" in result else previous
    serving = latency(args.latency_size)
    print("recommend()", json.dumps(serving), flush=True)
    path = write_result(
        "recsys",
        {
            "machine": machine_info(),
            "synthetic": {"items": N_ITEMS, "events_per_user": EVENTS_PER_USER},
            "baseline": "popularity",
            "training": training,
            "recommend_latency": serving,
            "target_p99_ms": 10,
        },
    )
    print(f"-> {path}")


if __name__ == "__main__":
    main()
