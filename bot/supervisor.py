"""Run the shop's processes (Rasa, vision service, app) together: start in dependency order,
wait for health, stream their output, restart crashes, stop everything cleanly.

    sup = Supervisor([ChildSpec("rasa", [...], health_url="http://127.0.0.1:5005/"),
                      ChildSpec("app", [...], depends_on=("rasa",))], on_ready=announce)
    exit_code = await sup.run()   # until SIGINT/SIGTERM, `await sup.stop()` or a give-up
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp

_OWN_NAME = "supervisor"
_COLOURS = (36, 33, 32, 35, 34, 31, 96, 93, 92, 95, 94, 91)  # ANSI foreground codes
_MAX_LINE = 65536


@dataclass(frozen=True)
class ChildSpec:
    """One supervised process. `env` is merged over os.environ; without `health_url` the
    child counts as healthy as soon as it has started."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    cwd: Path | None = None
    health_url: str | None = None
    health_timeout_s: float = 120.0
    restart: bool = True
    depends_on: tuple[str, ...] = ()
    max_restarts: int = 5
    restart_window_s: float = 300.0


class _GiveUp(Exception):
    """A child failed in a way that restarting will not (or may not) fix."""


@dataclass
class _Child:
    spec: ChildSpec
    prefix: str
    healthy: asyncio.Event
    proc: asyncio.subprocess.Process | None = None
    pump: asyncio.Task[None] | None = None
    ever_healthy: bool = False


def start_order(specs: Iterable[ChildSpec]) -> list[ChildSpec]:
    """Specs ordered so that each comes after its dependencies (stable otherwise)."""
    pending = list(specs)
    names = [s.name for s in pending]
    if len(set(names)) != len(names):
        raise ValueError(f"child names must be unique: {names}")
    for s in pending:
        if not s.argv:
            raise ValueError(f"child {s.name!r} has an empty argv")
        if unknown := set(s.depends_on) - set(names):
            raise ValueError(f"child {s.name!r} depends on unknown {sorted(unknown)}")
    ordered: list[ChildSpec] = []
    while pending:
        placed = {s.name for s in ordered}
        ready = next((s for s in pending if set(s.depends_on) <= placed), None)
        if ready is None:
            raise ValueError(f"dependency cycle among {[s.name for s in pending]}")
        ordered.append(ready)
        pending.remove(ready)
    return ordered


