"""The process supervisor against real child processes on loopback."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.supervisor import ChildSpec, Supervisor, start_order

pytestmark = pytest.mark.timeout(30)

PY = sys.executable
SLEEPER = "import os, time; print('child-pid', os.getpid()); time.sleep(60)"

# A health endpoint on 127.0.0.1:<argv[1]>. With argv[2] (a marker path) it exits with code 3
# right after answering its first health check, but only on the run that creates the marker.
SERVER = r"""
import http.server, os, sys, threading
port = int(sys.argv[1])
crash_once = len(sys.argv) > 2 and not os.path.exists(sys.argv[2])
if crash_once:
    open(sys.argv[2], "w").close()
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
        if crash_once:
            threading.Timer(0.05, os._exit, (3,)).start()
    def log_message(self, *args):
        pass
print(f"listening on {port} child-pid {os.getpid()}")
print("a line on stderr", file=sys.stderr)
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server(name: str, port: int, *extra: str, depends_on: tuple[str, ...] = ()) -> ChildSpec:
    return ChildSpec(
        name,
        [PY, "-c", SERVER, str(port), *extra],
        depends_on=depends_on,
        health_url=f"http://127.0.0.1:{port}/health",
        health_timeout_s=10,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for a reaper that is not us counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def pids(log: io.StringIO, word: str) -> list[int]:
    return [int(p) for p in re.findall(rf"{word} (\d+)", log.getvalue())]


async def test_dependent_starts_after_its_dependency_is_healthy() -> None:
    log, ready = io.StringIO(), asyncio.Event()

    async def on_ready() -> None:
        ready.set()

    sup = Supervisor(
        [server("web", free_port(), depends_on=("rasa",)), server("rasa", free_port())],
        log=log,
        on_ready=on_ready,
    )
    run = asyncio.create_task(sup.run())
    await asyncio.wait_for(ready.wait(), 15)
    await asyncio.wait_for(sup.stop(), 15)
    assert await asyncio.wait_for(run, 5) == 0

    text = log.getvalue()
    assert text.index("rasa is healthy") < text.index("starting web") < text.index("web is healthy")
    assert text.index("web is healthy") < text.index("all 2 processes are healthy")
    assert text.index("stopping web") < text.index("stopping rasa")  # reverse order
    assert re.search(r"^rasa {7}\| listening on \d+", text, re.M)
    assert re.search(r"^web {8}\| a line on stderr", text, re.M)
    assert re.search(r"^supervisor \| all processes stopped", text, re.M)


async def test_crash_after_healthy_is_restarted(tmp_path: Path) -> None:
    log = io.StringIO()
    sup = Supervisor(
        [server("api", free_port(), str(tmp_path / "crashed"))], log=log, backoff_initial_s=0.1
    )
    run = asyncio.create_task(sup.run())
    await until(lambda: "api is healthy again" in log.getvalue())
    await asyncio.wait_for(sup.stop(), 15)
    assert await asyncio.wait_for(run, 5) == 0

    text = log.getvalue()
    assert "api exited (exit code 3)" in text
    assert "restarting api in 0.1s (restart 1/5)" in text
    first, second = pids(log, "child-pid")
    assert first != second and not alive(second)


async def test_crash_loop_gives_up_after_max_restarts() -> None:
    log = io.StringIO()
    crasher = ChildSpec(
        "flaky",
        [PY, "-c", "print('boom'); raise SystemExit(2)"],
        health_url=f"http://127.0.0.1:{free_port()}/",
        max_restarts=2,
    )
    sleeper = ChildSpec("steady", [PY, "-c", SLEEPER])
    sup = Supervisor([sleeper, crasher], log=log, backoff_initial_s=0.1)
    assert await asyncio.wait_for(sup.run(), 15) == 1

    text = log.getvalue()
    assert text.count("flaky      | boom") == 3  # the first start and two restarts
    assert "flaky exited before it was healthy (exit code 2)" in text
    assert "restarting flaky in 0.1s" in text and "restarting flaky in 0.2s" in text
    assert "flaky crashed 3 times within 300s; giving up" in text
    assert "all 2 processes are healthy" not in text
    assert not alive(pids(log, "child-pid")[0])


GRANDPARENT = r"""
import os, subprocess, sys, time
# The grandchild ignores SIGTERM and holds our stdout open after we exit.
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
print("child-pid", os.getpid(), "grandchild", child.pid)
time.sleep(60)
"""


async def test_stop_ends_children_and_grandchildren() -> None:
    log = io.StringIO()
    sup = Supervisor(
        [ChildSpec("parent", [PY, "-c", GRANDPARENT]), ChildSpec("plain", [PY, "-c", SLEEPER])],
        log=log,
        stop_timeout_s=5,
    )
    run = asyncio.create_task(sup.run())
    await until(lambda: len(pids(log, "child-pid")) == 2 and bool(pids(log, "grandchild")))
    everyone = pids(log, "child-pid") + pids(log, "grandchild")
    assert all(alive(p) for p in everyone)

    started = time.monotonic()
    await asyncio.wait_for(sup.stop(), 15)
    assert await asyncio.wait_for(run, 5) == 0
    assert time.monotonic() - started < 4  # no waiting on the grandchild's open pipe
    await until(lambda: not any(alive(p) for p in everyone), 3)


async def test_child_ignoring_sigterm_is_killed_after_stop_timeout() -> None:
    log = io.StringIO()
    stubborn = (
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('child-pid', os.getpid()); time.sleep(60)"
    )
    sup = Supervisor([ChildSpec("stubborn", [PY, "-c", stubborn])], log=log, stop_timeout_s=1)
    run = asyncio.create_task(sup.run())
    await until(lambda: bool(pids(log, "child-pid")))

    started = time.monotonic()
    await asyncio.wait_for(sup.stop(), 10)
    elapsed = time.monotonic() - started
    assert await asyncio.wait_for(run, 5) == 0
    assert 0.9 < elapsed < 4
    assert "stubborn still running after 1s; killing it" in log.getvalue()
    await until(lambda: not alive(pids(log, "child-pid")[0]), 3)


async def test_sigterm_stops_and_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    log, ready = io.StringIO(), asyncio.Event()

    async def on_ready() -> None:
        ready.set()

    sup = Supervisor([server("api", free_port())], log=log, on_ready=on_ready)
    run = asyncio.create_task(sup.run())
    await asyncio.wait_for(ready.wait(), 15)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(run, 15) == 0
    assert "SIGTERM received: stopping" in log.getvalue()
    assert signal.getsignal(signal.SIGTERM) == before
    assert not alive(pids(log, "child-pid")[0])


async def test_cancelled_run_leaves_no_orphans() -> None:
    log = io.StringIO()
    sup = Supervisor([ChildSpec("sleepy", [PY, "-c", SLEEPER])], log=log)
    run = asyncio.create_task(sup.run())
    await until(lambda: bool(pids(log, "child-pid")))
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run, 15)
    await until(lambda: not alive(pids(log, "child-pid")[0]), 3)


