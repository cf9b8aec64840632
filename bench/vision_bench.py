"""Vision service under load on loopback → bench/results/vision.json (prints figures, no asserts).

For each glibc malloc setting (default, and the launcher's tuned thresholds) it starts
`python -m vision.service` twice — micro-batching on (max batch 8) and forced to batch size 1 —
and sends JPEG bytes at concurrency 1, 8 and 32: images/s and latency p50/p95/p99, decode
included. Forward-only figures (prepared arrays straight into the model, batch 1 and 8) come
from a child process per malloc setting, since glibc reads its settings at process start.

    .venv/bin/python bench/vision_bench.py [--requests 96] [--model efficientnet_lite0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vision.launcher import MALLOC_TUNING, service_command, service_environment  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "vision.json"
PHOTOS = ROOT.parent / "shared" / "datasets" / "clothing" / "images"
CONCURRENCY = (1, 8, 32)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def sample_jpegs(n: int = 64) -> tuple[list[bytes], str]:
    """Real photos when ../shared has them (320 px JPEGs), else drawn 640x480 JPEGs."""
    if PHOTOS.exists():
        return [p.read_bytes() for p in sorted(PHOTOS.glob("*.jpg"))[:n]], f"{PHOTOS} (first {n})"
    import io

    from PIL import Image, ImageDraw

    out = []
    for i in range(n):
        image = Image.new("RGB", (640, 480), (i * 4 % 255, 200, 120))
        ImageDraw.Draw(image).ellipse([40 + i, 60, 500, 400], fill=(200, i * 3 % 255, 40))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=88)
        out.append(buffer.getvalue())
    return out, "drawn 640x480 JPEGs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(url: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"{url}/readyz") as r:
                    if r.status == 200:
                        return dict(await r.json())
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


async def load(url: str, images: list[bytes], concurrency: int, requests: int) -> dict[str, Any]:
    """`requests` POSTs of JPEG bytes from `concurrency` workers; latency per request."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                started = time.perf_counter()
                async with http.post(f"{url}/v1/embed", data=images[i % len(images)]) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                        continue
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": requests,
        "errors": errors,
        "images_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(pct(latencies, 50) * 1000, 1),
        "p95_ms": round(pct(latencies, 95) * 1000, 1),
        "p99_ms": round(pct(latencies, 99) * 1000, 1),
    }


async def run_service(
    model: str, max_batch: int, tuned: bool, images: list[bytes], requests: int
) -> dict[str, Any]:
    port = free_port()
    args = ["--port", str(port), "--model", model, "--max-batch", str(max_batch),
            "--max-queue", "256"]  # fmt: skip
    env = service_environment(malloc_tuning=tuned)
    # its access log goes nowhere: an unread pipe fills up after a few hundred requests and
    # then stalls the service
    process = subprocess.Popen(
        service_command(args),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        ready = await wait_ready(url)
        await load(url, images, 4, 16)  # warm the allocator and the thread pools
        levels = [await load(url, images, c, max(requests, c * 3)) for c in CONCURRENCY]
    finally:
        process.terminate()
        process.wait(30)
    return {"max_batch": max_batch, "model": ready["model"], "device": ready["device"],
            "levels": levels}  # fmt: skip


def forward_child(model: str, seconds: float) -> None:
    """Child: prepared arrays into the model at batch 1 and 8; prints JSON images/s."""
    import numpy as np

    from vision.embedder import ImageEmbedder
    from vision.models import load_model

    embedder = ImageEmbedder(load_model(model))
    images, _ = sample_jpegs(16)
    arrays = [embedder.prepare(data) for data in images]
    decode_started = time.perf_counter()
    for data in images:
        embedder.prepare(data)
    decode_ms = (time.perf_counter() - decode_started) / len(images) * 1000
    out: dict[str, Any] = {"decode_ms_per_image": round(decode_ms, 2)}
    for batch in (1, 8):
        embedder.embed_arrays(arrays[:batch])
        done, times = 0, []
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            t = time.perf_counter()
            embedder.embed_arrays(arrays[:batch])
            times.append(time.perf_counter() - t)
            done += batch
        out[f"batch_{batch}"] = {
            "images_per_s": round(done / (time.perf_counter() - started), 1),
            "ms_per_batch_median": round(statistics.median(times) * 1000, 1),
        }
    print(json.dumps(out), flush=True)
    del np


def forward_only(model: str, tuned: bool, seconds: float) -> dict[str, Any]:
    env = service_environment(malloc_tuning=tuned)
    command = [sys.executable, __file__, "--forward-child", "--model", model,
               "--seconds", str(seconds)]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--requests", type=int, default=96, help="requests per concurrency level")
    parser.add_argument("--seconds", type=float, default=6.0, help="forward-only time per batch")
    parser.add_argument("--forward-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.forward_child:
        forward_child(args.model, args.seconds)
        return
    images, source = sample_jpegs()
    import torch

    report: dict[str, Any] = {
        "benchmark": "vision service on loopback, JPEG bytes in, vectors out",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
            "load_average_at_start": os.getloadavg(),
        },
        "images": source,
        "malloc_tuning": MALLOC_TUNING,
        "runs": {},
    }
    for tuned in (False, True):
        name = "malloc_tuned" if tuned else "malloc_default"
        print(f"[{name}] forward only", flush=True)
        forward = forward_only(args.model, tuned, args.seconds)
        print(f"  {forward}", flush=True)
        services = {}
        for max_batch in (8, 1):
            label = "batching_on" if max_batch > 1 else "batch_size_1"
            services[label] = await run_service(args.model, max_batch, tuned, images, args.requests)
            for level in services[label]["levels"]:
                print(f"  [{label}] {level}", flush=True)
        on, off = services["batching_on"]["levels"], services["batch_size_1"]["levels"]
        report["runs"][name] = {
            "forward_only": forward,
            "service": services,
            "batching_speedup": {
                f"c{a['concurrency']}": ratio(a["images_per_s"], b["images_per_s"])
                for a, b in zip(on, off, strict=True)
            },
        }
    default, tuned_run = report["runs"]["malloc_default"], report["runs"]["malloc_tuned"]
    report["summary"] = {
        "batching_speedup_c32_tuned": tuned_run["batching_speedup"]["c32"],
        "malloc_speedup_batch1_c1": ratio(
            tuned_run["service"]["batch_size_1"]["levels"][0]["images_per_s"],
            default["service"]["batch_size_1"]["levels"][0]["images_per_s"],
        ),
        "malloc_speedup_forward_batch8": ratio(
            tuned_run["forward_only"]["batch_8"]["images_per_s"],
            default["forward_only"]["batch_8"]["images_per_s"],
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report["summary"]))
    print(f"written {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