class Supervisor:
    """Supervises `specs`; see the module docstring. `run()` returns 0 after a requested stop,
    1 when a child gave up (too many restarts, or a `restart=False` child failed)."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        log: TextIO = sys.stdout,
        colour: bool | None = None,
        on_ready: Callable[[], Awaitable[None]] | None = None,
        stop_timeout_s: float = 10.0,
        health_interval_s: float = 0.5,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
    ) -> None:
        order = start_order(specs)
        self._log = log
        if colour is None:
            colour = log.isatty() and "NO_COLOR" not in os.environ
        width = max(len(n) for n in [_OWN_NAME, *(s.name for s in order)])
        self._own_prefix = f"{_OWN_NAME:<{width}} | "
        self._children = {
            s.name: _Child(
                s,
                _paint(f"{s.name:<{width}} | ", _COLOURS[i % len(_COLOURS)], colour),
                asyncio.Event(),
            )
            for i, s in enumerate(order)
        }
        self._on_ready = on_ready
        self._stop_timeout_s = stop_timeout_s
        self._health_interval_s = health_interval_s
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._stop_requested = asyncio.Event()
        self._stopped = asyncio.Event()
        self._hurry = False  # a second signal: kill without waiting
        self._failure: str | None = None
        self._announced = False
        self._session: aiohttp.ClientSession | None = None
        self._started = False
        self._ready_task: asyncio.Task[None] | None = None

    async def run(self) -> int:
        if self._started:
            raise RuntimeError("a Supervisor runs once; make a new one")
        self._started = True
        restore_signals = self._install_signal_handlers()
        tasks: list[asyncio.Task[None]] = []
        try:
            async with aiohttp.ClientSession() as self._session:
                tasks = [asyncio.create_task(self._guard(c)) for c in self._children.values()]
                stop_wait = asyncio.create_task(self._stop_requested.wait())
                pending: set[asyncio.Future[Any]] = set(tasks)
                try:
                    while pending and not self._stop_requested.is_set():
                        _, pending = await asyncio.wait(
                            pending | {stop_wait}, return_when=asyncio.FIRST_COMPLETED
                        )
                        pending.discard(stop_wait)
                finally:
                    for t in [*tasks, stop_wait, self._ready_task]:
                        if t is not None:
                            t.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            try:
                for c in reversed(self._children.values()):
                    await self._stop_child(c, self._stop_timeout_s)
            except BaseException:
                self._kill_all_now()  # cancelled again while stopping: no orphans regardless
                raise
            finally:
                restore_signals()
                self._stopped.set()
        if self._failure:
            self._say(f"stopped: {self._failure}")
            return 1
        self._say("all processes stopped")
        return 0

    async def stop(self) -> None:
        """Ask `run()` to stop every child; returns once they are gone."""
        self._stop_requested.set()
        if self._started:
            await self._stopped.wait()

    # --- one child -------------------------------------------------------------------

    async def _guard(self, child: _Child) -> None:
        try:
            await self._supervise(child)
        except _GiveUp as exc:
            self._fail(str(exc))
        except Exception as exc:  # spawn errors (missing binary, bad cwd) and bugs
            self._fail(f"{child.spec.name}: {type(exc).__name__}: {exc}")

    async def _supervise(self, child: _Child) -> None:
        spec, loop = child.spec, asyncio.get_running_loop()
        for dep in spec.depends_on:
            await self._children[dep].healthy.wait()
        restarts: deque[float] = deque()
        while True:
            proc = await self._spawn(child)
            code: int | None = None
            if await self._wait_healthy(child, proc):
                code = await self._wait_exit(proc)
                self._say(f"{spec.name} exited ({_describe(code)})")
            if spec.restart or code != 0:  # a finished one-shot job stays healthy for dependents
                child.healthy.clear()
            await self._stop_child(child, self._stop_timeout_s)
            if not spec.restart:
                if code == 0:
                    return
                raise _GiveUp(f"{spec.name} failed and is not restarted")
            now = loop.time()
            while restarts and restarts[0] < now - spec.restart_window_s:
                restarts.popleft()
            if len(restarts) >= spec.max_restarts:
                raise _GiveUp(
                    f"{spec.name} crashed {len(restarts) + 1} times within "
                    f"{spec.restart_window_s:g}s; giving up"
                )
            delay = min(self._backoff[1], self._backoff[0] * 2 ** len(restarts))
            restarts.append(now)
            self._say(
                f"restarting {spec.name} in {delay:g}s "
                f"(restart {len(restarts)}/{spec.max_restarts})"
            )
            await asyncio.sleep(delay)

    async def _spawn(self, child: _Child) -> asyncio.subprocess.Process:
        spec = child.spec
        # Python children block-buffer a pipe; unbuffered lets their lines stream live.
        env = {"PYTHONUNBUFFERED": "1", **os.environ, **(spec.env or {})}
        self._say(f"starting {spec.name}: {shlex.join(spec.argv)}")
        proc = await asyncio.create_subprocess_exec(
            *spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=spec.cwd,
            start_new_session=True,
        )
        child.proc = proc
        assert proc.stdout is not None
        child.pump = asyncio.create_task(self._pump(child.prefix, proc.stdout))
        return proc

    async def _wait_healthy(self, child: _Child, proc: asyncio.subprocess.Process) -> bool:
        spec, url = child.spec, child.spec.health_url
        deadline = asyncio.get_running_loop().time() + spec.health_timeout_s
        # Without a health URL a started child is healthy, even if it already finished.
        while url is not None and not (proc.returncode is None and await self._probe(url)):
            if proc.returncode is not None:
                self._say(
                    f"{spec.name} exited before it was healthy ({_describe(proc.returncode)})"
                )
                return False
            if asyncio.get_running_loop().time() >= deadline:
                self._say(f"{spec.name} not healthy after {spec.health_timeout_s:g}s")
                return False
            await self._wait_exit(proc, self._health_interval_s)
        child.healthy.set()
        self._note_healthy(child)
        return True

    async def _probe(self, url: str) -> bool:
        assert self._session is not None
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                return 200 <= resp.status < 300
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    def _note_healthy(self, child: _Child) -> None:
        again = child.ever_healthy
        child.ever_healthy = True
        self._say(f"{child.spec.name} is healthy{' again' if again else ''}")
        if not self._announced and all(c.ever_healthy for c in self._children.values()):
            self._announced = True
            self._say(f"all {len(self._children)} processes are healthy: ready")
            if self._on_ready is not None:
                self._ready_task = asyncio.create_task(self._call_on_ready(self._on_ready))

    async def _call_on_ready(self, on_ready: Callable[[], Awaitable[None]]) -> None:
        try:
            await on_ready()
        except Exception as exc:
            self._fail(f"on_ready failed: {type(exc).__name__}: {exc}")

    # --- stopping ----------------------------------------------------------------------

    async def _stop_child(self, child: _Child, timeout_s: float) -> None:
        proc = child.proc
        if proc is None:
            return
        if proc.returncode is None:
            self._say(f"stopping {child.spec.name} (pid {proc.pid})")
            _signal_group(proc.pid, signal.SIGTERM)
            if await self._wait_exit(proc, timeout_s) is None:
                self._say(f"{child.spec.name} still running after {timeout_s:g}s; killing it")
        # The group leader is gone (or hung): whatever is left in its group is an orphan.
        _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await self._wait_exit(proc, 5.0)
        if child.pump is not None:  # the pipe closes once the whole group is dead
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(child.pump), 1.0)
            child.pump.cancel()
        child.proc = child.pump = None

    def _kill_all_now(self) -> None:
        for child in self._children.values():
            if child.proc is not None:
                _signal_group(child.proc.pid, signal.SIGKILL)

    async def _wait_exit(
        self, proc: asyncio.subprocess.Process, timeout_s: float | None = None
    ) -> int | None:
        """The exit code, or None on timeout. Polls: on Python 3.11 `Process.wait()` also
        waits for the output pipe to close, which a grandchild may hold open forever."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while proc.returncode is None:
            if deadline is not None and (loop.time() >= deadline or self._hurry):
                return None
            await asyncio.sleep(0.05)
        return proc.returncode

    def _install_signal_handlers(self) -> Callable[[], None]:
        loop = asyncio.get_running_loop()
        installed: list[tuple[int, object]] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread, or no signal support: stop() still works
            installed.append((sig, previous))

        def restore() -> None:
            for sig, previous in installed:
                loop.remove_signal_handler(sig)
                if callable(previous) or isinstance(previous, int):
                    signal.signal(sig, previous)

        return restore

    def _on_signal(self, sig: int) -> None:
        if self._stop_requested.is_set():
            self._hurry = True
            self._say(f"{signal.Signals(sig).name} again: killing without waiting")
        else:
            self._say(f"{signal.Signals(sig).name} received: stopping")
            self._stop_requested.set()

    def _fail(self, reason: str) -> None:
        self._say(reason)
        self._failure = self._failure or reason
        self._stop_requested.set()

    # --- output ------------------------------------------------------------------------

    async def _pump(self, prefix: str, stream: asyncio.StreamReader) -> None:
        pending = b""
        while chunk := await stream.read(_MAX_LINE):
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) >= _MAX_LINE:  # a runaway line: show it in pieces
                lines, pending = [*lines, pending], b""
            for line in lines:
                self._write(prefix, line.decode(errors="replace").rstrip("\r"))
        if pending:
            self._write(prefix, pending.decode(errors="replace").rstrip("\r"))

    def _say(self, text: str) -> None:
        self._write(self._own_prefix, text)

    def _write(self, prefix: str, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed log must not block children
            self._log.write(f"{prefix}{text}\n")
            self._log.flush()


def _paint(text: str, code: int, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour else text


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _describe(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
