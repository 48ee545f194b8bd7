"""What the polling monitors share: reading the register without delaying a job, and turning
conditions into events once when they appear and once when they clear.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from gateway.journal import Journal
from gateway.monitors.health_rules import Condition, Severity, changes

_LOGGER = logging.getLogger(__name__)

LOCK_WAIT_S = 10.0  # a poll is skipped when a job holds the register this long
MAX_READ_STARTS = 5  # readings begun anew after giving way; then the poll is skipped
REGISTER_IO_TIMEOUT_S = 30.0  # all register calls of one reading together

T = TypeVar("T")


class RegisterTurns:
    """Reads the register under the worker's lock, in steps; between two steps a job waiting
    for the register goes first and the reading starts again, so a poll never delays a
    receipt and a reading is never half before a document and half after it."""

    def __init__(self, lock: asyncio.Lock, what: str) -> None:
        self._lock = lock
        self._what = what
        self._holding = False
        self.gave_way = 0  # readings given up for a job that wanted the register

    async def read(self, steps: Callable[[], Awaitable[T | None]]) -> T | None:
        """`steps()` under the lock; it returns None after `give_way()` said False. None when
        the register could not be had."""
        for _ in range(MAX_READ_STARTS):
            try:
                async with asyncio.timeout(LOCK_WAIT_S):
                    await self._lock.acquire()
            except TimeoutError:
                _LOGGER.debug("%s poll skipped: a job holds the register", self._what)
                return None
            self._holding = True
            try:
                async with asyncio.timeout(REGISTER_IO_TIMEOUT_S):
                    result = await steps()
            finally:
                if self._holding:
                    self._holding = False
                    self._lock.release()
            if result is not None:
                return result
        _LOGGER.debug("%s poll skipped: jobs kept taking the register", self._what)
        return None

    async def give_way(self) -> bool:
        """Between two steps: False when a job waiting for the register went first (the lock
        is then left to it), True when nobody wanted it (the lock is held again)."""
        self._lock.release()
        self._holding = False
        # A waiter is handed the lock on release and takes it within one loop turn.
        await asyncio.sleep(0)
        if self._lock.locked():
            self.gave_way += 1
            return False
        await self._lock.acquire()  # free and nobody queued: taken at once
        self._holding = True
        return True


class ActiveConditions:
    """The conditions active now, kept in the journal's meta table under `meta_key` so a
    restart does not raise the same alarms again."""

    def __init__(
        self, journal: Journal, meta_key: str, what: str, now: Callable[[], dt.datetime]
    ) -> None:
        self._journal = journal
        self._key = meta_key
        self._what = what
        self._now = now
        self._active: dict[str, Condition] | None = None  # loaded on the first report

    async def _load(self) -> dict[str, Condition]:
        if self._active is None:
            self._active = {}
            stored = await self._journal.meta_get(self._key)
            for item in json.loads(stored) if stored else []:
                self._active[item["kind"]] = Condition(
                    item["kind"], Severity(item["severity"]), item["message"], item["action"]
                )
        return self._active

    async def report(
        self, found: tuple[Condition, ...], context: Mapping[str, object] | None = None
    ) -> None:
        """An event for each condition raised or cleared since the last report. The active
        set is stored only once its events are, so a failed write raises them again later."""
        extra = dict(context or {})
        raised, cleared = changes(await self._load(), found)
        if not raised and not cleared:
            return
        for cond in raised:
            log = _LOGGER.error if cond.severity is Severity.CRITICAL else _LOGGER.warning
            log("%s: %s (%s)", self._what, cond.message, cond.action)
            await self._journal.add_event(
                cond.kind,
                {
                    "message": cond.message,
                    "action": cond.action,
                    "severity": cond.severity.value,
                    **extra,
                },
                now=self._now(),
            )
        for cond in cleared:
            _LOGGER.info("%s: cleared: %s", self._what, cond.message)
            await self._journal.add_event(
                "health_cleared",
                {
                    "condition": cond.kind,
                    "message": f"no longer the case: {cond.message}",
                    "action": "nothing to do",
                    **extra,
                },
                now=self._now(),
            )
        self._active = {c.kind: c for c in found}
        await self._journal.meta_set(self._key, json.dumps([c.as_dict() for c in found]))
