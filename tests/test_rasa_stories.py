"""`rasa test core` on the dialogue test stories: a failed story fails the run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.rasa_runtime import rasa_env, rasa_executable
from tests.conftest import ensure_model
from tests.live_stack import MODEL_DIR, ROOT

pytestmark = pytest.mark.rasa


def test_dialogue_test_stories_pass(tmp_path: Path) -> None:
    ensure_model()
    result = subprocess.run(
        [
            rasa_executable(),
            "test",
            "core",
            "--model",
            str(MODEL_DIR),
            "--stories",
            "tests/test_stories.yml",
            "--out",
            str(tmp_path),
            "--fail-on-prediction-errors",
            "--no-plot",
        ],
        cwd=ROOT,
        env={**os.environ, **rasa_env()},
        capture_output=True,
        text=True,
        timeout=600,
    )
    failed = tmp_path / "failed_test_stories.yml"
    details = failed.read_text() if failed.exists() else ""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + details
    assert "None of the test stories failed" in details
    stories = yaml.safe_load((ROOT / "tests" / "test_stories.yml").read_text())["stories"]
    output = result.stdout + result.stderr
    assert f"Correct:          {len(stories)} / {len(stories)}" in output, output[-3000:]
