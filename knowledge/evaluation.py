"""Retrieval evaluation: hit@k per question, and calibration of the answer threshold."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from knowledge.base import KnowledgeBase


@dataclass(frozen=True, slots=True)
class EvalSet:
    questions: list[tuple[str, str]]  # (question, expected document id)
    out_of_scope: list[str]


def load_eval_set(path: Path) -> EvalSet:
    """YAML: `questions: [{q, doc}]` and optional `out_of_scope: [question]`."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    questions = [(str(row["q"]), str(row["doc"])) for row in data.get("questions", [])]
    if not questions:
        raise ValueError(f"{path}: no `questions` with `q` and `doc`")
    return EvalSet(questions, [str(q) for q in data.get("out_of_scope", [])])


def calibrate(in_scope: Sequence[float], out_of_scope: Sequence[float]) -> float:
    """The threshold that best separates answerable from unanswerable questions.

    Maximises balanced accuracy (share of in-scope questions answered plus share of out-of-scope
    ones refused); among equally good cuts, the middle of the widest gap.
    """
    if not out_of_scope:
        return min(in_scope)
    candidates = sorted(set(in_scope) | set(out_of_scope))
    cuts = [(a + b) / 2 for a, b in itertools.pairwise(candidates)]
    cuts = cuts or [candidates[0]]

    def quality(cut: float) -> float:
        kept = sum(s >= cut for s in in_scope) / len(in_scope)
        refused = sum(s < cut for s in out_of_scope) / len(out_of_scope)
        return kept + refused

    best = max(quality(c) for c in cuts)
    tied = [c for c in cuts if quality(c) == best]
    return round(statistics.median(tied), 3)


def _rates(threshold: float, in_scope: Sequence[float], oos: Sequence[float]) -> dict[str, Any]:
    return {
        "threshold": threshold,
        "in_scope_answered": round(sum(s >= threshold for s in in_scope) / len(in_scope), 3),
        "out_of_scope_refused": (
            round(sum(s < threshold for s in oos) / len(oos), 3) if oos else None
        ),
    }


def evaluate(kb: KnowledgeBase, eval_set: EvalSet) -> dict[str, Any]:
    """hit@1 / hit@3 by document, latency per question, and the threshold calibration."""
    hits1 = hits3 = 0
    misses: list[dict[str, Any]] = []
    latencies: list[float] = []
    best_scores: list[float] = []
    for question, expected in eval_set.questions:
        started = time.perf_counter()
        passages = kb.search(question, 12)
        latencies.append((time.perf_counter() - started) * 1000)
        ranked: list[str] = []
        for p in passages:
            if p.doc not in ranked:
                ranked.append(p.doc)
        best_scores.append(passages[0].score if passages else 0.0)
        hits1 += ranked[:1] == [expected]
        hits3 += expected in ranked[:3]
        if ranked[:1] != [expected]:
            misses.append(
                {
                    "q": question,
                    "expected": expected,
                    "got": ranked[:3],
                    "score": round(best_scores[-1], 3),
                }
            )
    oos_scores = []
    for question in eval_set.out_of_scope:
        passages = kb.search(question, 1)
        oos_scores.append(passages[0].score if passages else 0.0)
    n = len(eval_set.questions)
    calibrated = calibrate(best_scores, oos_scores)
    latencies.sort()
    return {
        "n": n,
        "hit_at_1": round(hits1 / n, 3),
        "hit_at_3": round(hits3 / n, 3),
        "out_of_scope_n": len(oos_scores),
        "threshold": _rates(kb.threshold, best_scores, oos_scores),
        "calibrated_threshold": _rates(calibrated, best_scores, oos_scores),
        "score_in_scope": _summary(best_scores),
        "score_out_of_scope": _summary(oos_scores) if oos_scores else None,
        "latency_ms": {
            "p50": round(latencies[n // 2], 2),
            "p95": round(latencies[min(n - 1, int(n * 0.95))], 2),
        },
        "misses": misses,
    }


def _summary(scores: Sequence[float]) -> dict[str, float]:
    ordered = sorted(scores)
    return {
        "min": round(ordered[0], 3),
        "median": round(statistics.median(ordered), 3),
        "max": round(ordered[-1], 3),
    }
