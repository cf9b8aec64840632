"""`bot eval photo-search`: how well image neighbours share a label (photo search quality)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

eval_app = typer.Typer(help="Offline quality measurements.", no_args_is_help=True)


@eval_app.command("photo-search")
def photo_search(
    images: Annotated[Path, typer.Option(help="Folder with the image files.", exists=True)],
    labels: Annotated[
        Path, typer.Option(help="CSV with columns image (name, .jpg optional) and label.")
    ],
    model: Annotated[
        str,
        typer.Option(
            help="efficientnet_lite0_lite2 (default), efficientnet_lite0, _lite2, clip..."
        ),
    ] = "",
    exclude_label: Annotated[
        list[str] | None,
        typer.Option(
            help="Leave out rows with this label (repeatable). Default: 'Not sure' and 'Other'; "
            "--exclude-label '' keeps every row."
        ),
    ] = None,
    clip_dir: Annotated[
        Path | None, typer.Option(help="Local CLIP checkpoint folder, for --model clip.")
    ] = None,
    query_expansion: Annotated[
        int,
        typer.Option(
            help="Re-rank: expand each query with its top-k first-round neighbours (0 = off)."
        ),
    ] = 0,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
) -> None:
    """Leave-one-out kNN over exactly the images the CSV lists; prints JSON precision@1/5/10.

    Images are embedded in-process the way the catalogue is (no vision service needed). A
    neighbour counts when its label equals the query's; random_precision is what random
    neighbours would score.
    """
    from rich.console import Console
    from rich.progress import Progress

    from vision.evaluation import DEFAULT_EXCLUDED_LABELS, evaluate_photo_search
    from vision.models import DEFAULT_MODEL

    model = model or DEFAULT_MODEL
    excluded = tuple(exclude_label) if exclude_label is not None else DEFAULT_EXCLUDED_LABELS
    with Progress(transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"embedding with {model}", total=None)
        result = evaluate_photo_search(
            images,
            labels,
            model,
            excluded,
            clip_dir=clip_dir,
            progress=lambda n: bar.advance(task, n),
            on_count=lambda n: bar.update(task, total=n),
            query_expansion=query_expansion,
        )
    text = json.dumps(result.to_json())
    typer.echo(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
