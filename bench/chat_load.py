"""Chat load benchmark: the real stack (Rasa server(s) + app) driven over `POST /api/v1/chat`.

    .venv/bin/python bench/chat_load.py [--quick] [--configs 1,2]

For each configuration (1 Rasa process, 2 Rasa processes) a fresh stack is started with
`tests.live_stack.start_stack` in a fresh temporary data dir, and measured with:

1. one customer alone: sequential turns, reply latency p50/p95 (the README quotes it);
2. one long conversation (1-process configuration only): 300 turns alternating order status and
   small talk, median latency of turns 1-20 against turns 281-300;
3. saturation: 10 and 50 conversations each sending back to back, for a greeting (no custom
   action) and for an order-status turn of an already verified customer (the form re-validates
   its slots through the action endpoint, then `action_order_task` answers with the tracking
   number, which is checked);
4. customers typing: 50 conversations each sending 2 s after the previous reply, greeting and
   order-status turns mixed.

Prints figures and ratios (2-process / 1-process, against the retail demo reference) and writes
them to `bench/results/chat_load.json` (`chat_load_quick.json` with --quick). It asserts nothing.
Only 127.0.0.1 is contacted; every load loop is bounded in turns and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    CpuMeter,
    fmt,
    latency_summary_ms,
    machine_info,
    percentile,
    ratio,
    write_result,
)
from bot.rasa_client import server_for  # noqa: E402
from tests.live_stack import Stack, start_stack  # noqa: E402

# Reference measured on this kind of machine (2 cores): Rasa's own retail demo, one Rasa 3.6
# process + a rasa-sdk action server.
RETAIL_DEMO_ACTION_TURNS_PER_S = 19.0
REFERENCE: dict[str, Any] = {
    "retail_demo_custom_action_turns_per_s": RETAIL_DEMO_ACTION_TURNS_PER_S,
    "retail_demo_custom_action_p95_ms_at_50": 3400.0,
    "retail_demo_long_conversation_median_ms": {"turns_1_20": 45.0, "turns_281_300": 195.0},
}
TARGETS: dict[str, float] = {
    "custom_action_turns_per_s_2_rasa": 1.5 * 19.0,
    "typing_p95_ms": 500.0,
    "long_conversation_growth_ratio": 1.0,
}

REQUEST_TIMEOUT_S = 60.0

STATUS_TEXT = "where is my order?"


@dataclass(frozen=True)
class Mode:
    name: str
    warmup_s: float
    saturation_s: float
    typing_s: float
    think_s: float
    single_turns: int
    long_turns: int
    concurrency: tuple[int, ...] = (10, 50)
    typing_conversations: int = 50


FULL = Mode(
    "full", warmup_s=3, saturation_s=20, typing_s=60, think_s=2, single_turns=60, long_turns=300
)
QUICK = Mode(
    "quick", warmup_s=1, saturation_s=5, typing_s=20, think_s=2, single_turns=30, long_turns=120
)


# --- one turn --------------------------------------------------------------------------------
@dataclass
class Conversation:
    session: str
    order: dict[str, Any] | None = None  # verified order (with its tracking number)

    @property
    def conversation_id(self) -> str:
        return f"web:{self.session}"


@dataclass
class Outcome:
    kind: str
    start: float
    end: float
    error: str | None = None
    reply: str | None = None  # kept for wrong answers only

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def latency(self) -> float:
        return self.end - self.start


def _has(fragment: str) -> Callable[[Conversation, str], bool]:
    return lambda conv, text: fragment.lower() in text.lower()


def _status_ok(conv: Conversation, text: str) -> bool:
    assert conv.order is not None
    return str(conv.order["tracking_number"]) in text and str(conv.order["number"]) in text


# kind -> (text sent, check of the joined reply texts)
TURNS: dict[str, tuple[str, Callable[[Conversation, str], bool]]] = {
    "greet": ("hi", _has("Northwind Threads assistant")),
    "status": (STATUS_TEXT, _status_ok),
    "thank": ("thanks!", _has("you're welcome")),
    "bot": ("are you a bot?", _has("virtual assistant")),
    "capabilities": ("what can you do?", _has("here's what i can help with")),
}
SMALL_TALK = ["greet", "thank", "bot", "capabilities"]


class SetupError(RuntimeError):
    pass


class ChatClient:
    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.url = f"{base_url}/api/v1/chat"

    async def send(self, session: str, text: str) -> tuple[int, str]:
        async with self.http.post(self.url, json={"session": session, "text": text}) as response:
            body = await response.json(content_type=None)
            messages = body.get("messages", []) if isinstance(body, dict) else []
            return response.status, "\n".join(str(m.get("text") or "") for m in messages)

    async def turn(self, conv: Conversation, kind: str) -> Outcome:
        text, check = TURNS[kind]
        start = time.monotonic()
        try:
            status, reply = await self.send(conv.session, text)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            return Outcome(kind, start, time.monotonic(), f"transport:{type(error).__name__}")
        end = time.monotonic()
        if status != 200:
            return Outcome(kind, start, end, f"http:{status}", reply[:300])
        if not check(conv, reply):
            return Outcome(kind, start, end, "wrong_answer", reply[:300])
        return Outcome(kind, start, end)

    async def verify(self, conv: Conversation, order: dict[str, Any]) -> None:
        """Verify once (order number + e-mail) so later status turns need no questions."""
        steps = [
            (STATUS_TEXT, "order number"),
            (str(order["number"]), "e-mail"),
            (str(order["email"]), str(order["tracking_number"])),
        ]
        for text, expected in steps:
            status, reply = await self.send(conv.session, text)
            if status != 200 or expected.lower() not in reply.lower():
                raise SetupError(
                    f"verification of {order['number']} in {conv.session}: sent {text!r}, "
                    f"got {status} {reply[:200]!r}"
                )
        conv.order = order


def new_sessions(prefix: str, count: int, rasa_urls: list[str]) -> list[Conversation]:
    """Session ids spread evenly over the Rasa processes (the router hashes the conversation id),
    so a 2-process run is not skewed by an unlucky split."""
    per_server = -(-count // len(rasa_urls))
    buckets: dict[str, list[Conversation]] = {url: [] for url in rasa_urls}
    while sum(len(b) for b in buckets.values()) < count:
        conv = Conversation(f"{prefix}-{secrets.token_hex(6)}")
        bucket = buckets[server_for(conv.conversation_id, rasa_urls)]
        if len(bucket) < per_server:
            bucket.append(conv)
    interleaved = [c for group in zip(*buckets.values(), strict=False) for c in group]
    leftovers = [c for b in buckets.values() for c in b if c not in interleaved]
    return (interleaved + leftovers)[:count]


async def verify_all(
    client: ChatClient, convs: Sequence[Conversation], orders: Sequence[dict[str, Any]]
) -> float:
    started = time.monotonic()
    gate = asyncio.Semaphore(10)

    async def one(index: int, conv: Conversation) -> None:
        async with gate:
            await client.verify(conv, orders[index % len(orders)])

    await asyncio.wait_for(
        asyncio.gather(*(one(i, c) for i, c in enumerate(convs))),
        timeout=30 + 3 * len(convs),
    )
    return round(time.monotonic() - started, 1)


# --- measurement windows ---------------------------------------------------------------------
def errors_by_kind(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Error counts by cause, with up to three example replies."""
    counts: dict[str, Any] = {}
    examples: list[str] = []
    for outcome in outcomes:
        if outcome.error is not None:
            counts[outcome.error] = counts.get(outcome.error, 0) + 1
            if outcome.reply is not None and len(examples) < 3:
                examples.append(f"{outcome.kind}: {outcome.reply}")
    if examples:
        counts["examples"] = examples
    return counts


