"""The supervisor's heartbeat against the emulator on a real pty, with the worker and a journal.

A register that hangs keeps its port open: nothing fails until someone talks to it. The
emulator's `slow_bytes` fault makes it that register: it still reads, but every byte it sends
takes seconds, so no answer ever completes, while the pty stays where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.engine import worker as worker_mod
from gateway.engine.supervisor import Heartbeat, LinkState
from gateway.journal import JobState
from tests.support import box as support_box
from tests.support.box import ShtrihBox

pytestmark = pytest.mark.timeout(120)

WAIT_S = 60.0
SILENT_BYTE_S = 3.0  # per byte the register sends: longer than any wait of the host's
HEARTBEAT = Heartbeat(interval_s=0.2, failures=3, timeout_s=1.0)


@dataclass(kw_only=True)
class Box(ShtrihBox):
    async def events(self, kind: str) -> list[dict[str, Any]]:
        return [p for p in await self.event_payloads() if p["event"] == kind]

    def bytes_out(self) -> int:
        link = self.register.link
        return link.stats.bytes_out if link is not None else 0


@pytest.fixture(autouse=True)
def fast_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_mod, "PAUSE_POLL_INTERVAL_S", 0.1)
    monkeypatch.setattr(worker_mod, "CONNECT_WAIT_S", 0.2)


@contextlib.asynccontextmanager
async def running_box(tmp_path: Path) -> AsyncIterator[Box]:
    async with support_box.running_box(
        tmp_path, box_type=Box, answer_timeout_s=1.0, heartbeat=HEARTBEAT, share_lock=True
    ) as box:
        yield box


async def until(predicate: Any, timeout_s: float = WAIT_S) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_a_register_silent_with_its_port_open_is_reconnected(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        beats = box.supervisor.heartbeats
        await until(lambda: box.supervisor.heartbeats >= beats + 2)  # polled while idle
        device = box.emulator.device
        await box.emulator.apply_fault("slow_bytes", SILENT_BYTE_S)
        async with asyncio.timeout(WAIT_S):
            while not await box.events("register_unresponsive"):
                await asyncio.sleep(0.05)
        assert LinkState.DISCONNECTED in box.states
        assert box.emulator.device == device  # the port never went away: no unplug, no EOF
        (event,) = await box.events("register_unresponsive")
        assert "3 heartbeats" in event["message"]
        assert event["action"]
        # A job that arrives meanwhile waits; it is not lost and not printed on a dead link.
        await box.submit("q1", {"type": "getDeviceStatus"})
        await asyncio.sleep(0.5)
        assert (await box.journal.get("q1")).state is not JobState.DONE
        # The register answers again: the supervisor reconnects and the queue resumes.
        await box.emulator.apply_fault("slow_bytes", 0)
        async with asyncio.timeout(WAIT_S):
            while (await box.journal.get("q1")).state is not JobState.DONE:
                await asyncio.sleep(0.05)
        assert box.supervisor.state is LinkState.CONNECTED
        assert box.states.count(LinkState.CONNECTED) >= 1
        assert box.supervisor.last_error is None


async def test_no_heartbeat_talks_across_a_job(tmp_path: Path) -> None:
    async with running_box(tmp_path) as box:
        beats = box.supervisor.heartbeats
        await until(lambda: box.supervisor.heartbeats > beats)
        async with box.worker.register_lock:  # as a job holds it
            held_beats, held_bytes = box.supervisor.heartbeats, box.bytes_out()
            await asyncio.sleep(1.5)  # several intervals, more than `failures` of them
            assert box.supervisor.heartbeats == held_beats
            assert box.bytes_out() == held_bytes
        await until(lambda: box.supervisor.heartbeats > held_beats)
        assert box.supervisor.state is LinkState.CONNECTED
        assert box.states == [LinkState.CONNECTING, LinkState.CONNECTED]  # never dropped
