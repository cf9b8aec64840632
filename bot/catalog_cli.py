"""`bot catalog`: import a catalogue from CSV and keep its photo/text vectors up to date.

With the embedded vector store (no QDRANT_URL), stop the app first: one process at a time may
open it. Every command can be interrupted (Ctrl-C) and run again: it continues where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from bot.photo_index import IndexReport
    from bot.settings import Settings

catalog_app = typer.Typer(
    help="Product catalogue: import from CSV, photo/text vectors for search.", no_args_is_help=True
)

ModelOption = Annotated[
    str,
    typer.Option(
        envvar="VISION_MODEL",
        help="Image model; must be the one the vision service runs (default: its default).",
    ),
]


def _progress() -> Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


def tune_malloc() -> None:
    """Re-run this command with the vision service's malloc settings (2x faster embedding on
    the CPU; glibc reads them only at start-up). Only from the `bot` command line."""
    import os
    import sys

    from vision.launcher import DISABLE_VARIABLE, malloc_tuned, service_environment

    entry = Path(sys.argv[0])
    from_cli = entry.name == "bot" or entry.parts[-2:] == ("bot", "cli.py")
    if not from_cli or malloc_tuned() or os.environ.get(DISABLE_VARIABLE) == "0":
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(
        sys.executable, [sys.executable, "-m", "bot.cli", *sys.argv[1:]], service_environment()
    )


def index_with_progress(settings: Settings, rebuild: bool = False, model: str = "") -> IndexReport:
    """Index every product of the store into `products`, showing a progress bar."""
    from bot.photo_index import LocalImageEncoder, ProductIndexer, catalog_items
    from bot.store.db import session_scope
    from bot.vectors import open_vector_store
    from knowledge import MiniLMEncoder

    engine = _engine(settings)
    with session_scope(engine) as session:
        items = catalog_items(session, settings.data_dir)
    store = open_vector_store(settings)
    try:
        indexer = ProductIndexer(store, LocalImageEncoder(model or None), MiniLMEncoder())
        with _progress() as bar:
            task = bar.add_task("indexing products", total=len(items))
            return indexer.sync(items, rebuild=rebuild, progress=lambda n: bar.advance(task, n))
    finally:
        store.close()


def _engine(settings: Settings) -> Engine:
    from bot.store.db import make_engine, migrate

    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    return engine


def _print_index_report(report: IndexReport) -> None:
    for sku, reason in report.failures:
        typer.echo(f"  image of {sku}: {reason}", err=True)
    typer.echo(json.dumps({k: v for k, v in report.to_json().items() if k != "failures"}))


@catalog_app.command("import")
def import_csv(
    csv_path: Annotated[
        Path, typer.Argument(help="products.csv (columns: see bot/catalog_import.py).", exists=True)
    ],
    images: Annotated[
        Path | None,
        typer.Option("--images", help="Folder the `image` column is relative to.", exists=True),
    ] = None,
    index: Annotated[bool, typer.Option(help="Index photos and texts after the import.")] = True,
    model: ModelOption = "",
) -> None:
    """Create or update products from CSV, then index what changed.

    Idempotent (unchanged rows and photos are skipped by content hash) and resumable: after
    Ctrl-C, run the same command again. Bad rows and unreadable photos are listed at the end.
    """
    from bot.catalog_import import BadRow, import_catalog
    from bot.settings import get_settings
    from bot.store.db import session_scope

    if index:
        tune_malloc()
    settings = get_settings()
    engine = _engine(settings)

    def transaction(work: Callable[[Session], None]) -> None:
        with session_scope(engine) as session:
            work(session)

    try:
        with _progress() as bar:
            task = bar.add_task("importing rows", total=None)
            report = import_catalog(
                transaction, csv_path, images, progress=lambda n: bar.advance(task, n)
            )
    except BadRow as error:
        typer.echo(f"cannot import: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        json.dumps(
            {
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "bad_rows": len(report.bad_rows),
                "missing_images": len(report.missing_images),
            }
        )
    )
    failures = 0
    if index:
        indexed = index_with_progress(settings, model=model)
        _print_index_report(indexed)
        failures = len(indexed.failures)
    for line, reason in report.bad_rows:
        typer.echo(f"  line {line}: {reason}", err=True)
    for sku, path in report.missing_images:
        typer.echo(f"  image of {sku} not found: {path}", err=True)
    if report.bad_rows or report.missing_images or failures:
        typer.echo(
            f"done with problems: {len(report.bad_rows)} bad row(s), "
            f"{len(report.missing_images)} missing and {failures} unreadable image(s) (see above)",
            err=True,
        )


@catalog_app.command("index")
def index_changed(model: ModelOption = "") -> None:
    """Embed the photos and texts of products that are new or changed; drop removed ones."""
    from bot.settings import get_settings

    tune_malloc()
    _print_index_report(index_with_progress(get_settings(), model=model))


@catalog_app.command("reindex")
def reindex(model: ModelOption = "") -> None:
    """Rebuild the `products` vectors from scratch (after changing the image model)."""
    from bot.settings import get_settings

    tune_malloc()
    _print_index_report(index_with_progress(get_settings(), rebuild=True, model=model))
