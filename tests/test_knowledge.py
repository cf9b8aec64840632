"""Knowledge base: chunking, idempotent indexing into Qdrant, retrieval, the answer threshold."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from typer.testing import CliRunner

from bot.cli import app
from bot.knowledge_store import VectorPassages, open_knowledge_base
from bot.vectors.edge import EdgeVectorStore
from knowledge import (
    DOCS_DIR,
    Document,
    KnowledgeBase,
    MiniLMEncoder,
    Speller,
    chunk_document,
    load_documents,
)
from knowledge.evaluation import calibrate

DOC = """# Returns

Intro text about returns.

## Policy

Thirty days.

### Exceptions

Gift cards.

```
# not a heading
```

## Empty section
## Refunds

Five business days
after arrival.
"""


def test_chunks_follow_the_headings() -> None:
    chunks = chunk_document(Document("returns", "Returns", DOC))
    assert [c.title for c in chunks] == [
        "Returns",
        "Returns › Policy",
        "Returns › Policy › Exceptions",
        "Returns › Refunds",
    ]
    assert chunks[0].text == "Intro text about returns."
    assert "# not a heading" in chunks[2].text
    assert chunks[3].text == "Five business days after arrival."  # hard wraps joined
    assert len({c.id for c in chunks}) == len(chunks)
    again = chunk_document(Document("returns", "Returns", DOC))
    assert [c.id for c in again] == [c.id for c in chunks]
    assert chunks[1].content_hash("m") != chunks[1].content_hash("other-model")


def test_long_sections_are_split_at_paragraphs() -> None:
    body = "\n\n".join(" ".join(["word"] * 60) for _ in range(5))
    chunks = chunk_document(Document("d", "D", f"# D\n\n## Long\n\n{body}\n"), max_words=130)
    assert [c.part for c in chunks] == [0, 1, 2]
    assert all(c.title == "D › Long" for c in chunks)
    assert len({c.id for c in chunks}) == 3


def test_the_shop_documents_cover_every_topic() -> None:
    documents = {d.id: d for d in load_documents()}
    assert set(documents) >= {
        "shipping",
        "delivery-options",
        "orders",
        "returns-and-refunds",
        "cancellations",
        "payment-methods",
        "payment-problems",
        "invoices",
        "account",
        "size-guide",
        "promotions",
        "privacy",
        "contact",
    }
    sizes = documents["size-guide"].text
    for category in (
        "Dresses",
        "Shirts",
        "Trousers and jeans",
        "Jackets",
        "Shoes",
        "Knitwear",
        "Accessories",
    ):
        assert f"## {category}" in sizes
    returns = documents["returns-and-refunds"].text
    assert "30 days of delivery" in returns and "5 business days" in returns
    assert "support@northwind-threads.example" in documents["contact"].text


def test_speller_fixes_typos_but_not_words() -> None:
    speller = Speller(
        ["You can return it. Reset your password. We can't ship it."],
        known_words=["weather", "sister"],
    )
    assert speller.correct("how do i start a retrun") == "how do i start a return"
    assert speller.correct("forgot my pasword") == "forgot my password"
    assert speller.correct("cant login") == "can't login"
    assert speller.correct("whats the weather") == "what's the weather"
    assert speller.correct("my sister") == "my sister"
    assert speller.correct("xyzzy ok") == "xyzzy ok"


def test_calibration_separates_scores() -> None:
    assert 0.3 < calibrate([0.5, 0.6, 0.7], [0.1, 0.2, 0.3]) < 0.5
    assert calibrate([0.5, 0.6], []) == 0.5


# -- with the real model ---------------------------------------------------------------------


class CountingEncoder:
    """MiniLM, counting the texts it embeds."""

    def __init__(self, inner: MiniLMEncoder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self.texts.extend(texts)
        return self.inner.encode(texts)


@pytest.fixture(scope="module")
def minilm() -> MiniLMEncoder:
    return MiniLMEncoder()


@pytest.fixture(scope="module")
def shop_kb(
    minilm: MiniLMEncoder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KnowledgeBase]:
    store = EdgeVectorStore(tmp_path_factory.mktemp("kb") / "qdrant")
    kb = open_knowledge_base(store, DOCS_DIR, encoder=minilm)
    kb.index(DOCS_DIR)
    yield kb
    store.close()


@pytest.mark.parametrize(
    ("question", "doc"),
    [
        ("how many days do i have to send somthing back", "returns-and-refunds"),
        ("how long does shiping take to spain", "shipping"),
        ("forgot my pasword", "account"),
        ("i was charged twice", "payment-problems"),
        ("what size shoe is a uk 8", "size-guide"),
        ("is there a fee to cancel", "cancellations"),
    ],
)
def test_retrieval_finds_the_right_document(
    shop_kb: KnowledgeBase, question: str, doc: str
) -> None:
    answer = shop_kb.ask(question)
    assert answer.best is not None
    assert answer.best.doc == doc, [(p.title, round(p.score, 3)) for p in answer.passages]
    assert answer.confident
    assert answer.best.title.startswith(load_documents_title(doc))
    assert answer.best.text
    assert [p.score for p in answer.passages] == sorted(
        (p.score for p in answer.passages), reverse=True
    )


def load_documents_title(doc: str) -> str:
    return {d.id: d.title for d in load_documents()}[doc]


@pytest.mark.parametrize("question", ["what's the weather like tomorrow", "tell me a joke"])
def test_out_of_scope_question_is_below_the_threshold(
    shop_kb: KnowledgeBase, question: str
) -> None:
    answer = shop_kb.ask(question)
    assert not answer.confident
    assert answer.passages and answer.passages[0].score < answer.threshold
    assert not shop_kb.ask("   ").passages


def test_index_is_idempotent_and_follows_the_documents(
    minilm: MiniLMEncoder, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("invoices.md", "cancellations.md", "contact.md"):
        shutil.copy(DOCS_DIR / name, docs / name)
    store = EdgeVectorStore(tmp_path / "qdrant")
    passages = VectorPassages(store)
    encoder = CountingEncoder(minilm)
    kb = KnowledgeBase(passages, encoder)
    first = kb.index(docs)
    total = first.chunks
    assert first.added == total and first.removed == 0
    assert store.count("knowledge") == total

    encoder.texts.clear()
    second = kb.index(docs)
    assert (second.added, second.updated, second.removed, second.unchanged) == (0, 0, 0, total)
    assert encoder.texts == []

    text = (docs / "invoices.md").read_text()
    (docs / "invoices.md").write_text(
        text.replace("within 30 days of delivery", "within 60 days of delivery")
    )
    third = kb.index(docs)
    assert third.embedded_docs == ["invoices"]
    assert (third.added, third.updated, third.removed) == (0, 1, 0)
    assert len(encoder.texts) == 1 and "60 days" in encoder.texts[0]

    (docs / "contact.md").unlink()
    contact_chunks = len(chunk_document(load_documents(DOCS_DIR)[_index("contact")]))
    fourth = kb.index(docs)
    assert fourth.removed == contact_chunks
    assert store.count("knowledge") == total - contact_chunks
    assert {e.id for e in passages.stored()} == {
        c.id for d in load_documents(docs) for c in chunk_document(d)
    }
    store.close()

    reopened = EdgeVectorStore(tmp_path / "qdrant")  # the index survives a restart
    assert KnowledgeBase(VectorPassages(reopened), encoder).index(docs).unchanged == (
        total - contact_chunks
    )
    reopened.close()


def _index(doc: str) -> int:
    return [d.id for d in load_documents(DOCS_DIR)].index(doc)


def test_eval_cli_prints_hit_rates(minilm: MiniLMEncoder, tmp_path: Path) -> None:
    eval_file = tmp_path / "eval.yml"
    eval_file.write_text(
        "questions:\n"
        "  - {q: 'where can i get my invoice', doc: invoices}\n"
        "  - {q: 'can i talk to a real person', doc: contact}\n"
        "out_of_scope: ['tell me a joke']\n"
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("invoices.md", "contact.md"):
        shutil.copy(DOCS_DIR / name, docs / name)
    result = CliRunner().invoke(app, ["knowledge", "eval", str(eval_file), "--docs", str(docs)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["n"] == 2
    assert report["hit_at_1"] == 1.0 and report["hit_at_3"] == 1.0
    assert report["out_of_scope_n"] == 1


def test_minilm_work_from_many_threads_runs_on_one_thread() -> None:
    """OpenMP gives each calling thread its own worker team; more teams than cores slowed a
    query from 5.3 to 9.3 ms, so every encode goes through one thread (re-entrant)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from knowledge.encoder import on_model_thread

    def where() -> int:
        return on_model_thread(lambda: on_model_thread(threading.get_ident))  # nested: no deadlock

    with ThreadPoolExecutor(4) as pool:
        threads = set(pool.map(lambda _: where(), range(16)))
    assert len(threads) == 1 and threading.get_ident() not in threads
