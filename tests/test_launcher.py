"""`bot run`: starts Rasa and the app, answers, stops everything on Ctrl-C; refuses to run when
Rasa is not writing to the configured tracker database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ensure_model
from tests.live_stack import MODEL_DIR, ROOT, Chat, free_port

pytestmark = pytest.mark.rasa


def launch(data_dir: Path, **extra: str) -> tuple[subprocess.Popen[str], int, dict[str, str]]:
    app_port, rasa_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "APP_PORT": str(app_port),
        "RASA_URLS": f"http://127.0.0.1:{rasa_port}",
        "RASA_MODEL_DIR": str(MODEL_DIR),
        **extra,
    }
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo-data", "--no-index"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return process, app_port, env


def read_until(process: subprocess.Popen[str], marker: str, timeout_s: float) -> str:
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} not printed:\n{''.join(seen)[-4000:]}")


def test_bot_run_serves_the_chat_and_stops_cleanly(tmp_path: Path) -> None:
    ensure_model()
    process, app_port, _ = launch(tmp_path)
    try:
        output = read_until(process, "Open the web chat", 300)
        assert "rasa       |" in output and "app        |" in output
        assert "vision     | " in output  # `bot run` starts the vision service too
        assert f"http://127.0.0.1:{app_port}/" in output
        answer = Chat(f"http://127.0.0.1:{app_port}", "launcher-test-1").say("hello")
        assert "Northwind Threads" in answer
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_bot_run_refuses_a_tracker_store_rasa_cannot_use(tmp_path: Path) -> None:
    ensure_model()
    # Rasa cannot open this database, silently falls back to memory — we must notice and stop.
    broken = "postgresql://nobody@127.0.0.1:1/nowhere"
    process, _, _ = launch(tmp_path, RASA_TRACKER_DB=broken)
    try:
        output = read_until(process, "refusing to run", 300)
        assert "tracker" in output.lower()
        assert process.wait(timeout=60) == 3
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