async def cpu_window(meter: CpuMeter, begin: float, end: float) -> dict[str, Any]:
    await asyncio.sleep(max(0.0, begin - time.monotonic()))
    meter.start()
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    return meter.stop()


async def saturate(
    client: ChatClient,
    convs: Sequence[Conversation],
    kind: str,
    warmup_s: float,
    duration_s: float,
    meter: CpuMeter,
) -> dict[str, Any]:
    """Every conversation sends its next message right after the reply."""
    outcomes: list[Outcome] = []
    t0 = time.monotonic()
    begin, end = t0 + warmup_s, t0 + warmup_s + duration_s
    max_turns = int((warmup_s + duration_s) * 500)  # far above any reachable rate

    async def loop(conv: Conversation) -> None:
        for _ in range(max_turns):
            if time.monotonic() >= end:
                return
            outcome = await client.turn(conv, kind)
            outcomes.append(outcome)
            if outcome.error and outcome.error.startswith("transport"):
                await asyncio.sleep(0.2)

    cpu_task = asyncio.create_task(cpu_window(meter, begin, end))
    await asyncio.wait_for(
        asyncio.gather(*(loop(c) for c in convs)),
        timeout=warmup_s + duration_s + REQUEST_TIMEOUT_S + 10,
    )
    cpu = await cpu_task
    window = [o for o in outcomes if begin <= o.end <= end]
    ok = [o.latency for o in window if o.ok]
    return {
        "kind": kind,
        "conversations": len(convs),
        "window_s": duration_s,
        "turns_total": len(outcomes),
        "turns_in_window": len(window),
        "msgs_per_s": round(len(ok) / duration_s, 2),
        "latency": latency_summary_ms(ok),
        "errors": len(window) - len(ok),
        "errors_by_kind": errors_by_kind(window),
        "errors_outside_window": sum(1 for o in outcomes if not o.ok and not begin <= o.end <= end),
        "cpu": cpu,
    }


