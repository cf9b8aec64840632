"""`bot` command line: demo data, orders, training, and running the whole assistant."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine

from bot.catalog_cli import catalog_app
from bot.knowledge_cli import knowledge_app
from bot.nlu_eval import nlu_eval_app
from bot.recsys_cli import recsys_app
from bot.settings import Settings, get_settings
from bot.staff_cli import staff_app
from bot.vision_cli import eval_app

app = typer.Typer(help="Northwind Threads shop assistant.", no_args_is_help=True)
orders_app = typer.Typer(help="Look at the shop's orders.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(orders_app, name="orders")
app.add_typer(db_app, name="db")
app.add_typer(recsys_app, name="recsys")
app.add_typer(staff_app, name="staff")
app.add_typer(knowledge_app, name="knowledge")
app.add_typer(eval_app, name="eval")
app.add_typer(nlu_eval_app, name="nlu-eval")
app.add_typer(catalog_app, name="catalog")


def _engine(settings: Settings) -> Engine:
    from bot.store.db import make_engine, migrate

    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    return engine


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the database schema (Alembic)."""
    _engine(get_settings())
    typer.echo("database is up to date")


@app.command("demo-data")
def demo_data(
    today: Annotated[
        str | None, typer.Option(help="Date the demo shop is built around (YYYY-MM-DD).")
    ] = None,
    photos: Annotated[
        Path | None,
        typer.Option(
            help="Build the catalogue's photos from this labelled photo folder (labels.csv + "
            "images/, e.g. ../shared/datasets/clothing), read in place; default: drawn photos.",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    index: Annotated[
        bool, typer.Option(help="Index the product photos and texts for search.")
    ] = True,
) -> None:
    """Write the deterministic demo shop (replaces an existing demo shop) with product photos."""
    from bot.demo_data import write_demo_shop
    from bot.demo_photos import attach_demo_photos
    from bot.store.db import session_scope

    if index:
        from bot.catalog_cli import tune_malloc

        tune_malloc()
    settings = get_settings()
    day = date.fromisoformat(today) if today else date.today()
    with session_scope(_engine(settings)) as session:
        summary = write_demo_shop(session, day)
        pictured = attach_demo_photos(session, settings.data_dir, photos)
    typer.echo(f"demo shop written: {summary}")
    typer.echo(f"product photos: {pictured} ({'from ' + str(photos) if photos else 'drawn'})")
    if index:
        from bot.catalog_cli import index_with_progress

        report = index_with_progress(settings)
        typer.echo(f"photo search index: {json.dumps(report.to_json())}")


@orders_app.command("list")
def orders_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, for tools.")] = False,
) -> None:
    """Every order with its status, carrier, tracking number and expected delivery."""
    from bot.store.db import session_scope
    from bot.store.orders import list_order_views

    with session_scope(_engine(get_settings())) as session:
        views = list_order_views(session)
    if as_json:
        json.dump([v.to_json() for v in views], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    for view in views:
        row = view.to_json()
        typer.echo(
            f"{row['number']}  {row['status']:<10} {row['email']:<32} {row['postcode']:<9} "
            f"{row['carrier'] or '-':<6} {row['tracking_number'] or '-':<20} "
            f"{row['expected_delivery'] or '-'}"
        )


@app.command("train")
def train(
    force: Annotated[bool, typer.Option(help="Retrain even if nothing changed.")] = False,
) -> None:
    """Train the Rasa model (skipped by Rasa when the training data did not change)."""
    from bot.rasa_runtime import train as train_model

    train_model(get_settings(), force=force)


@app.command("serve")
def serve() -> None:
    """Run only the app process (web channel, router, action endpoint)."""
    from bot.app import serve as serve_app

    serve_app(get_settings())


@app.command("rasa")
def rasa(port: Annotated[int, typer.Option(help="Port of this Rasa server.")] = 5005) -> None:
    """Run only one Rasa server (REST channel on 127.0.0.1)."""
    import os

    from bot.rasa_runtime import server_argv, server_env

    argv = server_argv(get_settings(), port)
    os.execve(argv[0], argv, {**os.environ, **server_env()})


@app.command("run")
def run(
    rasa_processes: Annotated[
        int, typer.Option("--rasa-processes", help="How many Rasa servers to start.")
    ] = 0,
) -> None:
    """Start Rasa and the app, wait until healthy, stream logs; Ctrl-C stops everything."""
    from bot.launcher import run_all

    raise typer.Exit(asyncio.run(run_all(get_settings(), rasa_processes)))


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    Path.cwd()
    main()
