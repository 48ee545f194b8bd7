"""The clock monitor against the emulator on a real pty, the worker and a journal on disk.

The box's NTP state comes from a real flag file (the timesyncd mechanism) in the test's
directory; the register's drift is injected with the emulator's clock faults. The last tests
run the whole daemon on its built-in emulator, configured as a box would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.app.gateway import Gateway
from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.config.choices import ClockTrust, OpenShiftClockPolicy
from gateway.config.schema import ClockConfig
from gateway.engine import worker as worker_mod
from gateway.journal import JobState
from gateway.monitors.clock import UNCORRECTED_EVENT, ClockMonitor
from gateway.monitors.clock_policy import ClockAction
from gateway.monitors.timesync import BoxClockProbe
from gateway.registers.emulator.server import EmulatorServer
from tests.support import box as support_box
from tests.support import in_process as support_gateway
from tests.support.box import ShtrihBox
from tests.support.broker import free_port

WAIT_S = 30.0


@dataclass(kw_only=True)
class Box(ShtrihBox):
    @property
    def flag(self) -> Path:
        return self.tmp / "timesync-synchronized"

    def rtc_offset_s(self) -> float:
        """How far the emulated register's clock is from the host's now."""
        return (self.emulator.emulator.now() - dt.datetime.now()).total_seconds()

    def tape_offsets_s(self) -> list[float]:
        """How far each printed document's date is from the host's now (seconds)."""
        return [_offset_s(doc) for doc in self.tape()]

    def monitor(self, **cfg: Any) -> ClockMonitor:
        config = ClockConfig(**{"check_interval_s": 10, "drift_threshold_s": 30, **cfg})
        probe = BoxClockProbe(
            config.trust, flag_path=self.flag, timedatectl=None, use_adjtimex=False
        )
        return ClockMonitor(
            self.journal,
            self.register,
            self.supervisor.connected_event,
            self.worker.register_lock,
            config=config,
            probe=probe,
            wake_worker=self.worker.wake,
        )

    async def events(self) -> list[dict[str, Any]]:
        return await self.event_payloads()


SELL = {
    "type": "sell",
    "items": [
        {
            "type": "position",
            "name": "Хлеб",
            "price": 50,
            "quantity": 1,
            "amount": 50,
            "tax": {"type": "vat10"},
        }
    ],
    "payments": [{"type": "cash", "sum": 50}],
}


@pytest.fixture(autouse=True)
def fast_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_mod, "PAUSE_POLL_INTERVAL_S", 0.1)
    monkeypatch.setattr(worker_mod, "CONNECT_WAIT_S", 0.2)


def _offset_s(doc: dict[str, Any]) -> float:
    """The ФН dates a document to the minute: the middle of that minute against now, so a
    document printed with a right clock is within ±35 s."""
    printed = dt.datetime.fromisoformat(doc["datetime"]).replace(tzinfo=None)
    return (printed + dt.timedelta(seconds=30) - dt.datetime.now()).total_seconds()


@contextlib.asynccontextmanager
async def running_box(
    tmp_path: Path,
    *,
    synced: bool = True,
    clock_offset_s: float | None = None,
    shift_open_check: dict[str, Any] | None = None,
) -> AsyncIterator[Box]:
    """The emulator, a journal, the supervisor and the worker; with `shift_open_check` (the
    monitor's config) the worker asks a clock monitor before opening a shift, as in the box."""
    if clock_offset_s is not None and clock_offset_s > 0:
        # The register was registered with a right clock; its RTC went off since. (A fresh
        # emulator dates its registration report by its own RTC, which would put the last
        # document in the future and forbid setting the clock back.)
        registered = EmulatorServer(tmp_path / "emu.state")
        await registered.start_pty(link=tmp_path / "emu.tty")
        await registered.close()
    monitors: list[ClockMonitor] = []  # built once the box is: it needs the worker's lock

    async def before_shift_open() -> None:
        for monitor in monitors:
            await monitor.before_shift_open()

    def prepare(box: Box) -> dict[str, Coroutine[Any, Any, None]]:
        if shift_open_check is not None:
            monitors.append(box.monitor(**shift_open_check))
        if synced:
            box.flag.touch()
        return {}

    async with support_box.running_box(
        tmp_path,
        box_type=Box,
        clock_offset_s=clock_offset_s,
        answer_timeout_s=1.5,
        print_timeout_s=1.5,
        before_shift_open=before_shift_open if shift_open_check is not None else None,
        also=prepare,
    ) as box:
        yield box


async def test_drift_with_the_shift_closed_is_corrected(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.emulator.apply_fault("clock_offset", 95)
        monitor = box.monitor()
        decision = await monitor.check_once()
        assert decision is not None
        assert decision.action is ClockAction.SET_REGISTER
        assert abs(box.rtc_offset_s()) < 3
        events = await box.events()
        (event,) = [e for e in events if e["event"] == "clock_register_set"]
        assert 93 <= event["drift_s"] <= 97
        assert abs(event["drift_after_s"]) < 3
        assert event["message"]
        assert event["action"]
        snap = monitor.snapshot()
        assert snap.box_synced
        assert snap.sync_source == "timesyncd"
        assert snap.last_correction_at is not None
        # The next check finds it in sync: one more event (back to ok), then silence.
        assert (await monitor.check_once()).action is ClockAction.IN_SYNC  # type: ignore[union-attr]
        await monitor.check_once()
        assert (await box.kinds()).count("clock_ok") == 1
        assert box.tape() == []  # correcting the clock prints nothing


async def test_drift_with_the_shift_open_only_alerts(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("r1", SELL)  # opens a shift
        await box.wait_state("r1", JobState.DONE)
        await box.emulator.apply_fault("clock_offset", -200)
        monitor = box.monitor(correct_in_open_shift=OpenShiftClockPolicy.ALERT)
        for _ in range(3):
            decision = await monitor.check_once()
            assert decision is not None
            assert decision.action is ClockAction.ALERT_OPEN_SHIFT
        assert (await box.kinds()).count("clock_drift_in_open_shift") == 1  # on change only
        assert box.rtc_offset_s() < -190  # untouched: the register refuses it in a shift anyway
        assert [d["type"] for d in box.tape()] == ["openShift", "sell"]


async def test_drift_with_the_shift_open_closes_it_when_idle_then_corrects(
    tmp_path: Path,
) -> None:
    async with running_box(tmp_path) as box:
        await box.submit("r1", SELL)
        await box.wait_state("r1", JobState.DONE)
        # Ahead: the Z report is then dated ahead too, so the correction must also wait (a few
        # seconds here) until the box's time passes the ФН's last document.
        await box.emulator.apply_fault("clock_offset", 8)
        monitor = box.monitor(
            correct_in_open_shift=OpenShiftClockPolicy.CLOSE_SHIFT, drift_threshold_s=3
        )
        check = asyncio.create_task(monitor.check_once())
        # A receipt arrives right behind the shift close: it must open the next shift with
        # the corrected clock, so the correction has to slip in between the two jobs.
        async with asyncio.timeout(WAIT_S):
            while not monitor.snapshot().pending_close_job:
                await asyncio.sleep(0.005)
        close_uuid = monitor.snapshot().pending_close_job
        assert close_uuid is not None
        await box.submit("r2", SELL)
        async with asyncio.timeout(WAIT_S):
            decision = await check
        assert decision is not None
        assert decision.action is ClockAction.CLOSE_SHIFT
        await box.wait_state(close_uuid, JobState.DONE)
        await box.wait_state("r2", JobState.DONE)
        assert (await box.journal.get(close_uuid)).source == "system"
        tape = box.tape()
        assert [d["type"] for d in tape] == ["openShift", "sell", "closeShift", "openShift", "sell"]
        assert abs(box.rtc_offset_s()) < 2
        kinds = await box.kinds()
        # Order of events proves the order on the register: close, correct, then the new shift.
        assert (
            kinds.index("clock_shift_close_requested")
            < kinds.index("clock_register_set")
            < len(kinds) - 1 - kinds[::-1].index("shift_opened")
        )


async def test_drift_behind_with_the_shift_open_is_corrected_right_after_the_close(
    tmp_path: Path,
) -> None:
    # The register lost 150 s and dated all its documents by its own slow clock.
    async with running_box(tmp_path, clock_offset_s=-150) as box:
        await box.submit("r1", SELL)
        await box.wait_state("r1", JobState.DONE)
        monitor = box.monitor(correct_in_open_shift=OpenShiftClockPolicy.CLOSE_SHIFT)
        async with asyncio.timeout(WAIT_S):
            decision = await monitor.check_once()
        assert decision is not None
        assert decision.action is ClockAction.CLOSE_SHIFT
        assert abs(box.rtc_offset_s()) < 2
        assert "clock_correction_held" not in await box.kinds()
        assert [d["type"] for d in box.tape()] == ["openShift", "sell", "closeShift"]


async def test_fn_last_document_in_the_future_is_never_set_back(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        # The register ran an hour fast and made documents then: the ФН's last one is ahead.
        await box.emulator.apply_fault("clock_offset", 3600)
        await box.submit("s1", {"type": "openShift"}, {"type": "closeShift"})
        await box.wait_state("s1", JobState.DONE)
        monitor = box.monitor()
        decision = await monitor.check_once()
        assert decision is not None
        assert decision.action is ClockAction.FN_AHEAD
        assert box.rtc_offset_s() > 3500  # left alone
        (event,) = [e for e in await box.events() if e["event"] == "clock_fn_ahead_of_box"]
        assert "ФН" in event["message"]
        assert event["action"]


async def test_unsynchronised_box_never_touches_the_register(tmp_path: Path) -> None:
    async with running_box(tmp_path, synced=False) as box:
        await box.emulator.apply_fault("clock_offset", -900)
        monitor = box.monitor(trust=ClockTrust.AUTO)
        decision = await monitor.check_once()
        assert decision is not None
        assert decision.action is ClockAction.BOX_UNTRUSTED
        assert box.rtc_offset_s() < -890
        snap = monitor.snapshot()
        assert snap.box_synced is False
        assert snap.sync_source == "none"
        assert "clock_box_unsynchronised" in await box.kinds()
        # NTP comes back (timesyncd touches its flag): the next check corrects the register.
        box.flag.touch()
        decision = await monitor.check_once()
        assert decision is not None
        assert decision.action is ClockAction.SET_REGISTER
        assert abs(box.rtc_offset_s()) < 3


async def test_unsynchronised_box_behind_the_fn_takes_the_registers_time(tmp_path: Path) -> None:
    async with running_box(tmp_path, synced=False) as box:
        moved: list[dt.timedelta] = []
        # The box booted with a clock two hours behind (no RTC, no NTP yet). Setting the real
        # clock of the test machine is not an option, so the box's clock is read through an
        # offset and the setter records what it would do.
        behind = dt.timedelta(hours=2)
        monitor = ClockMonitor(
            box.journal,
            box.register,
            box.supervisor.connected_event,
            box.worker.register_lock,
            config=ClockConfig(check_interval_s=10, set_box_clock_from_register=True),
            probe=BoxClockProbe(
                ClockTrust.AUTO, flag_path=box.flag, timedatectl=None, use_adjtimex=False
            ),
            now=lambda: dt.datetime.now(dt.UTC) - behind,
            set_box_clock=moved.append,
        )
        decision = await monitor.check_once()
        assert decision is not None
        assert decision.action is ClockAction.SET_BOX
        (offset,) = moved
        assert abs((offset - behind).total_seconds()) < 3
        assert abs(box.rtc_offset_s()) < 3  # the register was not touched
        assert "clock_box_set_from_register" in await box.kinds()


async def test_checks_wait_for_a_job_holding_the_register(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        monitor = box.monitor()
        async with box.worker.register_lock:
            check = asyncio.create_task(monitor.check_once())
            await asyncio.sleep(0.2)
            assert not check.done()  # it waits for the lock, it does not talk to the register
            before = box.register.link.stats.bytes_out if box.register.link else 0
        decision = await check
        assert decision is not None
        assert box.register.link is not None
        assert box.register.link.stats.bytes_out > before


# --- before a shift opens -------------------------------------------------------------------


async def test_fast_register_is_set_before_the_first_shift_opens(tmp_path: Path) -> None:
    # Only the worker's call before the shift opens acts here: no periodic check runs.
    async with running_box(tmp_path, clock_offset_s=600, shift_open_check={}) as box:
        await box.submit("r1", SELL)  # the first second after connecting
        await box.wait_state("r1", JobState.DONE)
        assert [d["type"] for d in box.tape()] == ["openShift", "sell"]
        assert all(abs(offset) < 35 for offset in box.tape_offsets_s()), box.tape()
        assert abs(box.rtc_offset_s()) < 3
        kinds = await box.kinds()
        assert kinds.index("clock_register_set") < kinds.index("shift_opened")
        (event,) = [e for e in await box.events() if e["event"] == "clock_register_set"]
        assert 595 <= event["drift_s"] <= 605


async def test_untrusted_box_opens_the_shift_with_the_registers_time_and_says_why(
    tmp_path: Path,
) -> None:
    async with running_box(
        tmp_path, synced=False, clock_offset_s=600, shift_open_check={"trust": ClockTrust.AUTO}
    ) as box:
        await box.submit("r1", SELL)
        await box.wait_state("r1", JobState.DONE)
        await box.submit("r2", SELL)
        await box.wait_state("r2", JobState.DONE)
        assert [d["type"] for d in box.tape()] == ["openShift", "sell", "sell"]
        assert all(565 < offset < 635 for offset in box.tape_offsets_s()), box.tape()
        assert box.rtc_offset_s() > 590  # untouched
        # Once for the shift, not per receipt.
        (event,) = [e for e in await box.events() if e["event"] == UNCORRECTED_EVENT]
        assert "not synchronised" in event["message"]
        assert "nothing was corrected" in event["message"]
        assert "NTP" in event["action"]
        assert 595 <= event["drift_s"] <= 605
        kinds = await box.kinds()
        assert kinds.index(UNCORRECTED_EVENT) < kinds.index("shift_opened")


async def test_a_shift_waits_while_the_register_cannot_be_corrected(tmp_path: Path) -> None:
    async with running_box(
        tmp_path, synced=False, clock_offset_s=3600, shift_open_check={"trust": ClockTrust.AUTO}
    ) as box:
        # Unsynchronised, the box let the register date a shift an hour ahead.
        await box.submit("s1", {"type": "openShift"}, {"type": "closeShift"})
        await box.wait_state("s1", JobState.DONE)
        box.flag.touch()  # NTP is back: the register cannot be set back before its ФН
        await box.submit("r1", SELL)
        async with asyncio.timeout(WAIT_S):
            while box.worker.paused_reason is None:
                await asyncio.sleep(0.02)
        assert "ФН" in box.worker.paused_reason
        assert "no shift is opened" in box.worker.paused_reason
        await asyncio.sleep(0.5)  # it keeps retrying; it never opens a shift meanwhile
        assert (await box.journal.get("r1")).state is not JobState.DONE
        assert [d["type"] for d in box.tape()] == ["openShift", "closeShift"]
        assert "clock_fn_ahead_of_box" in await box.kinds()
        assert box.rtc_offset_s() > 3500


# --- the whole daemon ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_gateway(tmp_path: Path, extra: str) -> AsyncIterator[Gateway]:
    """The daemon on its built-in emulator, configured from text as a box is."""
    text = f"""
state_dir: {tmp_path / "state"}
http:
  listen: 127.0.0.1:{free_port()}
web:
  enabled: false
{extra}
"""
    async with support_gateway.running_gateway(text) as gw:
        yield gw


def _rtc_offset_s(gw: Gateway) -> float:
    assert gw.emulator is not None
    return (gw.emulator.emulator.now() - dt.datetime.now()).total_seconds()


async def _until(predicate: Any, timeout_s: float = WAIT_S) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_the_daemon_compares_on_every_connect_and_before_the_shift(tmp_path: Path) -> None:
    config = """
register:
  emulator:
    clock_offset_s: 600
clock:
  trust: always
  check_interval_s: 3600
"""
    # The built-in register was registered with a right clock before its RTC went ahead.
    (tmp_path / "state").mkdir()
    registered = EmulatorServer(tmp_path / "state" / "emulator.state")
    await registered.start_pty(link=tmp_path / "registered.tty")
    await registered.close()
    async with running_gateway(tmp_path, config) as gw:
        assert gw.emulator is not None
        assert gw.supervisor is not None
        assert gw.journal is not None
        # Connected: compared (and corrected) at once, not an interval later.
        await _until(lambda: abs(_rtc_offset_s(gw)) < 3, timeout_s=15)
        # The register jumps 10 minutes ahead and the link is re-established.
        await gw.emulator.apply_fault("clock_offset", 600)
        gw.supervisor.reconnect_now()
        await _until(lambda: abs(_rtc_offset_s(gw)) < 3, timeout_s=15)
        # Ahead again, with no reconnect this time: the worker's check before the shift.
        await gw.emulator.apply_fault("clock_offset", 600)
        parsed = parse_request(json.dumps({"uuid": "r1", "request": [SELL]}), NameMapping())
        await gw.journal.submit("r1", parsed.tasks_json, len(parsed.tasks), source="http")
        assert gw.worker is not None
        gw.worker.wake()
        async with asyncio.timeout(WAIT_S):
            while (await gw.journal.get("r1")).state is not JobState.DONE:
                await asyncio.sleep(0.05)
        tape_path = tmp_path / "state" / "emulator.state.journal.jsonl"
        tape = [json.loads(line) for line in tape_path.read_text(encoding="utf-8").splitlines()]
        assert [d["type"] for d in tape] == ["openShift", "sell"]
        assert all(abs(_offset_s(doc)) < 35 for doc in tape), tape
