"""How the vision service is started: glibc malloc tuning must be in its environment at exec.

glibc hands PyTorch's large activation buffers back to the OS after every forward pass and maps
them again on the next; raising these thresholds keeps them in the heap (measured 2-3x faster
CPU inference here, see bench/vision_bench.py). glibc reads them once, at process start, so a
supervisor passes `service_environment()` and `python -m vision.service` re-executes itself
when they are missing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

MALLOC_TUNING: dict[str, str] = {
    # 1 GiB: batched activations (tens of MB each) come from the heap instead of fresh mmaps;
    # a fixed value also stops glibc's dynamic threshold. 32 MiB measured slower at batch 8.
    "MALLOC_MMAP_THRESHOLD_": str(1024 * 1024 * 1024),
    # Do not return freed heap to the OS unless more than 1 GiB sits free at the top.
    "MALLOC_TRIM_THRESHOLD_": str(1024 * 1024 * 1024),
    # Grow the heap in 256 MiB steps instead of page by page.
    "MALLOC_TOP_PAD_": str(256 * 1024 * 1024),
}
DISABLE_VARIABLE = "VISION_MALLOC_TUNING"  # "0" leaves glibc's defaults (for comparisons)


def service_environment(
    base: Mapping[str, str] | None = None, malloc_tuning: bool = True
) -> dict[str, str]:
    """The environment to start the vision service with (values already set are kept)."""
    env = dict(os.environ if base is None else base)
    if malloc_tuning:
        for key, value in MALLOC_TUNING.items():
            env.setdefault(key, value)
    else:
        env[DISABLE_VARIABLE] = "0"
        for key in MALLOC_TUNING:
            env.pop(key, None)
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def service_command(args: Sequence[str] = (), python: str = sys.executable) -> list[str]:
    """argv for `python -m vision.service ARGS`."""
    return [python, "-m", "vision.service", *args]


def malloc_tuned(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return all(key in env for key in MALLOC_TUNING)


def reexec_with_malloc_tuning(argv: Sequence[str]) -> None:
    """Replace this process with one that has the malloc settings, unless set or disabled."""
    if os.environ.get(DISABLE_VARIABLE) == "0" or malloc_tuned():
        return
    os.execve(sys.executable, service_command(argv), service_environment())