async def typing(
    client: ChatClient,
    convs: Sequence[Conversation],
    duration_s: float,
    think_s: float,
    meter: CpuMeter,
    seed: int,
) -> dict[str, Any]:
    """Each conversation sends its next message `think_s` after the previous reply; starts are
    staggered over the first `think_s`, which is left out of the figures."""
    outcomes: list[Outcome] = []
    t0 = time.monotonic()
    begin, end = t0 + think_s, t0 + duration_s
    max_turns = int(duration_s / think_s) + 2

    async def loop(index: int, conv: Conversation) -> None:
        rng = random.Random(seed * 1000 + index)
        await asyncio.sleep(rng.uniform(0, think_s))
        for _ in range(max_turns):
            if time.monotonic() >= end:
                return
            outcome = await client.turn(conv, rng.choice(["greet", "status"]))
            outcomes.append(outcome)
            await asyncio.sleep(think_s)

    cpu_task = asyncio.create_task(cpu_window(meter, begin, end))
    await asyncio.wait_for(
        asyncio.gather(*(loop(i, c) for i, c in enumerate(convs))),
        timeout=duration_s + REQUEST_TIMEOUT_S + 10,
    )
    cpu = await cpu_task
    measured = [o for o in outcomes if begin <= o.start < end]
    ok = [o for o in measured if o.ok]
    return {
        "conversations": len(convs),
        "think_s": think_s,
        "duration_s": duration_s,
        "measured_from_s": think_s,
        "offered_msgs_per_s_if_instant": round(len(convs) / think_s, 1),
        "turns": len(measured),
        "msgs_per_s": round(len(ok) / (duration_s - think_s), 2),
        "latency": latency_summary_ms([o.latency for o in ok]),
        "latency_by_kind": {
            kind: latency_summary_ms([o.latency for o in ok if o.kind == kind])
            for kind in ("greet", "status")
        },
        "errors": len(measured) - len(ok),
        "errors_by_kind": errors_by_kind(measured),
        "cpu": cpu,
    }


async def sequential(client: ChatClient, conv: Conversation, kinds: Sequence[str]) -> list[Outcome]:
    outcomes = []
    for kind in kinds:
        outcomes.append(await client.turn(conv, kind))
    return outcomes


async def tracker_facts(
    http: aiohttp.ClientSession, conv: Conversation, rasa_urls: list[str]
) -> dict[str, Any]:
    """Events in the conversation's Rasa tracker and the size of its JSON, which is about what
    Rasa posts to the action endpoint for every custom action call."""
    server = server_for(conv.conversation_id, rasa_urls)
    url = f"{server}/conversations/{conv.conversation_id}/tracker"
    try:
        async with http.get(url) as response:
            raw = await response.read()
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        return {"error": repr(error)}
    return {"events": len(body.get("events") or []), "tracker_json_bytes": len(raw)}


