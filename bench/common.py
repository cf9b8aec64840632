"""Helpers shared by the benchmarks: machine facts, percentiles, per-process CPU, result files.

Benchmarks print figures and write JSON under `bench/results/`; they never assert timings.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- statistics --------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary_ms(seconds: Sequence[float], digits: int = 1) -> dict[str, float | int | None]:
    """n, mean, p50, p95, p99 and max of latencies given in seconds, reported in milliseconds
    rounded to `digits` decimals."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000.0, digits)

    return {
        "n": len(seconds),
        "mean_ms": ms(sum(seconds) / len(seconds)) if seconds else None,
        "p50_ms": ms(percentile(seconds, 50)),
        "p95_ms": ms(percentile(seconds, 95)),
        "p99_ms": ms(percentile(seconds, 99)),
        "max_ms": ms(max(seconds)) if seconds else None,
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


# --- CPU time of process groups (the stack's processes each lead their own session) ------------
def process_group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group `pgid`."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                raw = handle.read().decode()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: split after the last ')'
        fields = raw[raw.rfind(")") + 2 :].split()
        # fields[0] is field 3 (state); pgrp is field 5, utime 14, stime 15
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


class CpuMeter:
    """CPU seconds used by named process groups (and this process) between two snapshots."""

    def __init__(self, groups: dict[str, int]) -> None:
        self.groups = groups
        self._start: dict[str, float] = {}
        self._wall = 0.0

    def _snapshot(self) -> dict[str, float]:
        values = {name: process_group_cpu_s(pgid) for name, pgid in self.groups.items()}
        times = os.times()
        values["bench_client"] = times.user + times.system
        return values

    def start(self) -> None:
        self._start = self._snapshot()
        self._wall = time.monotonic()

    def stop(self) -> dict[str, Any]:
        end = self._snapshot()
        wall = time.monotonic() - self._wall
        used = {name: end[name] - self._start.get(name, 0.0) for name in end}
        return {
            "wall_s": round(wall, 2),
            "cpu_s": {name: round(value, 2) for name, value in used.items()},
            # 1.0 = one core busy for the whole window
            "cores_busy": {
                name: round(value / wall, 2) if wall else None for name, value in used.items()
            },
        }


# --- machine and software facts ------------------------------------------------------------------
def _run(argv: list[str]) -> str | None:
    try:
        result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _versions(python: str, packages: Iterable[str]) -> dict[str, str | None]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {'python': sys.version.split()[0]}\n"
        f"for name in {list(packages)!r}:\n"
        "    try:\n"
        "        out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError:\n"
        "        out[name] = None\n"
        "print(json.dumps(out))\n"
    )
    raw = _run([python, "-c", code])
    return json.loads(raw) if raw else {"python": None}


def machine_info() -> dict[str, Any]:
    commit = _run(["git", "rev-parse", "HEAD"])
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "mem_total_gib": _mem_total_gib(),
        "loadavg_at_start": list(os.getloadavg()),
        "git_commit": commit,
        "git_dirty": bool(dirty) if dirty is not None else None,
        "app_venv": _versions(
            sys.executable, ["aiohttp", "rasa-sdk", "SQLAlchemy", "sqlmodel", "pydantic"]
        ),
        "rasa_venv": _versions(str(RASA_PYTHON), ["rasa", "tensorflow", "SQLAlchemy", "sanic"])
        if RASA_PYTHON.exists()
        else None,
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    return path


def fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"
