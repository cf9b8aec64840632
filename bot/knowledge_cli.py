"""`bot knowledge`: index the shop's documents, ask them a question, evaluate retrieval."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from knowledge.documents import DOCS_DIR

knowledge_app = typer.Typer(
    help="Knowledge base: the shop's FAQ and policy documents.", no_args_is_help=True
)

DocsOption = Annotated[
    Path,
    typer.Option(
        "--docs",
        envvar="KNOWLEDGE_DOCS",
        help="Folder of markdown documents (*.md).",
        file_okay=False,
    ),
]


@knowledge_app.command("index")
def index(docs: DocsOption = DOCS_DIR) -> None:
    """Embed new or changed sections into the `knowledge` collection; drop removed ones.

    Idempotent: a second run with unchanged documents embeds nothing. With the embedded store,
    stop the app first (one process at a time may open it).
    """
    from bot.knowledge_store import open_knowledge_base
    from bot.settings import get_settings
    from bot.vectors import open_vector_store

    store = open_vector_store(get_settings())
    try:
        kb = open_knowledge_base(store, docs)
        report = kb.index(docs, progress=lambda line: typer.echo(line, err=True))
    finally:
        store.close()
    typer.echo(json.dumps(report.to_json()))


@knowledge_app.command("ask")
def ask(
    question: Annotated[str, typer.Argument(help="A customer's question.")],
    limit: Annotated[int, typer.Option(help="How many passages.")] = 3,
    docs: DocsOption = DOCS_DIR,
) -> None:
    """Show the passages the assistant would quote, with scores and the threshold decision."""
    from bot.knowledge_store import open_knowledge_base
    from bot.settings import get_settings
    from bot.vectors import open_vector_store

    store = open_vector_store(get_settings())
    try:
        answer = open_knowledge_base(store, docs).ask(question, limit)
    finally:
        store.close()
    typer.echo(
        json.dumps(
            {
                "confident": answer.confident,
                "threshold": answer.threshold,
                "passages": [
                    {"doc": p.doc, "title": p.title, "score": round(p.score, 3), "text": p.text}
                    for p in answer.passages
                ],
            },
            indent=1,
            ensure_ascii=False,
        )
    )


@knowledge_app.command("eval")
def evaluate(
    file: Annotated[
        Path,
        typer.Argument(
            help="YAML: questions [{q, doc}], out_of_scope [q].", exists=True, dir_okay=False
        ),
    ],
    docs: DocsOption = DOCS_DIR,
    live: Annotated[
        bool, typer.Option(help="Use the configured store instead of a fresh temporary index.")
    ] = False,
) -> None:
    """Print JSON: hit@1, hit@3 (by document), threshold calibration, latency, misses.

    By default the documents are indexed into a temporary embedded Qdrant Edge store, so this
    works while the app runs and measures exactly the documents given.
    """
    from bot.knowledge_store import open_knowledge_base
    from bot.settings import get_settings
    from bot.vectors import VectorStore, open_vector_store
    from bot.vectors.edge import EdgeVectorStore
    from knowledge.evaluation import evaluate as run_eval
    from knowledge.evaluation import load_eval_set

    eval_set = load_eval_set(file)
    with tempfile.TemporaryDirectory(prefix="knowledge-eval-") as tmp:
        store: VectorStore = (
            open_vector_store(get_settings()) if live else EdgeVectorStore(Path(tmp))
        )
        try:
            kb = open_knowledge_base(store, docs)
            if not live:
                kb.index(docs)
            result = run_eval(kb, eval_set)
        finally:
            store.close()
    typer.echo(json.dumps(result, indent=1, ensure_ascii=False))
