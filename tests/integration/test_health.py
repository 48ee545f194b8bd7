"""The health monitor against the emulator on a real pty and a journal on disk.

Faults are injected in the emulator (ФН expiry and warning bits, OFD backlog, paper, cover);
each threshold must raise its event once, clear once, and not again after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.config.schema import HealthConfig
from gateway.engine import worker as worker_mod
from gateway.engine.shift import META_SHIFT_OPENED
from gateway.engine.supervisor import Heartbeat, LinkState
from gateway.journal import JobState
from gateway.monitors.health import HealthMonitor
from gateway.monitors.health_rules import Severity
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.emulator.state import fresh_state, save_state
from gateway.registers.shtrih import driver as driver_mod
from tests.support import box as support_box
from tests.support.box import ShtrihBox
from tests.support.tape import read_tape, tape_of

WAIT_S = 30.0
SELL = {
    "type": "sell",
    "items": [
        {
            "type": "position",
            "name": "Соль",
            "price": 20,
            "quantity": 1,
            "amount": 20,
            "tax": {"type": "vat20"},
        }
    ],
    "payments": [{"type": "cash", "sum": 20}],
}


@dataclass(kw_only=True)
class Box(ShtrihBox):
    def monitor(self, **cfg: Any) -> HealthMonitor:
        return HealthMonitor(
            self.journal,
            self.register,
            self.supervisor.connected_event,
            self.worker.register_lock,
            config=HealthConfig(**cfg),
            device_info=lambda: self.supervisor.device,
        )

    async def events(self) -> list[dict[str, Any]]:
        return await self.event_payloads()

    async def count(self, kind: str, condition: str | None = None) -> int:
        return sum(
            1
            for e in await self.events()
            if e["event"] == kind and (condition is None or e.get("condition") == condition)
        )


@pytest.fixture(autouse=True)
def fast_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_mod, "PRINT_TIMEOUT_S", 1.5)
    monkeypatch.setattr(driver_mod, "QUERY_TIMEOUT_S", 1.5)
    monkeypatch.setattr(worker_mod, "PAUSE_POLL_INTERVAL_S", 0.1)
    monkeypatch.setattr(worker_mod, "CONNECT_WAIT_S", 0.2)


@contextlib.asynccontextmanager
async def running_box(tmp_path: Path, clock_offset_s: float | None = None) -> AsyncIterator[Box]:
    async with support_box.running_box(
        tmp_path, box_type=Box, clock_offset_s=clock_offset_s
    ) as box:
        yield box


async def test_healthy_register_reads_everything_and_raises_nothing(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("r1", SELL)
        await box.wait_state("r1", JobState.DONE)
        monitor = box.monitor(min_firmware="C.3")
        snap = await monitor.poll_once()
        assert snap is not None
        assert snap.conditions == ()
        assert not snap.stale
        body = snap.as_dict()
        json.dumps(body)
        reading = body["reading"]
        state = box.emulator.state
        assert reading["model"] == "ШТРИХ-М-01Ф"
        assert reading["serial"] == str(state.identity.serial)
        assert reading["firmware_version"] == "C3"
        assert reading["firmware_build"] == 62776
        assert reading["fn_number"] == state.identity.fn_number
        assert reading["fn_expiry"] == state.identity.fn_expiry.isoformat()
        assert reading["fn_last_document"] == state.documents[-1].number
        assert reading["paper_present"] is True
        assert reading["cover_open"] is False
        assert reading["shift_state"] == "opened"
        assert reading["shift_age_h"] is not None
        assert reading["shift_age_h"] < 0.1
        assert reading["ofd_unsent"] is not None
        assert [e["event"] for e in await box.events() if e["event"] != "shift_opened"] == [
            "register_identified"
        ]


async def test_thresholds_fire_once_and_clear_once(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        today = box.emulator.emulator.now().date()
        await box.emulator.apply_fault("fn_expiry", (today + dt.timedelta(days=10)).isoformat())
        await box.emulator.apply_fault("fn_warnings", 0b1000)  # OFD timeout
        await box.emulator.apply_fault("paper_out", True)
        monitor = box.monitor(fn_expiry_warn_days=30, min_firmware="C.4")
        for _ in range(3):
            snap = await monitor.poll_once()
        assert snap is not None
        kinds = sorted(c.kind for c in snap.conditions)
        # The register itself also sets "resource < 30 days" from the expiry date.
        assert kinds == [
            "firmware_outdated",
            "fn_expiring",
            "fn_ofd_timeout",
            "fn_resource_exhausted",
            "paper_out",
        ]
        for kind in kinds:
            assert await box.count(kind) == 1, kind  # three polls, one event each
        (expiring,) = [e for e in await box.events() if e["event"] == "fn_expiring"]
        assert "10 days" in expiring["message"]
        assert expiring["action"]
        await box.emulator.apply_fault("paper_out", False)
        await box.emulator.apply_fault("cover_open", True)
        for _ in range(2):
            await monitor.poll_once()
        assert await box.count("health_cleared", "paper_out") == 1
        assert await box.count("cover_open") == 1
        # A restart of the daemon: a new monitor on the same journal raises nothing again.
        again = box.monitor(fn_expiry_warn_days=30, min_firmware="C.4")
        await again.poll_once()
        for kind in ("fn_expiring", "fn_ofd_timeout", "cover_open", "firmware_outdated"):
            assert await box.count(kind) == 1, kind


async def test_old_ofd_backlog_and_a_day_old_shift(tmp_path: Path) -> None:
    # The register worked five days ago with no route to the OFD, and nobody closed the shift.
    async with running_box(tmp_path, clock_offset_s=-5 * 86400) as box:
        await box.emulator.apply_fault("ofd_drain", False)
        await box.submit("r1", SELL)
        await box.wait_state("r1", JobState.DONE)
        await box.emulator.apply_fault("clock_offset", 0)
        monitor = box.monitor(ofd_backlog_warn_days=3)
        snap = await monitor.poll_once()
        assert snap is not None
        kinds = {c.kind for c in snap.conditions}
        assert {"ofd_backlog_old", "shift_over_24h"} <= kinds
        reading = snap.as_dict()["reading"]
        assert reading["ofd_unsent"] == 2  # the shift-open document and the receipt
        assert 4.9 < reading["ofd_oldest_age_days"] < 5.1
        assert reading["shift_age_h"] > 24
        # The OFD catches up: the backlog condition clears by itself.
        await box.emulator.apply_fault("ofd_ack", 10)
        snap = await monitor.poll_once()
        assert snap is not None
        assert "ofd_backlog_old" not in {c.kind for c in snap.conditions}
        assert await box.count("health_cleared", "ofd_backlog_old") == 1


async def test_unreachable_register_marks_the_snapshot_stale(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        monitor = box.monitor()
        assert (await monitor.poll_once()) is not None
        box.supervisor.link_down_now("test: cable pulled")
        assert await monitor.poll_once() is None
        snap = monitor.snapshot()
        assert snap.stale
        assert snap.error == "register not connected"
        assert snap.reading is not None  # the last good reading stays visible


# --- a silent register; a journal behind the register ----------------------------------------


async def test_a_silent_register_with_its_port_open_is_not_reported_connected(
    tmp_path: Path,
) -> None:
    """The emulator's `silent` fault: the port stays open, every byte goes in, nothing comes
    back. The supervisor's heartbeat must see it, and the box must stop saying "connected"."""
    beat = Heartbeat(interval_s=0.2, failures=3, timeout_s=1.0)
    async with support_box.running_box(
        tmp_path, box_type=Box, heartbeat=beat, share_lock=True, answer_timeout_s=0.3
    ) as box:
        monitor = box.monitor()
        assert await monitor.poll_once() is not None
        beats = box.supervisor.heartbeats
        await support_box.wait_until(lambda: box.supervisor.heartbeats >= beats + 2)
        device = box.emulator.device
        await box.emulator.apply_fault("silent", True)
        await box.wait_link(LinkState.DISCONNECTED, LinkState.CONNECTING)
        assert box.emulator.device == device  # no unplug, no EOF: only silence
        assert not box.supervisor.connected_event.is_set()
        (event,) = [e for e in await box.events() if e["event"] == "register_unresponsive"]
        assert "heartbeats" in event["message"]
        assert await monitor.poll_once() is None
        assert monitor.snapshot().stale
        # It stays down while silent: reconnecting cannot get an answer either.
        await asyncio.sleep(1.0)
        assert box.supervisor.state is not LinkState.CONNECTED
        await box.emulator.apply_fault("silent", False)
        await box.wait_link(LinkState.CONNECTED)
        assert await monitor.poll_once() is not None
        assert not monitor.snapshot().stale


