"""The health monitor against the emulator on a real pty and a journal on disk.

Faults are injected in the emulator (ФН expiry and warning bits, OFD backlog, paper, cover);
each threshold must raise its event once, clear once, and not again after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.atol.tasks import NameMapping, parse_request
from gateway.config import HealthConfig
from gateway.engine import worker as worker_mod
from gateway.engine.supervisor import RegisterSupervisor
from gateway.engine.worker import ShiftPolicy, Worker
from gateway.journal import JobState, Journal
from gateway.monitors.health import HealthMonitor
from gateway.registers.emulator.server import EmulatorServer
from gateway.registers.shtrih import driver as driver_mod
from gateway.registers.shtrih.driver import ShtrihRegister

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


@dataclass
class Box:
    journal: Journal
    register: ShtrihRegister
    supervisor: RegisterSupervisor
    worker: Worker
    emulator: EmulatorServer

    def monitor(self, **cfg: Any) -> HealthMonitor:
        return HealthMonitor(
            self.journal,
            self.register,
            self.supervisor.connected_event,
            self.worker.register_lock,
            config=HealthConfig(**cfg),
            device_info=lambda: self.supervisor.device,
        )

    async def submit(self, uuid: str, *tasks: dict[str, Any]) -> None:
        parsed = parse_request(json.dumps({"uuid": uuid, "request": list(tasks)}), NameMapping())
        await self.journal.submit(uuid, parsed.tasks_json, len(parsed.tasks), source="http")
        self.worker.wake()

    async def wait_state(self, uuid: str, *states: JobState) -> None:
        async with asyncio.timeout(WAIT_S):
            while (await self.journal.get(uuid)).state not in states:
                await asyncio.sleep(0.02)

    async def events(self) -> list[dict[str, Any]]:
        rows = await self.journal.outbox_pending(limit=1000, kinds=["event"])
        return [json.loads(r.payload_json) for r in rows]

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
    emulator = EmulatorServer(tmp_path / "emu.state", clock_offset_s=clock_offset_s)
    await emulator.start_pty(link=tmp_path / "emu.tty")
    journal = await Journal.open(tmp_path / "journal.sqlite3")
    register = ShtrihRegister(str(tmp_path / "emu.tty"))
    supervisor = RegisterSupervisor(register, journal=journal)
    worker = Worker(
        journal, register, supervisor.connected_event, mapping=NameMapping(), policy=ShiftPolicy()
    )
    box = Box(journal, register, supervisor, worker, emulator)
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(supervisor.run()), tg.create_task(worker.run())]
        assert await supervisor.wait_connected(WAIT_S)
        try:
            yield box
        finally:
            for task in tasks:
                task.cancel()
    await register.close()
    await emulator.close()
    await journal.close()


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
