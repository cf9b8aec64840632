"""A Rasa outage loses nothing: the customer is told, the message waits in the inbox and is
answered once Rasa is back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ensure_model
from tests.live_stack import ROOT, Stack, post_json, start_stack, wait_http

pytestmark = pytest.mark.rasa


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ensure_model()
    live = start_stack(Path(tmp_path_factory.mktemp("outage")))
    yield live
    live.stop()


def test_message_sent_while_rasa_is_down_is_answered_later(own_stack: Stack) -> None:
    rasa = own_stack.processes[0]
    port = own_stack.rasa_ports[0]
    os.killpg(rasa.pid, signal.SIGTERM)
    rasa.wait(timeout=30)

    session = "outage-session-1"
    status, body = post_json(
        f"{own_stack.base_url}/api/v1/chat", {"session": session, "text": "hello"}
    )
    assert status == 503
    assert "kept your message" in body["messages"][0]["text"]

    log = own_stack.data_dir / "rasa-restart.out"
    restarted = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "rasa", "--port", str(port)],
        cwd=ROOT,
        env=own_stack.env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    own_stack.processes[0] = restarted
    wait_http(f"http://127.0.0.1:{port}/status", 300, restarted, log)

    deadline = time.monotonic() + 60
    texts: list[str] = []
    while time.monotonic() < deadline:
        url = f"{own_stack.base_url}/api/v1/sessions/{session}/messages"
        with urllib.request.urlopen(url) as response:
            texts = [m["text"] or "" for m in json.loads(response.read())["messages"]]
        if any("Northwind Threads assistant" in t for t in texts):
            break
        time.sleep(1)
    assert any("Northwind Threads assistant" in t for t in texts), texts
    assert texts[0] == "hello"
