"""`bot recsys`: convert public purchase data, evaluate the recommenders and churn offline."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

recsys_app = typer.Typer(help="Recommendations: data conversion and offline evaluation.")


def _moment(value: str | None) -> int | None:
    if value is None:
        return None
    from recsys.data import parse_time

    return parse_time(value)


@recsys_app.command("convert")
def convert(
    transactions: Annotated[
        Path, typer.Option(help="UCI Online Retail transactions CSV.", exists=True)
    ],
    out: Annotated[Path, typer.Option(help="Interactions CSV to write.")],
    since: Annotated[str | None, typer.Option(help="Keep events from this date on.")] = None,
    until: Annotated[str | None, typer.Option(help="Keep events before this date.")] = None,
) -> None:
    """Write user_id,item_id,timestamp,weight: one event per customer, product and invoice."""
    from recsys.data import write_csv
    from recsys.datasets import convert_online_retail

    interactions = convert_online_retail(transactions, _moment(since), _moment(until))
    write_csv(out, interactions)
    users = len(set(interactions.user_ids.tolist()))
    items = len(set(interactions.item_ids.tolist()))
    typer.echo(f"{len(interactions)} interactions, {users} users, {items} items -> {out}", err=True)


@recsys_app.command("eval")
def evaluate(
    interactions: Annotated[Path, typer.Option(help="user_id,item_id,timestamp[,weight] CSV.")],
    test: Annotated[
        Path | None, typer.Option(help="Test CSV; without it the last 20% of time is the test.")
    ] = None,
    k: Annotated[int, typer.Option(help="Cut-off of the ranking metrics.")] = 10,
    tune: Annotated[
        bool, typer.Option(help="Grid-search on a validation split of the training period.")
    ] = True,
    verbose: Annotated[bool, typer.Option(help="Print the tuning grid to stderr.")] = False,
) -> None:
    """One JSON line per model; `default` marks the model the app serves."""
    from recsys.data import load_csv, time_split
    from recsys.training import Config, compare

    train = load_csv(interactions)
    if test is None:
        train, held_out = time_split(train, 0.2)
        span = f"split at {datetime.fromtimestamp(int(held_out.timestamps.min()), UTC):%Y-%m-%d}"
        typer.echo(f"time split: {span}", err=True)
    else:
        held_out = load_csv(test)

    def log(line: str) -> None:
        if verbose:
            typer.echo(line, err=True)

    for result in compare(train, held_out, k, None if tune else Config(), log):
        typer.echo(json.dumps(result.to_json()))


@recsys_app.command("train")
def train_command(
    out: Annotated[
        Path | None, typer.Option(help="Artefact folder (default: DATA_DIR/recsys).")
    ] = None,
) -> None:
    """Train on the store's orders and interactions; the app serves the newest artefact."""
    from bot.recommendations import train
    from bot.settings import get_settings
    from bot.store.db import make_engine, migrate
    from recsys import Precomputed

    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    path = train(engine, out or settings.data_dir / "recsys")
    meta = Precomputed.load(path).meta
    typer.echo(
        f"{meta.get('interactions', 0)} interactions, {meta.get('users', 0)} customers, "
        f"{meta.get('items', 0)} products, {meta.get('seconds', 0)} s -> {path}",
        err=True,
    )


@recsys_app.command("churn-eval")
def churn_eval(
    transactions: Annotated[
        Path, typer.Option(help="UCI Online Retail transactions CSV.", exists=True)
    ],
    horizon_days: Annotated[
        int, typer.Option(help="Churn = no order within this many days.", min=1)
    ] = 90,
    model: Annotated[str, typer.Option(help="Churn model: logistic or boosting.")] = "logistic",
    end: Annotated[
        str | None, typer.Option(help="End of the test labels (default: the last order).")
    ] = None,
) -> None:
    """Time-split churn evaluation (train at end-2h, test at end-h): one JSON line."""
    from recsys.churn import MODELS, History, ModelKind, evaluate
    from recsys.datasets import online_retail_orders

    kinds: dict[str, ModelKind] = {kind: kind for kind in MODELS}
    if model not in kinds:
        raise typer.BadParameter(f"choose one of {', '.join(MODELS)}", param_hint="--model")
    started = time.perf_counter()
    orders = online_retail_orders(transactions)
    if not orders:
        raise typer.BadParameter("no sale invoice of a known customer", param_hint="--transactions")
    moment = _moment(end)
    until = (
        max(order.placed_at for order in orders)
        if moment is None
        else datetime.fromtimestamp(moment, UTC)
    )
    try:
        result = evaluate(History.of(orders), until, horizon_days, kinds[model])
    except ValueError as error:
        typer.echo(f"churn-eval: {error}", err=True)
        raise typer.Exit(1) from error
    result["end"] = until.isoformat()
    result["orders"] = len(orders)
    result["seconds"] = round(time.perf_counter() - started, 2)
    typer.echo(json.dumps(result))
