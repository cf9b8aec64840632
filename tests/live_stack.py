"""Start the real assistant for tests: a real Rasa server process and the real app process.

Each stack gets its own data dir (SQLite shop with the demo data, SQLite tracker store) and free
ports on 127.0.0.1; everything is stopped when the test session ends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "models"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout_s: float, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited early:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 300:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not healthy after {timeout_s}s:\n{log.read_text()[-4000:]}")


@dataclass
class Stack:
    data_dir: Path
    app_port: int
    rasa_ports: list[int]
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    def bot(self, *args: str) -> str:
        """Run the `bot` CLI against this stack's database and return its stdout."""
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def orders(self) -> list[dict[str, Any]]:
        return list(json.loads(self.bot("orders", "list", "--json")))

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def start_stack(
    data_dir: Path, rasa_processes: int = 1, extra_env: dict[str, str] | None = None
) -> Stack:
    app_port = free_port()
    rasa_ports = [free_port() for _ in range(rasa_processes)]
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "APP_PORT": str(app_port),
        "APP_HOST": "127.0.0.1",
        "RASA_URLS": ",".join(f"http://127.0.0.1:{p}" for p in rasa_ports),
        "RASA_MODEL_DIR": str(MODEL_DIR),
        "HF_HUB_OFFLINE": "1",
        "OUTBOX_RETRY_SECONDS": "1",
        # no vision service here (photo search answers "briefly unavailable"); never a real one
        # that happens to run on this machine
        "VISION_URL": f"http://127.0.0.1:{free_port()}",
        **(extra_env or {}),
    }
    stack = Stack(data_dir, app_port, rasa_ports, env)
    stack.bot("demo-data", "--no-index")  # photo search has no vision service in these stacks
    try:
        for port in rasa_ports:
            log = data_dir / f"rasa-{port}.out"
            process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "rasa", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            stack.processes.append(process)
        app_log = data_dir / "app.out"
        app = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve"],
            cwd=ROOT,
            env=env,
            stdout=app_log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stack.processes.append(app)
        wait_http(f"{stack.base_url}/healthz", 60, app, app_log)
        for port, process in zip(rasa_ports, stack.processes, strict=False):
            wait_http(
                f"http://127.0.0.1:{port}/status", 300, process, data_dir / f"rasa-{port}.out"
            )
    except BaseException:
        stack.stop()
        raise
    return stack


@dataclass
class Chat:
    """A customer talking to the assistant over `POST /api/v1/chat`."""

    base_url: str
    session: str

    def send(
        self, text: str | None = None, payload: str | None = None, **extra: Any
    ) -> list[dict[str, Any]]:
        status, body = post_json(
            f"{self.base_url}/api/v1/chat",
            {
                "session": self.session,
                **({"text": text} if text is not None else {}),
                **({"payload": payload} if payload is not None else {}),
                **extra,
            },
        )
        assert status == 200, (status, body)
        return list(body["messages"])

    def say(self, text: str) -> str:
        """Send text and return all bot texts of the answer joined by newlines."""
        return "\n".join(m["text"] or "" for m in self.send(text))

    def press(self, payload: str) -> str:
        return "\n".join(m["text"] or "" for m in self.send(payload=payload))


def post_json(url: str, body: Any, raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
