"""Campaign benchmark: a big campaign through the real stack to the fake Telegram peer.

    .venv/bin/python bench/campaign_bench.py [--recipients 100000] [--rate 25] [--quick]
    .venv/bin/python bench/campaign_bench.py --kill-only [--kills 20] [--crash-recipients 5000]

One stack (Rasa + app, `tests.live_stack.start_stack`) whose Telegram channel talks to the fake
Telegram Bot API on loopback (`tests/fake_telegram.py`). Measured in one run:

1. interactive reply latency with no campaign: a few customers each write "hi" every 1.5 s;
   the time from the update reaching the peer to the bot's answer arriving there;
2. a campaign to `--recipients` opted-in Telegram customers at a ceiling of `--rate` messages
   per second (`CAMPAIGN_RATE_PER_S`; the bot's overall budget `TELEGRAM_MESSAGES_PER_S` is set
   a little higher so replies have room): sustained send rate (messages accepted by the peer
   per second between the 5th and the 95th percentile of send times) as a fraction of the
   ceiling, and the same customers' reply latency while it runs (also its p95 in each tenth of
   the campaign, to see drift);
   then replies with no campaign again, on the store the campaign has grown; the p95 during
   the campaign is compared with each quiet phase and with both pooled;
3. kill -9 of the app, `--kills` times, each at a random moment (1 to 6 s after sending had
   resumed) of a second campaign, each followed by a restart: duplicates (a chat that got the
   message twice) and losses (a recipient who never got it), in total and per kill.

Writes bench/results/campaign.json (campaign_quick.json with --quick, campaign_kill9.json with
--kill-only, which runs part 3 alone). Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import fmt, latency_summary_ms, machine_info, ratio, write_result  # noqa: E402
from bot.store import campaigns as store  # noqa: E402
from bot.store.campaigns import CampaignStatus, DeliveryStatus  # noqa: E402
from bot.store.db import make_engine, session_scope  # noqa: E402
from tests.campaign_population import write_population  # noqa: E402
from tests.fake_telegram import FakeTelegram  # noqa: E402
from tests.live_stack import Stack, start_stack, wait_http  # noqa: E402

TOKEN = "7000009:campaign-bench"
CHATTERS = [9_100_001 + i for i in range(4)]


class Chatters:
    """Customers writing to the bot now and then; reply latency measured at the peer."""

    def __init__(self, fake: FakeTelegram, interval_s: float = 1.5) -> None:
        self.fake = fake
        self.interval_s = interval_s
        self.latencies: list[float] = []
        self.moments: list[float] = []  # when each measured message was sent
        self.missed = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.latencies, self.moments, self.missed = [], [], 0
        self._stop.clear()
        for chat in CHATTERS:
            thread = threading.Thread(target=self._run, args=(chat,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []

    def _run(self, chat: int) -> None:
        while not self._stop.is_set():
            seen = self.fake.chat_call_count(TOKEN, chat)
            pushed = time.monotonic()
            self.fake.send_text(TOKEN, chat, "hi")
            # waits on the peer's record of calls without scanning the growing history, so
            # the measuring side costs the same in minute 1 and in minute 60 of a campaign
            answer = self.fake.next_call(TOKEN, chat, "sendMessage", seen, timeout=30)
            if answer is None:
                self.missed += 1
            else:
                self.latencies.append(answer.at - pushed)
                self.moments.append(pushed)
            self._stop.wait(self.interval_s)


def p95_by_tenth(moments: list[float], latencies: list[float]) -> list[float | int | None]:
    """The reply p95 in each tenth of a phase (does it drift as the campaign goes on?)."""
    if not moments:
        return []
    first, last = min(moments), max(moments)
    span = (last - first) / 10 or 1.0
    tenths: list[list[float]] = [[] for _ in range(10)]
    for at, latency in zip(moments, latencies, strict=True):
        tenths[min(9, int((at - first) / span))].append(latency)
    return [latency_summary_ms(t)["p95_ms"] if t else None for t in tenths]


def measure_quiet(chatters: Chatters, seconds: float) -> list[float]:
    """Reply latencies (seconds) with no campaign running."""
    chatters.start()
    time.sleep(seconds)
    chatters.stop()
    return list(chatters.latencies)


def new_campaign(engine: Any, name: str) -> int:
    with session_scope(engine) as s:
        campaign = store.create_campaign(
            s, name, {"channel": "telegram"},
            [{"name": "A", "share": 100, "text": f"{name}: hello {{first_name}}!"}],
            quiet_start=None, quiet_end=None,
        )  # fmt: skip
        assert campaign.id is not None
        return campaign.id


def schedule(engine: Any, campaign_id: int) -> None:
    with session_scope(engine) as s:
        store.move(s, campaign_id, "schedule", store.get_campaign(s, campaign_id).created_at)


def status(engine: Any, campaign_id: int) -> CampaignStatus:
    with session_scope(engine) as s:
        return store.get_campaign(s, campaign_id).status


def campaign_calls(fake: FakeTelegram, name: str) -> list[Any]:
    prefix = f"{name}: hello"
    return [
        c
        for c in fake.calls(TOKEN, "sendMessage")
        if c.status == 200 and str(c.params.get("text", "")).startswith(prefix)
    ]


def sustained_rate(moments: list[float]) -> float | None:
    if len(moments) < 20:
        return None
    moments = sorted(moments)
    lo, hi = moments[int(len(moments) * 0.05)], moments[int(len(moments) * 0.95)]
    inside = sum(1 for m in moments if lo <= m <= hi)
    return inside / (hi - lo) if hi > lo else None


def restart_app(stack: Stack, name: str) -> subprocess.Popen[bytes]:
    log = stack.data_dir / f"{name}.out"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"], cwd=ROOT, env=stack.env,
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    wait_http(f"{stack.base_url}/healthz", 120, process, log)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=25.0, help="campaign ceiling, msg/s")
    parser.add_argument("--crash-recipients", type=int, default=5000)
    parser.add_argument(
        "--baseline-s", type=float, default=300.0, help="each no-campaign phase, before and after"
    )
    parser.add_argument("--kills", type=int, default=20, help="kill -9 this many times")
    parser.add_argument("--seed", type=int, default=7, help="for the kill moments")
    parser.add_argument("--quick", action="store_true", help="5,000 recipients, short phases")
    parser.add_argument("--kill-only", action="store_true", help="only the kill -9 runs")
    args = parser.parse_args()
    if args.quick:
        args.recipients, args.crash_recipients, args.baseline_s = 5000, 1000, 30.0
        args.kills = min(args.kills, 3)

    fake = FakeTelegram().start()
    data_dir = Path(tempfile.mkdtemp(prefix="campaign-bench-"))
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_BASE_URL": fake.base_url,
        "TELEGRAM_BASE_FILE_URL": fake.base_file_url,
        "CAMPAIGN_RATE_PER_S": str(args.rate),
        "TELEGRAM_MESSAGES_PER_S": str(args.rate + 30),  # replies keep Telegram's usual room
        "RECSYS_TRAIN_HOURS": "0",
    }  # fmt: skip
    result: dict[str, Any] = {
        "machine": machine_info(),
        "recipients": 0 if args.kill_only else args.recipients,
        "ceiling_per_s": args.rate,
        "chatters": len(CHATTERS),
    }
    stack = start_stack(data_dir, extra_env=env)
    chatters = Chatters(fake)
    try:
        engine = make_engine(f"sqlite:///{data_dir / 'shop.db'}")
        fake.wait_for(lambda: fake.calls(TOKEN, "getUpdates"), 60, "the app to poll")
        if not args.kill_only:
            big_campaign(engine, fake, chatters, data_dir, args, result)

        # 3. kill -9 at random moments of a campaign, each time a restart
        result["kill9"] = kill_and_restart(stack, engine, fake, args)
    finally:
        chatters.stop()
        stack.stop()
        fake.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    name = "campaign_kill9" if args.kill_only else "campaign_quick" if args.quick else "campaign"
    path = write_result(name, result)
    print(f"wrote {path}")


def big_campaign(
    engine: Any, fake: FakeTelegram, chatters: Chatters, data_dir: Path,
    args: argparse.Namespace, result: dict[str, Any],
) -> None:  # fmt: skip
    """Parts 1 and 2: replies with no campaign, during a big one, and with none again."""
    started = time.monotonic()
    write_population(engine, args.recipients, first_chat=1_000_000)
    result["population_write_s"] = round(time.monotonic() - started, 1)
    print(f"{args.recipients} opted-in customers written in {result['population_write_s']} s")

    # 1. replies with no campaign
    quiet_before = measure_quiet(chatters, args.baseline_s)
    quiet = latency_summary_ms(quiet_before)
    result["reply_latency_no_campaign_ms"] = quiet
    print(f"reply latency, no campaign: p50 {fmt(quiet['p50_ms'])} ms, p95 "
          f"{fmt(quiet['p95_ms'])} ms ({quiet['n']} replies, "
          f"{chatters.missed} missed)")  # fmt: skip

    # 2. the big campaign, with the same customers chatting
    big = new_campaign(engine, "Big sale")
    schedule(engine, big)
    chatters.start()
    started = time.monotonic()
    deadline = started + args.recipients / args.rate * 3 + 300
    while status(engine, big) is not CampaignStatus.done and time.monotonic() < deadline:
        time.sleep(1.0)
    elapsed = time.monotonic() - started
    chatters.stop()
    busy = latency_summary_ms(chatters.latencies)
    busy_missed = chatters.missed
    tenths = p95_by_tenth(chatters.moments, chatters.latencies)
    sent = campaign_calls(fake, "Big sale")
    rate = sustained_rate([c.at for c in sent])
    per_chat = Counter(c.chat_id for c in sent)
    result["campaign"] = {
        "delivered": len(sent),
        "distinct_chats": len(per_chat),
        "wall_s": round(elapsed, 1),
        "sustained_per_s": None if rate is None else round(rate, 1),
        "fraction_of_ceiling": ratio(rate, args.rate),
        "finished": status(engine, big) is CampaignStatus.done,
    }
    result["reply_latency_during_campaign_ms"] = busy
    result["reply_p95_during_campaign_by_tenth_ms"] = tenths
    result["reply_p95_ratio_campaign_vs_none"] = ratio(busy["p95_ms"], quiet["p95_ms"])
    print(f"campaign: {len(sent)} delivered to {len(per_chat)} chats in {elapsed:.0f} s; "
          f"sustained {fmt(rate)}/s = {fmt(ratio(rate, args.rate), 3)} of the ceiling "
          f"{args.rate:.0f}/s")  # fmt: skip
    print(f"reply latency during it: p50 {fmt(busy['p50_ms'])} ms, p95 "
          f"{fmt(busy['p95_ms'])} ms ({busy['n']} replies, {busy_missed} missed); "
          f"p95 ratio {fmt(result['reply_p95_ratio_campaign_vs_none'], 2)}; "
          f"p95 by tenth of the campaign {tenths}")  # fmt: skip

    wal = data_dir / "shop.db-wal"
    result["sqlite_wal_mib_after_campaign"] = (
        round(wal.stat().st_size / 2**20, 1) if wal.exists() else 0.0
    )

    # 2b. no campaign again, on the store the campaign has grown (100k more messages)
    quiet_after = measure_quiet(chatters, args.baseline_s)
    after = latency_summary_ms(quiet_after)
    result["reply_latency_no_campaign_after_ms"] = after
    result["reply_p95_ratio_campaign_vs_none_after"] = ratio(busy["p95_ms"], after["p95_ms"])
    print(f"reply latency, no campaign, after it: p50 {fmt(after['p50_ms'])} ms, p95 "
          f"{fmt(after['p95_ms'])} ms ({after['n']} replies); p95 ratio during/after "
          f"{fmt(result['reply_p95_ratio_campaign_vs_none_after'], 2)}")  # fmt: skip
    # The campaign runs on a store between the two quiet phases' sizes: both together are the
    # steadiest "no campaign" figure (a p95 from one short phase moves with a few slow replies).
    pooled = latency_summary_ms(quiet_before + quiet_after)
    result["reply_latency_no_campaign_pooled_ms"] = pooled
    result["reply_p95_ratio_campaign_vs_none_pooled"] = ratio(busy["p95_ms"], pooled["p95_ms"])
    print(f"reply latency, no campaign, both phases: p95 {fmt(pooled['p95_ms'])} ms "
          f"({pooled['n']} replies); p95 ratio during/none "
          f"{fmt(result['reply_p95_ratio_campaign_vs_none_pooled'], 2)}")  # fmt: skip


def kill_and_restart(
    stack: Stack, engine: Any, fake: FakeTelegram, args: argparse.Namespace
) -> dict[str, Any]:
    first, n = 2_000_000, args.crash_recipients
    write_population(engine, n, first_chat=first)
    crash = new_campaign(engine, "Crash test")
    schedule_only_range(engine, crash, first, n)
    chance = random.Random(args.seed)
    kills: list[dict[str, Any]] = []
    for _ in range(args.kills):
        # wait for sending to (re)start, then kill at a moment unrelated to any one send
        resumed_from = len(campaign_calls(fake, "Crash test"))
        fake.wait_for(
            lambda since=resumed_from: len(campaign_calls(fake, "Crash test")) > since
            or status(engine, crash) is CampaignStatus.done,
            300, "the crash-test campaign to send",
        )  # fmt: skip
        time.sleep(chance.uniform(1.0, 6.0))
        if status(engine, crash) is CampaignStatus.done:
            break
        app = stack.processes[-1]
        os.killpg(app.pid, signal.SIGKILL)
        app.wait(timeout=30)
        kills.append({"delivered_at_kill": len(campaign_calls(fake, "Crash test"))})
        restarted = time.monotonic()
        stack.processes[-1] = restart_app(stack, f"app-after-kill-{len(kills)}")
        kills[-1]["restart_s"] = round(time.monotonic() - restarted, 1)
    deadline = time.monotonic() + n / args.rate * 3 + 300
    while status(engine, crash) is not CampaignStatus.done and time.monotonic() < deadline:
        time.sleep(0.5)
    got = Counter(c.chat_id for c in campaign_calls(fake, "Crash test"))
    with session_scope(engine) as s:
        rows = store.deliveries_of(s, crash)
    uncertain = sum(1 for r in rows if r.status is DeliveryStatus.uncertain)
    lost_chats = {str(chat) for chat in range(first, first + n) if got[chat] == 0}
    lost = len(lost_chats)
    duplicates = sum(c - 1 for c in got.values() if c > 1)
    # what the restarted senders said about the rows the killed ones left in `sending`
    logs = "".join(
        (stack.data_dir / f"app-after-kill-{i}.out").read_text(errors="replace")
        for i in range(1, len(kills) + 1)
    )
    summary = {
        "recipients": n,
        "kills": len(kills),
        "each_kill": kills,
        "duplicates": duplicates,
        "lost": lost,
        "lost_per_kill": ratio(lost, len(kills)),
        "uncertain_rows": uncertain,
        "resent_after_restart": _logged_counts(logs, "claimed but never sent"),
        "left_uncertain_at_restart": _logged_counts(logs, "interrupted mid-send"),
        "lost_rows": [
            {"status": r.status.value, "error": r.error, "attempts": r.attempts}
            for r in rows
            if r.external_id in lost_chats
        ],
        "finished": status(engine, crash) is CampaignStatus.done,
    }
    print(f"{len(kills)} kill -9 during a {n}-recipient campaign (at "
          f"{[k['delivered_at_kill'] for k in kills]} delivered): duplicates {duplicates}, "
          f"lost {lost} (rows marked uncertain: {uncertain}); restarts took "
          f"{[k['restart_s'] for k in kills]} s")  # fmt: skip
    return summary


def _logged_counts(logs: str, phrase: str) -> int:
    """The sum of N over the log lines "N campaign deliveries were <phrase>…"."""
    pattern = re.compile(r"(\d+) campaign deliveries were " + re.escape(phrase))
    return sum(int(m.group(1)) for m in pattern.finditer(logs))


def schedule_only_range(engine: Any, campaign_id: int, first: int, count: int) -> None:
    """Start the crash-test campaign for its own customers only (the big campaign's customers
    already got one message today), then let the app's sender take it from there."""
    with session_scope(engine) as s:
        campaign = store.get_campaign(s, campaign_id)
        store.move(s, campaign_id, "schedule", campaign.created_at)
        recipients = [
            store.Recipient(customer_id, "telegram", external_id)
            for customer_id, external_id in _identities(s, first, count)
        ]
        store.start(s, campaign, recipients, campaign.created_at)


def _identities(session: Any, first: int, count: int) -> list[tuple[int, str]]:
    from sqlmodel import col, select

    from bot.store.models import ChannelIdentity

    ids = [str(chat) for chat in range(first, first + count)]
    rows = session.exec(
        select(ChannelIdentity.customer_id, ChannelIdentity.external_id).where(
            ChannelIdentity.channel == "telegram", col(ChannelIdentity.external_id).in_(ids)
        )
    ).all()
    return [(int(c), str(e)) for c, e in rows if c is not None]


if __name__ == "__main__":
    main()
