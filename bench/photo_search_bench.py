"""Photo search in chat, end to end (upload → cards) on the demo catalogue → bench/results/.

Starts the vision service the way `bot run` does (its own process, `python -m vision.service`
with the launcher's malloc settings), indexes the demo catalogue through it, serves the app's
photo path (web channel upload, router, action endpoint, actions, embedded Qdrant Edge) and times
`POST /api/v1/sessions/{session}/photos` until its response carries the product cards. Rasa's
part of a photo turn is fixed (payload `/photo_search` → its rule's action) and is played by the
stand-in of tests/photo_stack.py; add Rasa's own per-turn latency from bench/chat_load.py.

For context the same photos are also timed against the vision service alone (`/v1/embed`), so
the app's share (storage, routing, vector search, cards from the database) shows up as the
difference. Figures are printed and written as JSON; nothing is asserted.

    .venv/bin/python bench/photo_search_bench.py [--requests 60] \
        [--photos ../shared/datasets/clothing]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import fmt, latency_summary_ms, machine_info, write_result  # noqa: E402
from bot.photo_index import ServiceImageEncoder  # noqa: E402
from bot.product_photos import render_product_photo  # noqa: E402
from tests.live_stack import free_port  # noqa: E402
from tests.photo_stack import PhotoShop, demo_database, start_photo_shop  # noqa: E402
from vision.launcher import service_command, service_environment  # noqa: E402

CATEGORIES = (
    ("shoes", "Running Sneakers"), ("dresses", "Summer Dress"), ("shirts", "Crew Tee"),
    ("trousers", "Chinos"), ("jackets", "Parka"), ("knitwear", "Cardigan"),
    ("accessories", "Tote Bag"),
)  # fmt: skip
COLOURS = ("red", "orange", "purple", "pink", "yellow", "tan", "green", "blue")


def drawn_queries(n: int) -> list[bytes]:
    """Photos of things that are not in the catalogue (other colours), 320 px JPEGs."""
    combos = [(c, t, colour) for colour in COLOURS for c, t in CATEGORIES]
    return [render_product_photo(*combos[i % len(combos)]) for i in range(n)]


def large_queries(n: int) -> list[bytes]:
    """The same drawings as 1600x1200 JPEGs (what a phone camera sends after resizing)."""
    from PIL import Image

    out = []
    for data in drawn_queries(n):
        image = Image.open(io.BytesIO(data)).convert("RGB").resize((1600, 1200))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def real_queries(folder: Path, n: int) -> list[bytes]:
    """Photos from the end of the folder (the photo demo catalogue takes the first ones)."""
    with (folder / "labels.csv").open(newline="", encoding="utf-8") as handle:
        names = sorted(r["image"] for r in csv.DictReader(handle) if r.get("kids") == "False")
    return [(folder / "images" / f"{name}.jpg").read_bytes() for name in names[-n:]]


def start_vision(port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        service_command(["--host", "127.0.0.1", "--port", str(port)]),
        cwd=ROOT,
        env=service_environment(),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("the vision service exited; see its log")
            try:
                async with http.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return dict(await response.json())
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("vision service not ready")


async def time_uploads(
    shop: PhotoShop, photos: list[bytes], concurrency: int, tag: str
) -> tuple[list[float], int]:
    """Seconds per upload → cards; every upload is its own conversation."""
    latencies: list[float] = []
    without_cards = 0
    queue = list(enumerate(photos))

    async def worker() -> None:
        nonlocal without_cards
        while queue:
            i, data = queue.pop(0)
            started = time.perf_counter()
            status, answer = await shop.upload(f"bench-{tag}-{concurrency}-{i:04d}", data)
            elapsed = time.perf_counter() - started
            if status != 200 or not answer["messages"] or not answer["messages"][0]["cards"]:
                without_cards += 1
            latencies.append(elapsed)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, without_cards


async def time_embeds(url: str, photos: list[bytes]) -> list[float]:
    latencies = []
    async with aiohttp.ClientSession() as http:
        for data in photos:
            started = time.perf_counter()
            async with http.post(f"{url}/v1/embed?labels=5", data=data) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
    return latencies


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="photo-bench-"))
    port = free_port()
    vision_url = f"http://127.0.0.1:{port}"
    vision = start_vision(port, workdir / "vision.log")
    try:
        ready = await wait_ready(vision_url, vision)
        print(f"vision service ready: {ready['model']} on {ready['device']}", flush=True)
        engine = await asyncio.to_thread(demo_database, workdir, args.photos, args.per_label)
        started = time.perf_counter()
        shop, server = await start_photo_shop(
            workdir, engine, vision_url, ServiceImageEncoder(vision_url)
        )
        index_s = time.perf_counter() - started
        products = len(await shop.shop.transaction(lambda s: s.exec(_all_products()).all()))
        print(f"catalogue: {products} products indexed in {index_s:.1f} s", flush=True)
        series: dict[str, list[bytes]] = {
            "drawn_320px": drawn_queries(args.requests),
            "drawn_1600x1200": large_queries(args.requests),
        }
        if args.photos is not None:
            series["real_photos"] = real_queries(args.photos, args.requests)
        await time_uploads(shop, drawn_queries(12), 1, "warmup")
        results: dict[str, Any] = {}
        for name, photos in series.items():
            embed = latency_summary_ms(await time_embeds(vision_url, photos))
            results[name] = {"vision_embed_only": embed, "upload_to_cards": {}}
            for concurrency in args.concurrency:
                latencies, missing = await time_uploads(shop, photos, concurrency, name)
                summary = {**latency_summary_ms(latencies), "replies_without_cards": missing}
                results[name]["upload_to_cards"][f"concurrency_{concurrency}"] = summary
                print(
                    f"{name:<16} c={concurrency:<2} upload→cards p50 {fmt(summary['p50_ms'])} ms"
                    f"  p95 {fmt(summary['p95_ms'])} ms   (vision alone p50 "
                    f"{fmt(embed['p50_ms'])} ms)",
                    flush=True,
                )
        await server.close()
        shop.services.close()
        return {
            "benchmark": "photo_search_end_to_end",
            "machine": machine_info(),
            "vision": ready,
            "catalogue": {
                "products": products,
                "photos": str(args.photos) if args.photos else "drawn",
                "index_seconds": round(index_s, 1),
            },
            "rasa": "stand-in (payload turn → rule's action over the real action endpoint)",
            "requests_per_series": args.requests,
            "results": results,
        }
    finally:
        vision.terminate()
        try:
            vision.wait(timeout=15)
        except subprocess.TimeoutExpired:
            vision.kill()


def _all_products() -> Any:
    from sqlmodel import select

    from bot.store.models import Product

    return select(Product.id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--photos", type=Path, default=None, help="labelled photo folder")
    parser.add_argument("--per-label", type=int, default=10)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    path = write_result("photo_search", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
