"""Knowledge retrieval: hit@1/hit@3, threshold calibration and latency, with baselines.

    .venv/bin/python bench/knowledge_bench.py [--eval tests/knowledge_eval.yml] [--repeat 3]

Indexes the shop documents into a temporary embedded Qdrant Edge store (the app's path) and
into an exact numpy store (baseline), evaluates with and without spelling correction, and times
the parts of one question: spelling + MiniLM encoding, the Qdrant search, and the whole `ask`.
Writes bench/results/knowledge.json. Prints figures; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, latency_summary_ms, machine_info, ratio, write_result
from bot.knowledge_store import VectorPassages, open_knowledge_base
from bot.vectors.edge import EdgeVectorStore
from knowledge import DOCS_DIR, KnowledgeBase, MemoryPassages, MiniLMEncoder
from knowledge.evaluation import EvalSet, evaluate, load_eval_set


def _quality(kb: KnowledgeBase, eval_set: EvalSet) -> dict[str, Any]:
    result = evaluate(kb, eval_set)
    return {
        k: result[k]
        for k in (
            "n",
            "hit_at_1",
            "hit_at_3",
            "threshold",
            "calibrated_threshold",
            "score_in_scope",
            "score_out_of_scope",
            "misses",
        )
    }


def _timings(
    kb: KnowledgeBase, store: VectorPassages, questions: list[str], repeat: int
) -> dict[str, Any]:
    encode_s: list[float] = []
    search_s: list[float] = []
    ask_s: list[float] = []
    for _ in range(repeat):
        for question in questions:
            started = time.perf_counter()
            text = kb.speller.correct(question) if kb.speller else question
            [vector] = kb.encoder.encode([text])
            encoded = time.perf_counter()
            store.nearest(vector.tolist(), 12)
            searched = time.perf_counter()
            kb.ask(question)
            asked = time.perf_counter()
            encode_s.append(encoded - started)
            search_s.append(searched - encoded)
            ask_s.append(asked - searched)
    return {
        "spell_and_encode": latency_summary_ms(encode_s),
        "qdrant_edge_search": latency_summary_ms(search_s),
        "ask_end_to_end": latency_summary_ms(ask_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval", type=Path, default=ROOT / "tests" / "knowledge_eval.yml")
    parser.add_argument("--docs", type=Path, default=DOCS_DIR)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    eval_set = load_eval_set(args.eval)
    encoder = MiniLMEncoder()
    load_started = time.perf_counter()
    encoder.encode(["warm up"])
    model_load_s = time.perf_counter() - load_started

    with tempfile.TemporaryDirectory(prefix="knowledge-bench-") as tmp:
        store = EdgeVectorStore(Path(tmp))
        kb = open_knowledge_base(store, args.docs, encoder=encoder)
        started = time.perf_counter()
        report = kb.index(args.docs)
        index_s = time.perf_counter() - started
        started = time.perf_counter()
        reindex = kb.index(args.docs)
        reindex_s = time.perf_counter() - started

        edge = _quality(kb, eval_set)
        no_speller = _quality(KnowledgeBase(kb.store, encoder, speller=None), eval_set)
        memory = KnowledgeBase(MemoryPassages(), encoder, speller=kb.speller)
        memory.index(args.docs)
        exact = _quality(memory, eval_set)

        questions = [q for q, _ in eval_set.questions] + eval_set.out_of_scope
        assert isinstance(kb.store, VectorPassages)
        timings = _timings(kb, kb.store, questions, args.repeat)
        store.close()

    result = {
        "benchmark": "knowledge",
        "machine": machine_info(),
        "eval_file": str(
            args.eval.relative_to(ROOT) if args.eval.is_relative_to(ROOT) else args.eval
        ),
        "documents": report.documents,
        "passages": report.chunks,
        "model": encoder.model_id,
        "model_load_s": round(model_load_s, 2),
        "index_s": round(index_s, 2),
        "reindex_unchanged_s": round(reindex_s, 3),
        "reindex_unchanged_embedded": reindex.added + reindex.updated,
        "qdrant_edge": edge,
        "baselines": {
            "without_spelling_correction": {k: no_speller[k] for k in ("hit_at_1", "hit_at_3")},
            "exact_numpy_search": {k: exact[k] for k in ("hit_at_1", "hit_at_3")},
        },
        "gain_hit_at_1_from_spelling": round(edge["hit_at_1"] - no_speller["hit_at_1"], 3),
        "latency": timings,
        "search_share_of_ask": ratio(
            timings["qdrant_edge_search"]["p50_ms"], timings["ask_end_to_end"]["p50_ms"]
        ),
    }
    path = write_result("knowledge", result)
    print(
        f"documents {report.documents}, passages {report.chunks}, index {index_s:.1f} s, "
        f"unchanged re-index {reindex_s * 1000:.0f} ms"
    )
    print(
        f"hit@1 {edge['hit_at_1']:.3f}  hit@3 {edge['hit_at_3']:.3f}  (n={edge['n']}); "
        f"without spelling correction hit@1 {no_speller['hit_at_1']:.3f}; "
        f"exact numpy hit@1 {exact['hit_at_1']:.3f}"
    )
    t = edge["threshold"]
    print(
        f"threshold {t['threshold']}: in-scope answered {t['in_scope_answered']}, "
        f"out-of-scope refused {t['out_of_scope_refused']}; calibrated "
        f"{edge['calibrated_threshold']['threshold']}"
    )
    for name, summary in timings.items():
        print(f"{name:>20}: p50 {summary['p50_ms']} ms  p95 {summary['p95_ms']} ms")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
