"""The campaign sender's wire journal: which claimed deliveries a killed sender never sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.campaigns.wire_journal import WireJournal, boot_id
from bot.store.channel_state import can_tell_dead_holders, lease_holder
from tests.conftest_store import dead_pid, holder_with_pid

pytestmark = pytest.mark.skipif(
    not boot_id() or not can_tell_dead_holders(),
    reason="no Linux boot id or pid namespace here: the journal is off and recovery conservative",
)


def test_claims_without_a_wire_line_of_a_dead_sender_were_never_sent(tmp_path: Path) -> None:
    path = tmp_path / "campaign-wire.log"
    killed = WireJournal(path, holder_with_pid(dead_pid()))
    killed.claimed([1, 2, 3, 4])
    killed.on_wire(1)
    killed.on_wire(3)
    killed.close()
    assert WireJournal(path, lease_holder()).never_sent() == {2, 4}


def test_a_live_senders_claims_are_left_alone(tmp_path: Path) -> None:
    """A sender that lost its lease but still runs may yet send what it claimed."""
    path = tmp_path / "campaign-wire.log"
    alive = WireJournal(path, lease_holder())
    alive.claimed([5, 6])
    assert WireJournal(path, lease_holder()).never_sent() == set()


def test_a_later_claim_counts_and_an_earlier_wire_line_keeps_a_row_uncertain(
    tmp_path: Path,
) -> None:
    path = tmp_path / "campaign-wire.log"
    first, second = holder_with_pid(dead_pid()), holder_with_pid(dead_pid())
    WireJournal(path, first).claimed([7, 8])
    WireJournal(path, first).on_wire(7)  # went out, then came back as a retry
    WireJournal(path, second).claimed([7, 8])  # claimed again by the next sender, which died
    assert WireJournal(path, lease_holder()).never_sent() == {8}


def test_lines_of_an_earlier_boot_and_damaged_journals_are_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "campaign-wire.log"
    dead = holder_with_pid(dead_pid())
    path.write_text(f"an-earlier-boot {dead} claim 9\n{boot_id()} {dead} claim 10\n")
    assert WireJournal(path, lease_holder()).never_sent() == {10}
    with path.open("a") as journal:
        journal.write(f"{boot_id()} {dead} cla")  # a torn line
    assert WireJournal(path, lease_holder()).never_sent() == set()


def test_the_journal_turns_over_and_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "campaign-wire.log"
    journal = WireJournal(path, holder_with_pid(dead_pid()), rotate_bytes=2_000)
    for delivery in range(100):
        journal.claimed([delivery])
        if delivery % 2:
            journal.on_wire(delivery)
    journal.close()
    assert path.with_name("campaign-wire.log.1").exists()
    assert path.stat().st_size <= 2_000 + 200
    found = WireJournal(path, lease_holder()).never_sent()
    assert found and found <= set(range(0, 100, 2))
    assert max(found) == 98  # the newest claims are always there
