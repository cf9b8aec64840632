"""Photo-search vector store at catalogue scale: insert, search latency, recall, memory.

    .venv/bin/python bench/vector_bench.py [--sizes 10000,100000,1000000] [--dim 1280] \
        [--queries 200] [--local-max 100000] [--limit-s 600] [--search-ef 128,256,512]

Synthetic, seeded, L2-normalised float32 vectors at the vision model's size (EfficientNet-Lite0
features, 1280): 200 Gaussian cluster centres, plus a spread inside a shared low-rank subspace
(so neighbourhoods have the structure of real embeddings rather than isotropic noise), plus a
little isotropic noise. Queries are held-out noisy copies of dataset vectors (the originals are
stored, the copies are not). Each engine and size runs in its own child process (so its peak RSS
is its own), fed in batches from a data file:

- `qdrant_edge`: the app's embedded store (`bot.vectors.edge.EdgeVectorStore`, Qdrant Edge, the
  app's default HNSW settings and `VECTOR_SEARCH_EF`); the insert, then `optimize` (the index
  build the app runs after a bulk load), then searches through the store's `search`, as photo
  search calls it; with `--search-ef 100,512` the same index is searched again with each
  `hnsw_ef` for its latency and recall (100 is Qdrant's own default);
- `qdrant_client_local`: the same app interface on qdrant-client's local mode
  (`ServerVectorStore(QdrantClient(":memory:"))`), only up to `--local-max` (slow, memory hungry);
- `numpy_exact`: the matrix in memory, `matrix @ query` and `argpartition` (exact top 10): the
  baseline, and the truth for each Qdrant engine's recall@10.

A wall-clock guard skips an engine's larger sizes when its last run, extrapolated linearly,
would take longer than `--limit-s` (a run that goes past it is stopped); a memory guard does the
same against the memory available. Prints a table and ratios, and writes
bench/results/vector_search.json. Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import math
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fmt, latency_summary_ms, machine_info, ratio, write_result
from bot.settings import Settings

APP_SEARCH_EF = int(Settings.model_fields["vector_search_ef"].default)  # VECTOR_SEARCH_EF
ENGINES = ("numpy_exact", "qdrant_edge", "qdrant_client_local")
COLLECTION = "vector_bench"
VECTOR = "image"  # the name photo search uses in collection `products`
TOP_K = 10
WARMUP = 5  # extra queries run before the timed ones, not timed

# synthetic data: x = centre + SPREAD * low-rank part + NOISE * isotropic part, normalised
CLUSTERS = 200
RANK = 32
SPREAD = 0.7
NOISE = 0.15
QUERY_SPREAD = 0.25
QUERY_NOISE = 0.05
CHUNK = 10_000  # rows generated per RNG stream: a dataset is the prefix of a larger one

# rough peak RSS per byte of raw vectors, before a run of the engine has been measured
MEMORY_FACTOR = {"numpy_exact": 1.2, "qdrant_edge": 3.0, "qdrant_client_local": 15.0}
# disk per byte of raw vectors under the work directory (the Edge WAL and segments)
DISK_FACTOR = {"numpy_exact": 0.0, "qdrant_edge": 3.0, "qdrant_client_local": 0.0}

# the issue author's figures at 100k x 1280 on this kind of machine
REFERENCE: dict[str, Any] = {
    "source": "issue author, measured on this kind of machine",
    "size": 100_000,
    "dim": 1280,
    "p50_ms": {"qdrant_edge": 0.7, "qdrant_client_local": 240.0, "numpy_exact": 11.0},
    "peak_rss_gib": {"qdrant_client_local": 7.0},
}


# --- synthetic data ----------------------------------------------------------------------------
class Dataset:
    """Rows appended to a raw float32 file on demand, chunk by chunk, from seeded streams."""

    def __init__(self, path: Path, dim: int, seed: int) -> None:
        self.path = path
        self.dim = dim
        self.seed = seed
        self.rows = 0
        self.generate_s = 0.0
        base = np.random.default_rng([seed, 0])
        centres = base.standard_normal((CLUSTERS, dim), dtype=np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        # rows of about unit norm, so `z @ basis / sqrt(RANK)` has a norm of about one
        self.basis = base.standard_normal((RANK, dim), dtype=np.float32) / np.float32(
            math.sqrt(dim)
        )
        path.touch()

    def _noise(self, rng: np.random.Generator, rows: int, spread: float, noise: float) -> Any:
        low_rank = rng.standard_normal((rows, RANK), dtype=np.float32) @ self.basis
        isotropic = rng.standard_normal((rows, self.dim), dtype=np.float32)
        return (
            np.float32(spread / math.sqrt(RANK)) * low_rank
            + np.float32(noise / math.sqrt(self.dim)) * isotropic
        )

    @staticmethod
    def _normalised(x: Any) -> Any:
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    def ensure(self, n: int) -> None:
        started = time.perf_counter()
        with self.path.open("ab") as handle:
            while self.rows < n:
                rng = np.random.default_rng([self.seed, 1, self.rows // CHUNK])
                labels = rng.integers(0, CLUSTERS, CHUNK)
                x = self.centres[labels] + self._noise(rng, CHUNK, SPREAD, NOISE)
                handle.write(self._normalised(x).tobytes())
                self.rows += CHUNK
        self.generate_s += time.perf_counter() - started

    def queries(self, n: int, count: int) -> Any:
        """`count` noisy copies of rows drawn from the first `n` (the dataset of that size)."""
        rng = np.random.default_rng([self.seed, 2, n])
        picked = np.sort(rng.choice(n, size=count, replace=count > n))
        rows = np.memmap(self.path, dtype=np.float32, mode="r", shape=(self.rows, self.dim))
        base = np.array(rows[picked])
        del rows
        return self._normalised(base + self._noise(rng, count, QUERY_SPREAD, QUERY_NOISE))


def read_batches(path: Path, n: int, dim: int, batch: int) -> Any:
    """The first `n` rows in batches (plain reads: only one batch is resident at a time)."""
    with path.open("rb") as handle:
        for start in range(0, n, batch):
            rows = min(batch, n - start)
            data = handle.read(rows * dim * 4)
            yield start, np.frombuffer(data, dtype=np.float32).reshape(rows, dim)


# --- measurements inside a child process --------------------------------------------------------
def _status_mib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _peak_rss_mib() -> float:
    """This process's own high-water RSS. Not getrusage's ru_maxrss: Linux carries that over
    from the parent across fork and exec, so a child would report at least the parent's peak."""
    peak = _status_mib("VmHWM")
    if peak is not None:
        return peak
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _dir_mib(path: Path) -> float:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(folder, name))
    return round(total / 1024 / 1024, 1)


