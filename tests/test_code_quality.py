"""The code base stays ruff- and mypy-clean (run in the same suite as CI)."""

from __future__ import annotations

import subprocess
import sys

from tests.live_stack import ROOT


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    result = run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_libraries_never_import_the_app() -> None:
    """DESIGN.md: vision, recsys and knowledge never import bot or actions."""
    offenders = []
    for library in ("vision", "recsys", "knowledge"):
        for path in (ROOT / library).rglob("*.py"):
            for line in path.read_text().splitlines():
                stripped = line.strip()
                app_modules = ("import bot", "from bot", "import actions", "from actions")
                if stripped.startswith(app_modules):
                    offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert offenders == []
