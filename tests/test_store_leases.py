"""Singleton leases (the Telegram poller, the campaign sender) in the store (SQLite and
PostgreSQL): a lease is held until it runs out, except that a holder killed on this machine
gives it up at once."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from bot.store import channel_state
from bot.store.db import session_scope
from tests.conftest_store import NOW, dead_pid, holder_with_pid

pytest_plugins = ("tests.store_fixtures",)

TTL = timedelta(seconds=60)


def take(engine: Engine, holder: str, seconds_later: float = 0) -> bool:
    with session_scope(engine) as session:
        now = NOW + timedelta(seconds=seconds_later)
        return channel_state.acquire_lease(session, "sender", holder, TTL, now)


def test_a_live_holder_keeps_the_lease_until_it_runs_out(store_engine: Engine) -> None:
    me, other = channel_state.lease_holder(), channel_state.lease_holder()
    assert me != other
    assert take(store_engine, me)
    assert not take(store_engine, other, 30)  # this process is alive: wait
    assert take(store_engine, me, 50)  # the holder renews
    assert not take(store_engine, other, 100)
    assert take(store_engine, other, 111)  # ran out


def test_a_holder_killed_on_this_machine_gives_the_lease_up_at_once(
    store_engine: Engine,
) -> None:
    if not channel_state.can_tell_dead_holders():
        pytest.skip("no /proc/self/ns/pid here: a dead holder cannot be told from a remote one")
    killed = holder_with_pid(dead_pid())
    assert channel_state.holder_has_died(killed)
    assert take(store_engine, killed)
    successor = channel_state.lease_holder()
    assert take(store_engine, successor, 1)
    with session_scope(store_engine) as session:
        lease = channel_state.lease_of(session, "sender")
        assert lease is not None and lease.holder == successor


@pytest.mark.parametrize(
    "holder",
    [
        f"another-{socket.gethostname()}:4026531836:1:ab",  # another machine
        "old-format-holder:12345",  # written before holders named their pid namespace
    ],
)
def test_holders_elsewhere_are_never_presumed_dead(store_engine: Engine, holder: str) -> None:
    assert not channel_state.holder_has_died(holder)
    assert take(store_engine, holder)
    assert not take(store_engine, channel_state.lease_holder(), 1)


def test_a_holder_in_another_pid_namespace_is_never_presumed_dead() -> None:
    host, _, _, tag = channel_state.lease_holder().rsplit(":", 3)
    assert not channel_state.holder_has_died(f"{host}:1:{dead_pid()}:{tag}")
