"""Rasa training time, NLU cross-validation and held-out accuracy, measured in one run.

    .venv/bin/python bench/rasa_training.py [--folds 3]

Writes bench/results/rasa_training.json and keeps Rasa's cross-validation reports under
bench/results/nlu_cross_validation/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.rasa_runtime import rasa_env, rasa_executable  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def rasa(*args: str, cwd: Path = ROOT) -> float:
    started = time.perf_counter()
    subprocess.run(
        [rasa_executable(), *args],
        cwd=cwd,
        env={**os.environ, **rasa_env()},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def intent_summary(report_path: Path) -> dict[str, Any]:
    report = json.loads(report_path.read_text())
    per_intent = {
        name: round(values["f1-score"], 3)
        for name, values in report.items()
        if isinstance(values, dict)
        and "f1-score" in values
        and name not in ("macro avg", "weighted avg", "micro avg")
    }
    return {
        "accuracy": round(
            report.get("accuracy", report.get("micro avg", {}).get("f1-score", 0)), 4
        ),
        "macro_f1": round(report["macro avg"]["f1-score"], 4),
        "weighted_f1": round(report["weighted avg"]["f1-score"], 4),
        "worst_intents": dict(sorted(per_intent.items(), key=lambda kv: kv[1])[:5]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        train_s = rasa(
            "train",
            "--config",
            "config.yml",
            "--domain",
            "domain.yml",
            "--data",
            "nlu_data",
            "--out",
            str(out / "models"),
            "--force",
        )
        heldout_dir = out / "heldout"
        rasa(
            "test",
            "nlu",
            "--model",
            str(out / "models"),
            "--nlu",
            "tests/nlu_heldout.yml",
            "--out",
            str(heldout_dir),
            "--no-plot",
        )
        heldout = intent_summary(heldout_dir / "intent_report.json")

        cv_dir = RESULTS / "nlu_cross_validation"
        shutil.rmtree(cv_dir, ignore_errors=True)
        cv_s = rasa(
            "test",
            "nlu",
            "--nlu",
            "nlu_data/nlu.yml",
            "--config",
            "config.yml",
            "--cross-validation",
            "--folds",
            str(args.folds),
            "--out",
            str(cv_dir),
            "--no-plot",
        )
        cross_validation = intent_summary(cv_dir / "intent_report.json")

    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "train_seconds": round(train_s, 1),
        "heldout_file": "tests/nlu_heldout.yml",
        "heldout": heldout,
        "cross_validation": {"folds": args.folds, "seconds": round(cv_s, 1), **cross_validation},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rasa_training.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
