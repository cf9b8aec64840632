"""Which claimed campaign deliveries a killed sender had handed to a channel, and which not.

The sender marks a delivery `sending` (the claim) in a store transaction, then sends it. A
sender killed in between leaves the row in `sending` without knowing whether it went out:
Telegram has no idempotency key, so resending could duplicate it, and not resending could
lose it. This journal tells the two apart. It is a local append-only file with two kinds of
line, `claim` (written inside the claim transaction, before its commit) and `wire` (written by
the channel just before the request leaves the process, `channels.base.announce_wire`). A kill
-9 does not lose what a process wrote to a file (the kernel holds it), so after a restart a row
in `sending` whose claim is here, with no `wire` line, was never sent and can go out again.

Only lines of the current boot count (a power cut can lose unflushed lines: after a reboot
every interrupted row stays `uncertain`), only claims by a holder that has died on this machine
(`channel_state.holder_has_died`: a live sender that lost its lease may still send its rows),
and a damaged line makes the whole journal untrusted. The file turns over at `rotate_bytes`
(the previous one is kept and read too; a claim in flight is always far newer than that).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

from ..store.channel_state import holder_has_died

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
CLAIM, WIRE = "claim", "wire"


def boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""  # no boot id: nothing is journalled, interrupted rows stay uncertain


class WireJournal:
    def __init__(self, path: Path, holder: str, rotate_bytes: int = 8 << 20) -> None:
        self.path = Path(path)
        self.previous = self.path.with_name(self.path.name + ".1")
        self.holder = holder
        self.boot = boot_id()
        self.rotate_bytes = rotate_bytes
        self._fd: int | None = None
        self._lock = threading.Lock()  # claims come from the store thread, wire marks from the loop

    def claimed(self, delivery_ids: Iterable[int]) -> None:
        self._append(CLAIM, delivery_ids)

    def on_wire(self, delivery_id: int) -> None:
        self._append(WIRE, [delivery_id])

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _append(self, kind: str, delivery_ids: Iterable[int]) -> None:
        if not self.boot:
            return
        data = "".join(f"{self.boot} {self.holder} {kind} {i}\n" for i in delivery_ids).encode()
        if not data:
            return
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            view = memoryview(data)
            while view:  # one write() for a few lines; the loop only guards a short write
                view = view[os.write(self._fd, view) :]
            if os.fstat(self._fd).st_size > self.rotate_bytes:
                os.replace(self.path, self.previous)
                os.close(self._fd)
                self._fd = None

    def never_sent(self) -> set[int]:
        """Deliveries claimed by a sender that died on this machine, in this boot, and never
        handed to a channel."""
        if not self.boot:
            return set()
        claims: dict[int, str] = {}
        wired: set[int] = set()
        for path in (self.previous, self.path):
            try:
                lines = path.read_text().splitlines()
            except FileNotFoundError:
                continue
            except (OSError, UnicodeDecodeError):
                return set()
            for line in lines:
                parts = line.split(" ")
                if len(parts) != 4 or parts[2] not in (CLAIM, WIRE) or not parts[3].isdigit():
                    return set()  # damaged: trust none of it
                boot, holder, kind, delivery = parts
                if boot != self.boot:
                    continue
                if kind == CLAIM:
                    claims[int(delivery)] = holder
                else:
                    wired.add(int(delivery))
        dead = {h: holder_has_died(h) for h in set(claims.values())}
        return {d for d, holder in claims.items() if d not in wired and dead[holder]}