def _numpy_exact(job: dict[str, Any]) -> dict[str, Any]:
    n, dim = job["size"], job["dim"]
    started = time.perf_counter()
    matrix = np.empty((n, dim), dtype=np.float32)
    for start, rows in read_batches(job["data"], n, dim, job["batch"]):
        matrix[start : start + len(rows)] = rows
    insert_s = time.perf_counter() - started

    def top(query: Any) -> Any:
        scores = matrix @ query
        if n <= TOP_K:
            return np.argsort(-scores)
        best = np.argpartition(-scores, TOP_K - 1)[:TOP_K]
        return best[np.argsort(-scores[best])]

    for query in job["warmup"]:
        top(query)
    latencies: list[float] = []
    ids: list[list[int]] = []
    for query in job["queries"]:
        t0 = time.perf_counter()
        found = top(query)
        latencies.append(time.perf_counter() - t0)
        ids.append([int(i) for i in found])
    return {"insert_s": insert_s, "latencies": latencies, "ids": ids}


def _qdrant(job: dict[str, Any]) -> dict[str, Any]:
    from bot.vectors.model import CollectionSpec, VectorPoint, VectorStore

    engine, n, dim = job["engine"], job["size"], job["dim"]
    store: VectorStore
    extra: dict[str, Any] = {}
    edge_root = Path(job["work_dir"]) / f"edge-{n}"
    edge_store: Any = None
    if engine == "qdrant_edge":
        from bot.vectors.edge import EdgeVectorStore

        store = edge_store = EdgeVectorStore(edge_root, APP_SEARCH_EF)
    else:
        from qdrant_client import QdrantClient

        from bot.vectors.server import ServerVectorStore

        store = ServerVectorStore(QdrantClient(":memory:"), APP_SEARCH_EF)

    def shard_info() -> dict[str, int]:
        # EdgeVectorStore keeps its shards private; the bench reads them for the index facts
        info = edge_store._get(COLLECTION).shard.info()
        return {
            "segments": int(info.segments_count),
            "points": int(info.points_count),
            "indexed_vectors": int(info.indexed_vectors_count),
        }

    store.ensure_collection(CollectionSpec(COLLECTION, {VECTOR: dim}))
    insert_s = 0.0
    for start, rows in read_batches(job["data"], n, dim, job["batch"]):
        points = [VectorPoint(start + i, {VECTOR: row}) for i, row in enumerate(rows.tolist())]
        t0 = time.perf_counter()
        store.upsert(COLLECTION, points)
        insert_s += time.perf_counter() - t0
    if engine == "qdrant_edge":
        extra["before_optimize"] = shard_info()
    t0 = time.perf_counter()
    store.optimize(COLLECTION)  # Edge: builds the HNSW index and flushes; the client: no-op
    optimize_s = time.perf_counter() - t0
    if engine == "qdrant_edge":
        extra["optimize_s"] = optimize_s
        extra["after_optimize"] = shard_info()
        extra["disk_mib"] = _dir_mib(edge_root)
    extra["count"] = store.count(COLLECTION)

    def searches() -> tuple[list[float], list[list[int]]]:
        for query in job["warmup"]:
            store.search(COLLECTION, VECTOR, query.tolist(), limit=TOP_K)
        latencies: list[float] = []
        ids: list[list[int]] = []
        for query in job["queries"]:
            vector = query.tolist()
            t0 = time.perf_counter()
            hits = store.search(COLLECTION, VECTOR, vector, limit=TOP_K)
            latencies.append(time.perf_counter() - t0)
            ids.append([int(hit.id) for hit in hits])
        return latencies, ids

    latencies, ids = searches()  # the app's default `VECTOR_SEARCH_EF`
    if edge_store is not None and job["search_ef"]:
        import qdrant_edge as qe

        extra["by_search_ef"] = {}
        for ef in job["search_ef"]:  # the same index, searched with more HNSW candidates
            edge_store.search_params = qe.SearchParams(hnsw_ef=ef)
            ef_latencies, ef_ids = searches()
            extra["by_search_ef"][ef] = {"latencies": ef_latencies, "ids": ef_ids}
    store.close()
    return {
        "insert_s": insert_s,
        "latencies": latencies,
        "ids": ids,
        **extra,
    }


