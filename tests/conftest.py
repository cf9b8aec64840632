"""Shared fixtures: the live assistant (real Rasa + real app) for integration tests."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_stack import MODEL_DIR, ROOT, Chat, Stack, start_stack

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def ensure_model() -> None:
    if not any(MODEL_DIR.glob("*.tar.gz")):
        import subprocess
        import sys

        subprocess.run([sys.executable, "-m", "bot.cli", "train"], cwd=ROOT, check=True)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ensure_model()
    live = start_stack(Path(tmp_path_factory.mktemp("stack")))
    yield live
    live.stop()


@pytest.fixture
def chat(stack: Stack) -> Chat:
    return Chat(stack.base_url, "t" + secrets.token_urlsafe(12))