async def test_one_shot_job_then_dependent_and_a_missing_binary() -> None:
    log = io.StringIO()
    sup = Supervisor(
        [
            ChildSpec("migrate", [PY, "-c", "print('migrated')"], restart=False),
            server("app", free_port(), depends_on=("migrate",)),
            ChildSpec("broken", ["/nonexistent/binary"], depends_on=("app",)),
        ],
        log=log,
    )
    assert await asyncio.wait_for(sup.run(), 15) == 1
    text = log.getvalue()
    assert "migrate    | migrated" in text and "app is healthy" in text
    assert "broken: FileNotFoundError" in text
    assert not alive(pids(log, "child-pid")[0])


async def test_on_ready_may_stop_the_supervisor() -> None:
    log = io.StringIO()

    async def on_ready() -> None:
        await sup.stop()

    sup = Supervisor([server("api", free_port())], log=log, on_ready=on_ready)
    assert await asyncio.wait_for(sup.run(), 15) == 0
    await until(lambda: not alive(pids(log, "child-pid")[0]), 3)


def test_start_order_and_validation() -> None:
    a, b, c = (
        ChildSpec(n, ["true"], depends_on=d) for n, d in [("a", ("c",)), ("b", ()), ("c", ("b",))]
    )
    assert [s.name for s in start_order([a, b, c])] == ["b", "c", "a"]
    with pytest.raises(ValueError, match="cycle"):
        start_order(
            [
                ChildSpec("x", ["true"], depends_on=("y",)),
                ChildSpec("y", ["true"], depends_on=("x",)),
            ]
        )
    with pytest.raises(ValueError, match="unknown"):
        Supervisor([ChildSpec("x", ["true"], depends_on=("nope",))])
    with pytest.raises(ValueError, match="unique"):
        Supervisor([ChildSpec("x", ["true"]), ChildSpec("x", ["true"])])


def test_prefixes_are_coloured_only_when_asked() -> None:
    async def once(colour: bool) -> str:
        log = io.StringIO()
        spec = ChildSpec("echo", [PY, "-c", "print('hi')"], restart=False)
        assert await asyncio.wait_for(Supervisor([spec], log=log, colour=colour).run(), 10) == 0
        return log.getvalue()

    assert "\x1b[36mecho       | \x1b[0mhi" in asyncio.run(once(True))
    assert "echo       | hi" in asyncio.run(once(False))