def _child(job: dict[str, Any], conn: Connection) -> None:
    try:
        rss_start = _status_mib("VmRSS")
        run = _numpy_exact if job["engine"] == "numpy_exact" else _qdrant
        result = run(job)
        result["rss_start_mib"] = rss_start
        result["peak_rss_mib"] = _peak_rss_mib()
        conn.send(result)
    except BaseException as error:  # report it to the parent, which goes on with the rest
        conn.send({"error": f"{type(error).__name__}: {error}"})
    finally:
        conn.close()


def run_child(job: dict[str, Any], limit_s: float) -> tuple[dict[str, Any], float]:
    """Run one engine/size in a fresh process; stop it at `limit_s`. (result, wall seconds)."""
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(job, send), name=f"{job['engine']}-{job['size']}")
    started = time.perf_counter()
    process.start()
    send.close()
    result: dict[str, Any]
    finished = False
    try:
        if receive.poll(limit_s):
            result = receive.recv()
            finished = True
        else:
            result = {"skipped": f"stopped after --limit-s {limit_s:.0f} s"}
    except EOFError:
        process.join(10)
        result = {"error": f"the child process died (exit code {process.exitcode})"}
    wall = time.perf_counter() - started
    if finished:
        process.join(30)  # it closes its store and exits
    if process.is_alive():
        process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()
    receive.close()
    return result, wall


