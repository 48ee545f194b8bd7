"""The health monitor: polls the register's identity, ФН, OFD queue, paper, cover and shift.

Each poll (holding the worker's register lock, so no job is mid-document) yields a
`HealthReading`; `health_rules` turns it into conditions, and a condition becomes an event
when it appears and when it clears — not on every poll. The active set is kept in the
journal's meta table, so a restart does not raise the same alarms again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.config import HealthConfig
from gateway.domain import fiscal
from gateway.domain.errors import GatewayError
from gateway.journal import Journal
from gateway.monitors.health_rules import (
    Condition,
    HealthReading,
    HealthThresholds,
    Severity,
    changes,
    conditions,
)
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

LOCK_WAIT_S = 10.0  # a poll is skipped when a job holds the register this long
REGISTER_IO_TIMEOUT_S = 30.0  # all register calls of one poll together
SHIFT_SCAN_LIMIT = 200  # documents read back to find when the open shift began
META_ACTIVE = "health_conditions"
META_SHIFT_OPENED = "shift_opened_at"  # written by the worker: {"shift": n, "opened_at": iso}


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


@dataclass
class _ShiftMemo:
    number: int | None = None
    opened_at: dt.datetime | None = None
    scanned: set[int] = field(default_factory=set)


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
    ) -> None:
        self._journal = journal
        self._register = register
        self._connected = connected
        self._lock = register_lock
        self._config = config
        self._limits = HealthThresholds(
            fn_expiry_warn_days=config.fn_expiry_warn_days,
            ofd_backlog_warn_days=config.ofd_backlog_warn_days,
            min_firmware=config.min_firmware,
        )
        self._device_info = device_info
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._kick = asyncio.Event()
        self._active: dict[str, Condition] | None = None  # loaded from the journal on first poll
        self._shift = _ShiftMemo()
        self._snapshot = HealthSnapshot()
        self.polls = 0

    def snapshot(self) -> HealthSnapshot:
        """The latest state."""
        return self._snapshot

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
        if not self._connected.is_set():
            self._snapshot = _stale(self._snapshot, "register not connected")
            return None
        try:
            async with asyncio.timeout(LOCK_WAIT_S):
                await self._lock.acquire()
        except TimeoutError:
            _LOGGER.debug("Health poll skipped: a job holds the register")
            return None
        try:
            async with asyncio.timeout(REGISTER_IO_TIMEOUT_S):
                reading = await self._read()
        finally:
            self._lock.release()
        found = conditions(reading, self._limits)
        await self._report(found, reading)
        self._snapshot = HealthSnapshot(reading, found, self._now(), None, stale=False)
        return self._snapshot

    async def _read(self) -> HealthReading:
        reg = self._register
        info = self._device_info() or await reg.device_info()
        status = await reg.status()
        fn = await reg.fn_status()
        expiry = await reg.fn_expiry()
        ofd = await reg.ofd_status()
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
        if self._shift.number == number and self._shift.opened_at is not None:
            return self._shift.opened_at
        stored = await self._journal.meta_get(META_SHIFT_OPENED)
        if stored:
            memo = json.loads(stored)
            if memo.get("shift") == number:
                self._shift = _ShiftMemo(number, dt.datetime.fromisoformat(memo["opened_at"]))
                return self._shift.opened_at
        if number in self._shift.scanned:
            return None  # scanned once already without finding it; don't read the archive again
        self._shift.scanned.add(number)
        last = fn.last_document_number
        for doc_no in range(last, max(0, last - SHIFT_SCAN_LIMIT), -1):
            doc = await self._register.find_document(doc_no)
            if doc.document_type == fiscal.DOC_TYPE_SHIFT_OPEN and doc.datetime is not None:
                self._shift = _ShiftMemo(number, doc.datetime)
                return doc.datetime
            if doc.document_type == fiscal.DOC_TYPE_SHIFT_CLOSE:
                break
        return None

    async def _load_active(self) -> dict[str, Condition]:
        if self._active is None:
            self._active = {}
            stored = await self._journal.meta_get(META_ACTIVE)
            for item in json.loads(stored) if stored else []:
                self._active[item["kind"]] = Condition(
                    item["kind"], Severity(item["severity"]), item["message"], item["action"]
                )
        return self._active

    async def _report(self, found: tuple[Condition, ...], reading: HealthReading) -> None:
        active = await self._load_active()
        raised, cleared = changes(active, found)
        if not raised and not cleared:
            return
        context = {
            "model": reading.model,
            "serial": reading.serial,
            "fn_number": reading.fn_number,
        }
        for cond in raised:
            log = _LOGGER.error if cond.severity is Severity.CRITICAL else _LOGGER.warning
            log("Register health: %s (%s)", cond.message, cond.action)
            await self._journal.add_event(
                cond.kind,
                {
                    "message": cond.message,
                    "action": cond.action,
                    "severity": cond.severity.value,
                    **context,
                },
                now=self._now(),
            )
        for cond in cleared:
            _LOGGER.info("Register health: cleared: %s", cond.message)
            await self._journal.add_event(
                "health_cleared",
                {
                    "condition": cond.kind,
                    "message": f"no longer the case: {cond.message}",
                    "action": "nothing to do",
                    **context,
                },
                now=self._now(),
            )
        self._active = {c.kind: c for c in found}
        await self._journal.meta_set(META_ACTIVE, json.dumps([c.as_dict() for c in found]))


def _stale(snapshot: HealthSnapshot, error: str) -> HealthSnapshot:
    return HealthSnapshot(
        snapshot.reading, snapshot.conditions, snapshot.polled_at, error, stale=True
    )