async def test_documents_the_journal_lost_are_reported_with_their_numbers(tmp_path: Path) -> None:
    """A journal that lost its last commits (as a damaged write-ahead log after a power cut
    leaves it: an older state of the file) faces a register that printed more."""
    journal_file = tmp_path / "journal.sqlite3"
    older = tmp_path / "journal.older"
    async with running_box(tmp_path) as box:
        await box.submit("r1", SELL)
        await box.wait_state("r1", JobState.DONE)
        known = box.tape()[-1]["number"]
    shutil.copyfile(journal_file, older)  # closed: everything is in the main file
    async with running_box(tmp_path) as box:
        for uuid in ("r2", "r3"):
            await box.submit(uuid, SELL)
            await box.wait_state(uuid, JobState.DONE)
        printed = box.tape()[-1]["number"]
        assert not [e for e in await box.events() if e["event"] == "journal_behind_register"]
    assert printed == known + 2
    shutil.copyfile(older, journal_file)  # the last commits are gone
    async with running_box(tmp_path) as box:
        (event,) = [e for e in await box.events() if e["event"] == "journal_behind_register"]
        assert (event["journal_last"], event["register_last"]) == (known, printed)
        assert event["fn_number"] == box.emulator.state.identity.fn_number
        assert f"{known + 1}–{printed}" in event["message"]
        assert event["action"]
        gap = box.supervisor.journal_gap
        assert gap is not None
        assert gap.missing == 2
        snap = await box.monitor().poll_once()
        assert snap is not None
        (condition,) = [c for c in snap.conditions if c.kind == "journal_behind_register"]
        assert condition.severity is Severity.WARNING
        assert f"{known + 1}–{printed}" in condition.message
    # The next start compares again: the register is no longer ahead of what was noted.
    async with running_box(tmp_path) as box:
        assert box.supervisor.journal_gap is None
        snap = await box.monitor().poll_once()
        assert snap is not None
        assert "journal_behind_register" not in {c.kind for c in snap.conditions}
        events = [e for e in await box.events() if e["event"] == "journal_behind_register"]
        assert len(events) == 1


