"""The health monitor: polls the register's identity, ФН, OFD queue, paper, cover and shift.

Each poll (holding the worker's register lock, so no job is mid-document) yields a
`HealthReading`. Between two reads it lets a job waiting for the register go first, then
reads again from the start, so a poll never delays a receipt and a reading is never half
before a document and half after it. `health_rules` turns it into conditions, and a condition becomes an event
when it appears and when it clears — not on every poll. The active set is kept in the
journal's meta table, so a restart does not raise the same alarms again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from gateway.config.schema import HealthConfig
from gateway.domain import fiscal
from gateway.domain.errors import GatewayError
from gateway.engine.journal_check import JournalGap, stored_gap
from gateway.engine.journal_faults import JournalFault
from gateway.engine.shift import ShiftMemo
from gateway.journal import Journal
from gateway.monitors.health_rules import (
    Condition,
    HealthReading,
    HealthThresholds,
    Severity,
    conditions,
    journal_fault_condition,
    journal_gap_condition,
)
from gateway.monitors.polling import ActiveConditions, RegisterTurns
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

META_ACTIVE = "health_conditions"


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """The latest reading and the conditions active in it."""

    reading: HealthReading | None = None
    conditions: tuple[Condition, ...] = ()
    polled_at: dt.datetime | None = None
    error: str | None = None
    stale: bool = True  # the last poll did not reach the register

    @property
    def worst(self) -> Severity | None:
        """The most urgent active severity."""
        if any(c.severity is Severity.CRITICAL for c in self.conditions):
            return Severity.CRITICAL
        return Severity.WARNING if self.conditions else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for /health and telemetry."""
        return {
            "reading": self.reading.as_dict() if self.reading else None,
            "conditions": [c.as_dict() for c in self.conditions],
            "worst": self.worst.value if self.worst else None,
            "polled_at": self.polled_at.isoformat() if self.polled_at else None,
            "error": self.error,
            "stale": self.stale,
        }


class HealthMonitor:
    """Polls the register every `health.poll_interval_s`; one per register."""

    def __init__(
        self,
        journal: Journal,
        register: fiscal.Register,
        connected: asyncio.Event,
        register_lock: asyncio.Lock,
        *,
        config: HealthConfig,
        device_info: Callable[[], fiscal.DeviceInfo | None] = lambda: None,
        now: Callable[[], dt.datetime] | None = None,
        journal_fault: Callable[[], JournalFault | None] = lambda: None,
    ) -> None:
        self._journal = journal
        self._register = register
        self._connected = connected
        self._config = config
        self._limits = HealthThresholds(
            fn_expiry_warn_days=config.fn_expiry_warn_days,
            ofd_backlog_warn_days=config.ofd_backlog_warn_days,
            min_firmware=config.min_firmware,
        )
        self._device_info = device_info
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._kick = asyncio.Event()
        self._active = ActiveConditions(journal, META_ACTIVE, "Register health", self._now)
        self._shift = ShiftMemo(journal, register)
        self._snapshot = HealthSnapshot()
        self._journal_fault = journal_fault  # the worker's: read live, not on a poll
        self._journal_gap: JournalGap | None = None
        self._turns = RegisterTurns(register_lock, "Health")
        self.polls = 0

    @property
    def gave_way(self) -> int:
        """Readings given up for a job that wanted the register."""
        return self._turns.gave_way

    def snapshot(self) -> HealthSnapshot:
        """The latest state, with the box's own conditions as they are now.

        Those (the journal cannot commit; the register holds documents the journal does not
        know) are reported as events by the part that found them, not again here.
        """
        box: list[Condition] = []
        fault = self._journal_fault()
        if fault is not None:
            box.append(
                journal_fault_condition(fault.kind.value, fault.reason, fault.action, fault.error)
            )
        if self._journal_gap is not None:
            gap = self._journal_gap
            box.append(journal_gap_condition(gap.message, gap.action, behind=gap.behind))
        if not box:
            return self._snapshot
        snap = self._snapshot
        return replace(snap, conditions=(*box, *snap.conditions))

    def poll_now(self) -> None:
        """Poll without waiting for the interval (e.g. right after the register reconnects)."""
        self._kick.set()

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            try:
                await self.poll_once()
            except (GatewayError, OSError) as err:
                _LOGGER.warning("Health poll failed: %s", err)
                self._snapshot = _stale(self._snapshot, str(err))
            await wait_set(self._kick, self._config.poll_interval_s)
            self._kick.clear()

    async def poll_once(self) -> HealthSnapshot | None:
        """Read, evaluate, raise/clear events; None when the register was not reachable."""
        try:
            return await self._poll()
        finally:
            self.polls += 1  # counted once finished, so a reader sees this poll's snapshot

    async def _poll(self) -> HealthSnapshot | None:
        self._journal_gap = await stored_gap(self._journal)
        if not self._connected.is_set():
            self._snapshot = _stale(self._snapshot, "register not connected")
            return None
        reading = await self._read_whole()
        if reading is None:
            return None
        found = conditions(reading, self._limits)
        # The reading counts even when its events cannot be written (a full journal): they
        # are raised on a later poll, as the active set is only stored once they are.
        self._snapshot = HealthSnapshot(reading, found, self._now(), None, stale=False)
        await self._report(found, reading)
        return self.snapshot()

    async def _read_whole(self) -> HealthReading | None:
        """One reading under the register lock; None when the poll is skipped."""
        return await self._turns.read(self._read)

    async def _read(self) -> HealthReading | None:
        """The register's state; None when it gave way to a job (the state may have moved)."""
        reg = self._register
        info = self._device_info() or await reg.device_info()
        if not await self._turns.give_way():
            return None
        status = await reg.status()
        if not await self._turns.give_way():
            return None
        fn = await reg.fn_status()
        if not await self._turns.give_way():
            return None
        expiry = await reg.fn_expiry()
        if not await self._turns.give_way():
            return None
        ofd = await reg.ofd_status()
        if not await self._turns.give_way():
            return None
        read_at = status.datetime or await reg.read_clock()
        opened = await self._shift_opened_at(status, fn)
        return HealthReading(
            read_at=read_at,
            model=info.model,
            serial=info.serial,
            firmware_version=info.firmware_version,
            firmware_build=info.firmware_build,
            firmware_date=info.firmware_date,
            fn_number=fn.number,
            fn_expiry=expiry,
            fn_phase=fn.life_phase,
            fn_warnings=fn.warnings,
            fn_last_document=fn.last_document_number,
            ofd_unsent=ofd.unsent_count,
            ofd_oldest=ofd.first_unsent_datetime,
            paper_present=status.paper_present,
            cover_open=status.cover_open,
            shift_state=status.shift,
            shift_number=status.shift_number,
            shift_opened_at=opened,
        )

    async def _shift_opened_at(
        self, status: fiscal.RegisterStatus, fn: fiscal.FnStatus
    ) -> dt.datetime | None:
        """When the open shift began: the worker's note, else the ФН's shift-open document."""
        number = status.shift_number
        if status.shift is fiscal.ShiftState.CLOSED or number is None:
            return None
        return await self._shift.opened_at(number, last_document=fn.last_document_number)

    async def _report(self, found: tuple[Condition, ...], reading: HealthReading) -> None:
        context = {
            "model": reading.model,
            "serial": reading.serial,
            "fn_number": reading.fn_number,
        }
        await self._active.report(found, context)


def _stale(snapshot: HealthSnapshot, error: str) -> HealthSnapshot:
    return HealthSnapshot(
        snapshot.reading, snapshot.conditions, snapshot.polled_at, error, stale=True
    )