# --- one configuration -----------------------------------------------------------------------
async def measure_stack(
    stack: Stack, rasa_processes: int, mode: Mode, long_conversation: bool
) -> dict[str, Any]:
    rasa_urls = [f"http://127.0.0.1:{port}" for port in stack.rasa_ports]
    # the status answer of these states carries the tracking number (checked on every turn)
    orders = [
        o
        for o in stack.orders()
        if o.get("tracking_number") and o.get("status") in ("shipped", "delivered")
    ]
    if not orders:
        raise SetupError("the demo shop has no order with a tracking number")
    groups = {
        f"rasa_{port}": p.pid for port, p in zip(stack.rasa_ports, stack.processes, strict=False)
    }
    groups["app"] = stack.processes[-1].pid
    meter = CpuMeter(groups)
    result: dict[str, Any] = {"rasa_processes": rasa_processes, "orders_used": len(orders)}
    tag = f"r{rasa_processes}"

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        client = ChatClient(http, stack.base_url)

        # warm every Rasa process and the app (first turns load lazily-built graphs, caches)
        warm = new_sessions(f"warm{tag}", 2 * rasa_processes, rasa_urls)
        await verify_all(client, warm, orders)
        for conv in warm:
            await sequential(client, conv, ["greet", "status", "thank", "status"])

        # 1. one customer alone
        print(f"[{tag}] one customer at a time, {mode.single_turns} turns", flush=True)
        # fresh short conversations (a long one would measure tracker growth, see below)
        per_conversation = 6
        alone_convs = new_sessions(
            f"alone{tag}", -(-mode.single_turns // per_conversation), rasa_urls
        )
        outcomes = []
        for index, conv in enumerate(alone_convs):
            await client.verify(conv, orders[index % len(orders)])
            kinds = ["greet" if i % 2 == 0 else "status" for i in range(per_conversation)]
            outcomes += await sequential(client, conv, kinds)
        ok = [o for o in outcomes if o.ok]
        result["single_customer"] = {
            "turns": len(outcomes),
            "conversations": len(alone_convs),
            "note": "each conversation verifies an order once (not timed), then alternates "
            "greeting and order-status turns",
            "latency": latency_summary_ms([o.latency for o in ok]),
            "latency_by_kind": {
                kind: latency_summary_ms([o.latency for o in ok if o.kind == kind])
                for kind in ("greet", "status")
            },
            "errors": len(outcomes) - len(ok),
            "errors_by_kind": errors_by_kind(outcomes),
        }
        print(f"[{tag}]   {_line(result['single_customer']['latency'])}", flush=True)

        # 2. one long conversation
        if long_conversation:
            print(f"[{tag}] long conversation, {mode.long_turns} turns", flush=True)
            result["long_conversation"] = await long_run(
                client, http, rasa_urls, orders, tag, mode.long_turns
            )
            lc = result["long_conversation"]
            print(
                f"[{tag}]   median turns 1-20 {fmt(lc['median_ms_first_20'])} ms, "
                f"last 20 {fmt(lc['median_ms_last_20'])} ms, ratio {fmt(lc['growth_ratio'], 2)}",
                flush=True,
            )

        # 3. saturation
        saturation: dict[str, dict[str, Any]] = {}
        for kind in ("greet", "status"):
            for concurrency in mode.concurrency:
                convs = new_sessions(f"sat{tag}{kind[0]}{concurrency}", concurrency, rasa_urls)
                setup_s = await verify_all(client, convs, orders) if kind == "status" else 0.0
                print(
                    f"[{tag}] saturation {kind} x{concurrency} "
                    f"({mode.warmup_s:g}+{mode.saturation_s:g} s)",
                    flush=True,
                )
                run = await saturate(client, convs, kind, mode.warmup_s, mode.saturation_s, meter)
                run["verify_setup_s"] = setup_s
                saturation.setdefault(kind, {})[str(concurrency)] = run
                print(
                    f"[{tag}]   {run['msgs_per_s']} msgs/s, {_line(run['latency'])}, "
                    f"errors {run['errors']}, cores busy {run['cpu']['cores_busy']}",
                    flush=True,
                )
        result["saturation"] = saturation

        # 4. customers typing
        convs = new_sessions(f"typ{tag}", mode.typing_conversations, rasa_urls)
        setup_s = await verify_all(client, convs, orders)
        print(
            f"[{tag}] customers typing: {len(convs)} conversations, "
            f"{mode.think_s:g} s between reply and next message, {mode.typing_s:g} s",
            flush=True,
        )
        run = await typing(client, convs, mode.typing_s, mode.think_s, meter, seed=rasa_processes)
        run["verify_setup_s"] = setup_s
        result["typing"] = run
        print(
            f"[{tag}]   {run['msgs_per_s']} msgs/s, {_line(run['latency'])}, "
            f"errors {run['errors']}",
            flush=True,
        )
    return result


async def long_run(
    client: ChatClient,
    http: aiohttp.ClientSession,
    rasa_urls: list[str],
    orders: Sequence[dict[str, Any]],
    tag: str,
    turns: int,
) -> dict[str, Any]:
    conv = new_sessions(f"long{tag}", 1, rasa_urls)[0]
    await client.verify(conv, orders[1 % len(orders)])
    kinds = [
        "status" if i % 2 == 0 else SMALL_TALK[(i // 2) % len(SMALL_TALK)] for i in range(turns)
    ]
    outcomes: list[Outcome] = []
    tracker_at: dict[str, Any] = {}
    started = time.monotonic()
    for index, kind in enumerate(kinds, start=1):
        outcomes.append(await client.turn(conv, kind))
        if index in (20, turns):
            tracker_at[f"after_turn_{index}"] = await tracker_facts(http, conv, rasa_urls)
        if time.monotonic() - started > 240:  # bound: a stack this slow says enough
            break
    latencies = [o.latency for o in outcomes]
    first, last = outcomes[:20], outcomes[-20:] if len(outcomes) >= 40 else []

    def median_ms(chunk: Sequence[Outcome], kind: str | None = None) -> float | None:
        values = [o.latency for o in chunk if kind is None or o.kind == kind]
        value = percentile(values, 50)
        return None if value is None else round(value * 1000, 1)

    return {
        "turns": len(outcomes),
        "errors": sum(1 for o in outcomes if not o.ok),
        "errors_by_kind": errors_by_kind(outcomes),
        "median_ms_first_20": median_ms(first),
        "median_ms_last_20": median_ms(last),
        "growth_ratio": ratio(median_ms(last), median_ms(first)),
        "median_ms_by_kind": {
            "status": {
                "first_20": median_ms(first, "status"),
                "last_20": median_ms(last, "status"),
            },
            "small_talk": {
                "first_20": median_ms([o for o in first if o.kind != "status"]),
                "last_20": median_ms([o for o in last if o.kind != "status"]),
            },
        },
        "median_ms_per_20_turns": [
            round((percentile(latencies[i : i + 20], 50) or 0) * 1000, 1)
            for i in range(0, len(latencies), 20)
        ],
        "tracker": tracker_at,
    }


def _line(latency: dict[str, Any]) -> str:
    return (
        f"p50 {fmt(latency['p50_ms'])} ms, p95 {fmt(latency['p95_ms'])} ms, "
        f"p99 {fmt(latency['p99_ms'])} ms (n={latency['n']})"
    )


def run_configuration(rasa_processes: int, mode: Mode, long_conversation: bool) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"chat-load-r{rasa_processes}-"))
    print(
        f"[r{rasa_processes}] starting the stack ({rasa_processes} Rasa) in {data_dir}", flush=True
    )
    started = time.monotonic()
    stack = start_stack(data_dir, rasa_processes=rasa_processes)
    failed = True
    try:
        startup_s = round(time.monotonic() - started, 1)
        result = asyncio.run(measure_stack(stack, rasa_processes, mode, long_conversation))
        result["stack_startup_s"] = startup_s
        failed = False
        return result
    finally:
        stack.stop()
        if not failed:
            result["log_errors"] = log_errors(data_dir)
        if failed:
            print(f"[r{rasa_processes}] logs kept in {data_dir}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def log_errors(data_dir: Path) -> dict[str, Any]:
    """ERROR lines of the app's and Rasa's logs (first line of each, a few examples per file)."""
    found: dict[str, Any] = {}
    for path in sorted([*data_dir.glob("rasa-*.log"), data_dir / "app.out"]):
        if not path.exists():
            continue
        lines = [
            line.strip()[:300]
            for line in path.read_text(errors="replace").splitlines()
            if " ERROR " in line or line.startswith("ERROR") or "[ERROR]" in line
        ]
        if lines:
            found[path.name] = {"count": len(lines), "examples": lines[:3]}
    return found


# --- report ----------------------------------------------------------------------------------
def comparisons(configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"saturation_ratio_2_over_1": {}}
    one, two = configs.get("1"), configs.get("2")
    if one and two:
        for kind, runs in one["saturation"].items():
            for concurrency, run in runs.items():
                other = two["saturation"][kind][concurrency]
                out["saturation_ratio_2_over_1"][f"{kind}_x{concurrency}"] = ratio(
                    other["msgs_per_s"], run["msgs_per_s"]
                )
    reference = RETAIL_DEMO_ACTION_TURNS_PER_S
    for name, config in configs.items():
        status = config["saturation"]["status"]
        at_50 = status.get("50", {}).get("msgs_per_s")
        best = max(run["msgs_per_s"] for run in status.values())
        out[f"custom_action_vs_retail_demo_{name}_rasa"] = {
            "msgs_per_s_at_50": at_50,
            "best_msgs_per_s": best,
            "ratio_at_50": ratio(at_50, reference),
            "ratio_best": ratio(best, reference),
        }
    targets: dict[str, Any] = {}
    if two:
        best = max(run["msgs_per_s"] for run in two["saturation"]["status"].values())
        targets["custom_action_2_rasa_ge_28_5_per_s"] = {
            "measured_best": best,
            "target": TARGETS["custom_action_turns_per_s_2_rasa"],
            "met": best >= TARGETS["custom_action_turns_per_s_2_rasa"],
        }
    for name, config in configs.items():
        p95 = config["typing"]["latency"]["p95_ms"]
        targets[f"typing_p95_le_500ms_{name}_rasa"] = {
            "measured": p95,
            "target": TARGETS["typing_p95_ms"],
            "met": p95 is not None
            and p95 <= TARGETS["typing_p95_ms"]
            and not config["typing"]["errors"],
        }
    long_conv = next(
        (c["long_conversation"] for c in configs.values() if "long_conversation" in c), None
    )
    if long_conv:
        growth = long_conv["growth_ratio"]
        targets["long_conversation_no_growth"] = {
            "measured_ratio": growth,
            "retail_demo_ratio": ratio(195.0, 45.0),
            "met": growth is not None and growth <= 1.2,
            "note": "'no growth' read as last-20 median within 20% of first-20 median",
        }
    out["targets"] = targets
    return out


def print_table(result: dict[str, Any]) -> None:
    configs: dict[str, dict[str, Any]] = result["configurations"]
    names = sorted(configs)
    print()
    print(
        f"chat load ({result['mode']}) — {result['machine']['cpu_count']} CPUs, "
        f"commit {str(result['machine']['git_commit'])[:10]}"
    )
    header = f"{'measurement':44}" + "".join(f"{n + ' Rasa':>22}" for n in names)
    if len(names) == 2:
        header += f"{'2/1':>8}"
    print(header)
    print("-" * len(header))

    def row(label: str, values: list[str], ratio_value: float | None = None) -> None:
        line = f"{label:44}" + "".join(f"{v:>22}" for v in values)
        if len(names) == 2:
            line += f"{fmt(ratio_value, 2):>8}"
        print(line)

    def lat(latency: dict[str, Any]) -> str:
        return (
            f"{fmt(latency['p50_ms'], 0)}/{fmt(latency['p95_ms'], 0)}/{fmt(latency['p99_ms'], 0)}"
        )

    first = configs[names[0]]
    for kind in first["saturation"]:
        for concurrency in first["saturation"][kind]:
            runs = [configs[n]["saturation"][kind][concurrency] for n in names]
            rates = [r["msgs_per_s"] for r in runs]
            row(
                f"saturation {kind} x{concurrency}: msgs/s (errors)",
                [f"{fmt(r['msgs_per_s'], 1)} ({r['errors']})" for r in runs],
                ratio(rates[-1], rates[0]) if len(runs) == 2 else None,
            )
            row("    p50/p95/p99 ms", [lat(r["latency"]) for r in runs])
            row(
                "    cores busy: app / rasa total",
                [
                    f"{fmt(r['cpu']['cores_busy']['app'], 2)} / "
                    + fmt(
                        sum(v for k, v in r["cpu"]["cores_busy"].items() if k.startswith("rasa")),
                        2,
                    )
                    for r in runs
                ],
            )
    typing_runs = [configs[n]["typing"] for n in names]
    row(
        f"typing x{typing_runs[0]['conversations']}: msgs/s (errors)",
        [f"{fmt(r['msgs_per_s'], 1)} ({r['errors']})" for r in typing_runs],
    )
    row("    p50/p95/p99 ms", [lat(r["latency"]) for r in typing_runs])
    singles = [configs[n]["single_customer"] for n in names]
    row("one customer: p50/p95/p99 ms", [lat(s["latency"]) for s in singles])
    row(
        "    greeting p50/p95 ms",
        [
            f"{fmt(s['latency_by_kind']['greet']['p50_ms'], 0)}/"
            f"{fmt(s['latency_by_kind']['greet']['p95_ms'], 0)}"
            for s in singles
        ],
    )
    row(
        "    order status p50/p95 ms",
        [
            f"{fmt(s['latency_by_kind']['status']['p50_ms'], 0)}/"
            f"{fmt(s['latency_by_kind']['status']['p95_ms'], 0)}"
            for s in singles
        ],
    )
    for name in names:
        lc = configs[name].get("long_conversation")
        if lc:
            print(
                f"long conversation ({name} Rasa, {lc['turns']} turns): median turns 1-20 "
                f"{fmt(lc['median_ms_first_20'])} ms, turns {lc['turns'] - 19}-{lc['turns']} "
                f"{fmt(lc['median_ms_last_20'])} ms, ratio {fmt(lc['growth_ratio'], 2)} "
                f"(retail demo 45 -> 195 ms, 4.33); errors {lc['errors']}"
            )
    comp = result["comparisons"]
    for name in names:
        c = comp[f"custom_action_vs_retail_demo_{name}_rasa"]
        print(
            f"custom-action turns/s, {name} Rasa: {fmt(c['msgs_per_s_at_50'])} at 50 conversations "
            f"({fmt(c['ratio_at_50'], 2)}x the retail demo's 19/s), "
            f"best {fmt(c['best_msgs_per_s'])} ({fmt(c['ratio_best'], 2)}x)"
        )
    for key, target in comp["targets"].items():
        print(f"target {key}: {'met' if target['met'] else 'MISSED'} ({target})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows (about 4 minutes)")
    parser.add_argument(
        "--configs",
        default="1,2",
        help="comma-separated numbers of Rasa processes to measure (default 1,2)",
    )
    parser.add_argument(
        "--output", default=None, help="result name under bench/results (default chat_load[_quick])"
    )
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    counts = [int(part) for part in args.configs.split(",") if part.strip()]

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop the stack

    signal.signal(signal.SIGTERM, terminate)
    started = time.monotonic()
    result: dict[str, Any] = {
        "benchmark": "chat_load",
        "mode": mode.name,
        "machine": machine_info(),
        "parameters": {
            "warmup_s": mode.warmup_s,
            "saturation_window_s": mode.saturation_s,
            "saturation_concurrency": list(mode.concurrency),
            "typing_conversations": mode.typing_conversations,
            "typing_think_s": mode.think_s,
            "typing_duration_s": mode.typing_s,
            "single_customer_turns": mode.single_turns,
            "long_conversation_turns": mode.long_turns,
            "request_timeout_s": REQUEST_TIMEOUT_S,
            "turn_texts": {kind: text for kind, (text, _) in TURNS.items()},
            "note": "client-side latency of POST /api/v1/chat; the load generator runs on the "
            "same machine as the stack (its CPU use is reported as bench_client)",
        },
        "reference": REFERENCE,
        "configurations": {},
    }
    failures: dict[str, str] = {}
    for index, count in enumerate(counts):
        try:
            result["configurations"][str(count)] = run_configuration(
                count,
                mode,
                long_conversation=index == 0,
            )
        except (SetupError, TimeoutError, RuntimeError, aiohttp.ClientError) as error:
            traceback.print_exc()
            failures[str(count)] = repr(error)
    result["failures"] = failures
    result["wall_s"] = round(time.monotonic() - started, 1)
    if result["configurations"]:
        result["comparisons"] = comparisons(result["configurations"])
    path = write_result(args.output or ("chat_load_quick" if args.quick else "chat_load"), result)
    if result["configurations"]:
        print_table(result)
    print(f"\nwall time {result['wall_s']} s; results in {path.relative_to(ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