async def test_a_register_behind_the_journal_is_refused_until_a_technician_accepts_it(
    tmp_path: Path,
) -> None:
    """Same serial and ФН number, fewer documents than the journal recorded on that ФН
    (another register on the port, a restored state): not the register the box printed on."""
    async with running_box(tmp_path) as box:
        for uuid in ("r1", "r2"):
            await box.submit(uuid, SELL)
            await box.wait_state(uuid, JobState.DONE)
        printed = box.tape()[-1]["number"]
        identity = box.emulator.state.identity
        await box.emulator.close()
        other = tmp_path / "other.state"
        state = fresh_state(dt.datetime.now(), serial=identity.serial, fn_number=identity.fn_number)
        await asyncio.to_thread(save_state, other, state)
        box.emulator = EmulatorServer(other)
        await box.emulator.start_pty(link=box.link)
        box.supervisor.reconnect_now()
        await box.wait_link(LinkState.REFUSED)
        assert "behind" in (box.supervisor.last_error or "")
        (event,) = [e for e in await box.events() if e["event"] == "register_behind_journal"]
        assert (event["journal_last"], event["register_last"]) == (printed, 1)
        assert event["action"]
        await box.submit("r3", SELL)
        await asyncio.sleep(0.5)
        assert (await box.journal.get("r3")).state is JobState.QUEUED  # nothing printed
        assert read_tape(tape_of(other)) == []
        monitor = box.monitor()
        assert await monitor.poll_once() is None  # not connected
        (condition,) = [
            c for c in monitor.snapshot().conditions if c.kind == "register_behind_journal"
        ]
        assert condition.severity is Severity.CRITICAL
        assert str(printed) in condition.message
        # Still refused at the next look, without a second alarm.
        box.supervisor.reconnect_now()
        await asyncio.sleep(0.3)
        await box.wait_link(LinkState.REFUSED)
        assert await box.count("register_behind_journal") == 1
        # A technician accepts it: it prints, and the condition clears.
        box.supervisor.accept_register()
        await box.wait_state("r3", JobState.DONE)
        assert [d["type"] for d in read_tape(tape_of(other))] == ["openShift", "sell"]
        await monitor.poll_once()
        assert "register_behind_journal" not in {c.kind for c in monitor.snapshot().conditions}
        # and stays accepted after a reconnect
        box.supervisor.reconnect_now()
        await asyncio.sleep(0.3)
        await box.wait_link(LinkState.CONNECTED)
        assert await box.count("register_behind_journal") == 1


async def test_a_shift_opened_outside_the_box_is_found_once_and_noted_for_the_worker(
    tmp_path: Path,
) -> None:
    async with running_box(tmp_path) as box:
        async with box.worker.register_lock:  # as someone at the register's keyboard
            await box.register.open_shift()
        (opened,) = [d for d in box.tape() if d["type"] == "openShift"]
        monitor = box.monitor()
        snap = await monitor.poll_once()
        assert snap is not None
        assert snap.reading is not None
        assert snap.reading.shift_opened_at == dt.datetime.fromisoformat(opened["datetime"])
        # One memo: what the monitor found is what the worker reads (and the other way round).
        memo = json.loads(await box.journal.meta_get(META_SHIFT_OPENED) or "{}")
        assert memo == {"shift": snap.reading.shift_number, "opened_at": opened["datetime"]}
        await box.submit("q1", {"type": "getShiftStatus"})
        job = await box.wait_state("q1", JobState.DONE)
        expires = job.task_results[0].result["shiftStatus"]["expiredTime"]
        assert (
            expires
            == (dt.datetime.fromisoformat(opened["datetime"]) + dt.timedelta(hours=24)).isoformat()
        )


async def test_a_poll_gives_way_to_a_job_waiting_for_the_register(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("r1", SELL)
        await box.wait_state("r1", JobState.DONE)
        monitor = box.monitor()
        lock = box.worker.register_lock
        poll = asyncio.create_task(monitor.poll_once())
        async with asyncio.timeout(WAIT_S):
            while not lock.locked():
                await asyncio.sleep(0)
            # A job queued behind the poll gets the register after at most one read.
            async with lock:
                assert not poll.done()
                await box.register.status()
            snap = await poll
        assert monitor.gave_way >= 1
        assert snap is not None
        assert not snap.stale  # the reading started again once the job was done
        assert snap.reading is not None
        assert snap.reading.fn_last_document == box.emulator.state.documents[-1].number