# --- the run ------------------------------------------------------------------------------------
def _mem_available_mib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def memory_estimate_mib(engine: str, size: int, dim: int, done: list[dict[str, Any]]) -> float:
    """Peak RSS expected at `size`: the slope between the engine's last two runs, or linear
    from its one run (conservative: it scales the fixed overhead too), or a rough factor."""
    if len(done) >= 2:
        a, b = done[-2], done[-1]
        slope = (b["peak_rss_mib"] - a["peak_rss_mib"]) / (b["size"] - a["size"])
        return float(b["peak_rss_mib"] + max(slope, 0.0) * (size - b["size"]))
    if done:
        last = done[-1]
        start = last.get("rss_start_mib") or 0.0
        return float(start + (last["peak_rss_mib"] - start) * size / last["size"])
    return size * dim * 4 / 1024 / 1024 * MEMORY_FACTOR[engine]


def guard(
    engine: str,
    size: int,
    dim: int,
    done: list[dict[str, Any]],
    args: argparse.Namespace,
    work_dir: Path,
) -> str | None:
    """Why this engine/size is skipped, or None to run it. `done`: its runs so far."""
    if engine == "qdrant_client_local" and size > args.local_max:
        return f"size {size} > --local-max {args.local_max}"
    if done:
        last = done[-1]
        predicted = last["wall_s"] * size / last["size"]
        if predicted > args.limit_s:
            return (
                f"{last['wall_s']:.1f} s at {last['size']} extrapolates to {predicted:.0f} s "
                f"at {size} > --limit-s {args.limit_s:.0f}"
            )
    raw_mib = size * dim * 4 / 1024 / 1024
    needed = memory_estimate_mib(engine, size, dim, done)
    available = _mem_available_mib()
    if available is not None and needed > 0.9 * available:
        return f"needs about {needed / 1024:.1f} GiB, {available / 1024:.1f} GiB available"
    disk_free_mib = shutil.disk_usage(work_dir).free / 1024 / 1024
    if raw_mib * DISK_FACTOR[engine] > 0.9 * disk_free_mib:
        return f"needs about {raw_mib * DISK_FACTOR[engine] / 1024:.1f} GiB of disk"
    return None


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    hits = sum(len(set(f) & set(t[:TOP_K])) for f, t in zip(found, truth, strict=True))
    return round(hits / (TOP_K * len(truth)), 4)


def summarise(engine: str, size: int, raw: dict[str, Any], wall: float) -> dict[str, Any]:
    row: dict[str, Any] = {"engine": engine, "size": size, "wall_s": round(wall, 2)}
    insert_s = raw["insert_s"]
    row["insert_s"] = round(insert_s, 3)
    row["insert_vectors_per_s"] = round(size / insert_s) if insert_s else None
    if "optimize_s" in raw:
        row["optimize_s"] = round(raw["optimize_s"], 3)
    row["latency"] = latency_summary_ms(raw["latencies"], digits=3)  # HNSW: < 1 ms
    for key in ("count", "before_optimize", "after_optimize", "disk_mib"):
        if key in raw:
            row[key] = raw[key]
    row["rss_start_mib"] = raw["rss_start_mib"]
    row["peak_rss_mib"] = raw["peak_rss_mib"]
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'size':>9} {'engine':<20} {'insert s':>9} {'vec/s':>8} {'optim s':>8} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'recall':>7} {'peak MiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        if "skipped" in row or "error" in row:
            why = row.get("skipped") or row.get("error")
            print(f"{row['size']:>9} {row['engine']:<20} skipped: {why}")
            continue
        lat = row["latency"]
        note = ""
        after = row.get("after_optimize")
        if after is not None and not after["indexed_vectors"]:
            note = "  (no HNSW index built: full scan)"
        print(
            f"{row['size']:>9} {row['engine']:<20} {fmt(row['insert_s'], 2):>9} "
            f"{fmt(row['insert_vectors_per_s']):>8} {fmt(row.get('optimize_s'), 2):>8} "
            f"{fmt(lat['p50_ms'], 3):>8} {fmt(lat['p95_ms'], 3):>8} {fmt(lat['p99_ms'], 3):>8} "
            f"{fmt(row.get('recall_at_10'), 3):>7} {fmt(row['peak_rss_mib'], 0):>9}{note}"
        )
        for by_ef in row.get("by_search_ef", []):
            lat = by_ef["latency"]
            name = f"  hnsw_ef={by_ef['search_ef']}"
            print(
                f"{'':>9} {name:<20} {'':>9} {'':>8} {'':>8} {fmt(lat['p50_ms'], 3):>8} "
                f"{fmt(lat['p95_ms'], 3):>8} {fmt(lat['p99_ms'], 3):>8} "
                f"{fmt(by_ef['recall_at_10'], 3):>7}"
            )


def p50(rows: list[dict[str, Any]], engine: str, size: int) -> float | None:
    for row in rows:
        if row["engine"] == engine and row["size"] == size and "latency" in row:
            value = row["latency"]["p50_ms"]
            return float(value) if value is not None else None
    return None


def size_ratios(rows: list[dict[str, Any]], sizes: list[int]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for size in sizes:
        edge = p50(rows, "qdrant_edge", size)
        exact = p50(rows, "numpy_exact", size)
        local = p50(rows, "qdrant_client_local", size)
        out[str(size)] = {
            "numpy_p50_over_edge_p50": ratio(exact, edge),
            "local_p50_over_edge_p50": ratio(local, edge),
            "local_p50_over_numpy_p50": ratio(local, exact),
        }
    return out


def versus_reference(rows: list[dict[str, Any]], dim: int) -> dict[str, Any]:
    """Ours / theirs, only for a run at the reference's size and dimension."""
    size = REFERENCE["size"]
    if dim != REFERENCE["dim"] or not any(r["size"] == size and "latency" in r for r in rows):
        return {"comparable": False}
    out: dict[str, Any] = {"comparable": True, "p50_ours_over_theirs": {}}
    for engine, theirs in REFERENCE["p50_ms"].items():
        out["p50_ours_over_theirs"][engine] = ratio(p50(rows, engine, size), theirs)
    local = next(
        (r for r in rows if r["engine"] == "qdrant_client_local" and r["size"] == size), None
    )
    if local is not None and local.get("peak_rss_mib"):
        out["peak_rss_ours_over_theirs"] = {
            "qdrant_client_local": ratio(
                local["peak_rss_mib"] / 1024, REFERENCE["peak_rss_gib"]["qdrant_client_local"]
            )
        }
    return out


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("qdrant-edge-py", "qdrant-client", "numpy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated")
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000, help="points per upsert")
    parser.add_argument("--local-max", type=int, default=100_000)
    parser.add_argument("--limit-s", type=float, default=600.0, help="per engine and size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--search-ef",
        default="",
        help="Qdrant Edge: also search the built index with these hnsw_ef values (comma-separated)",
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary one")
    parser.add_argument(
        "--out", default="vector_search", help="result name: bench/results/<OUT>.json"
    )
    args = parser.parse_args()
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    search_ef = [int(ef) for ef in args.search_ef.split(",") if ef.strip()]

    machine = machine_info()
    rows: list[dict[str, Any]] = []
    done: dict[str, list[dict[str, Any]]] = {engine: [] for engine in ENGINES}
    failed: dict[str, str] = {}  # engine -> why its larger sizes are not tried
    with tempfile.TemporaryDirectory(prefix="vector-bench-", dir=args.work_dir) as tmp:
        work_dir = Path(tmp)
        data = Dataset(work_dir / "vectors.f32", args.dim, args.seed)
        queries: Any = None
        for size in sizes:
            plan = {
                engine: failed.get(engine)
                or guard(engine, size, args.dim, done[engine], args, work_dir)
                for engine in ENGINES
            }
            if any(why is None for why in plan.values()):
                data.ensure(size)
                queries = data.queries(size, args.queries + WARMUP)
            truth: list[list[int]] | None = None
            for engine in ENGINES:
                why = plan[engine]
                if why is not None:
                    rows.append({"engine": engine, "size": size, "skipped": why})
                    print(f"[{size} {engine}] skipped: {why}", flush=True)
                    continue
                print(f"[{size} {engine}] running ...", flush=True)
                job = {
                    "engine": engine,
                    "size": size,
                    "dim": args.dim,
                    "batch": args.batch,
                    "data": data.path,
                    "work_dir": str(work_dir),
                    "queries": queries[: args.queries],
                    "warmup": queries[args.queries :],
                    "search_ef": search_ef,
                }
                raw, wall = run_child(job, args.limit_s)
                if "skipped" in raw or "error" in raw:
                    row = {"engine": engine, "size": size, "wall_s": round(wall, 2), **raw}
                    rows.append(row)
                    failed[engine] = f"the run at size {size} did not finish"
                    print(f"[{size} {engine}] {raw}", flush=True)
                    continue
                row = summarise(engine, size, raw, wall)
                if engine == "numpy_exact":
                    truth = raw["ids"]
                    row["recall_at_10"] = 1.0
                elif truth is not None:
                    row["recall_at_10"] = recall(raw["ids"], truth)
                for ef, found in raw.get("by_search_ef", {}).items():
                    row.setdefault("by_search_ef", []).append(
                        {
                            "search_ef": ef,
                            "latency": latency_summary_ms(found["latencies"], digits=3),
                            "recall_at_10": None if truth is None else recall(found["ids"], truth),
                        }
                    )
                rows.append(row)
                done[engine].append(row)
                print(
                    f"[{size} {engine}] done in {wall:.1f} s: p50 {row['latency']['p50_ms']} ms",
                    flush=True,
                )
        generate_s = data.generate_s
        generated = data.rows

    ratios = size_ratios(rows, sizes)
    reference = versus_reference(rows, args.dim)
    result = {
        "benchmark": "vector_search",
        "machine": machine,
        "versions": _versions(),
        "config": {
            "sizes": sizes,
            "dim": args.dim,
            "queries": args.queries,
            "warmup_queries": WARMUP,
            "top_k": TOP_K,
            "batch": args.batch,
            "local_max": args.local_max,
            "limit_s": args.limit_s,
            "seed": args.seed,
            "app_search_ef": APP_SEARCH_EF,
            "search_ef": search_ef,
            "data": {
                "clusters": CLUSTERS,
                "rank": RANK,
                "spread": SPREAD,
                "noise": NOISE,
                "query_spread": QUERY_SPREAD,
                "query_noise": QUERY_NOISE,
                "normalised": True,
                "dtype": "float32",
            },
        },
        "data_generation": {"rows": generated, "seconds": round(generate_s, 2)},
        "results": rows,
        "ratios": ratios,
        "reference": REFERENCE,
        "versus_reference": reference,
    }
    path = write_result(args.out, result)

    print()
    print(
        f"{args.dim}-d vectors, {args.queries} queries, top {TOP_K}; data generated in "
        f"{generate_s:.1f} s ({generated} rows); latency per query, recall@10 against numpy"
    )
    print_table(rows)
    print()
    for label, values in ratios.items():
        print(
            f"{label:>9}: numpy p50 / edge p50 {fmt(values['numpy_p50_over_edge_p50'], 2)}x   "
            f"local p50 / edge p50 {fmt(values['local_p50_over_edge_p50'], 2)}x   "
            f"local p50 / numpy p50 {fmt(values['local_p50_over_numpy_p50'], 2)}x"
        )
    theirs = REFERENCE["p50_ms"]
    print(
        f"reference at {REFERENCE['size']} x {REFERENCE['dim']}: edge p50 "
        f"{theirs['qdrant_edge']} ms, local p50 {theirs['qdrant_client_local']} ms "
        f"({REFERENCE['peak_rss_gib']['qdrant_client_local']} GiB RSS), numpy p50 "
        f"{theirs['numpy_exact']} ms"
    )
    if reference["comparable"]:
        ours = reference["p50_ours_over_theirs"]
        rss = reference.get("peak_rss_ours_over_theirs", {}).get("qdrant_client_local")
        print(
            f"ours / theirs: edge p50 {fmt(ours['qdrant_edge'], 2)}x, local p50 "
            f"{fmt(ours['qdrant_client_local'], 2)}x, numpy p50 {fmt(ours['numpy_exact'], 2)}x, "
            f"local RSS {fmt(rss, 2)}x"
        )
    else:
        print(f"ours / theirs: no {REFERENCE['size']} x {REFERENCE['dim']} run in this one")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
