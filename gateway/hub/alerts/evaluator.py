"""Runs the alert rules in one process at a time (a lease in the store) and turns conditions
into incidents: opened once when a condition starts, cleared once when it ends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.hub.alerts.records import FleetRecords, IncidentRecords
from gateway.hub.alerts.rules import conditions
from gateway.hub.alerts.settings import AlertSettings
from gateway.hub.errors import StoreError
from gateway.hub.store.access import AccessStore
from gateway.hub.store.database import now_ms
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

LEASE = "alert-rules"
EXPIRE_EVERY_MS = 3600 * 1000
STORE_RETRY_S = 2.0


class RuleEvaluator:
    """One per hub process; only the lease holder evaluates."""

    def __init__(
        self,
        fleet: FleetRecords,
        incidents: IncidentRecords,
        access: AccessStore,
        settings: AlertSettings,
        *,
        owner: str,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.fleet = fleet
        self.incidents = incidents
        self.access = access
        self.settings = settings
        self.owner = owner
        self.on_change = on_change  # new messages are queued: wake the sender
        self.wake = asyncio.Event()
        self.rounds = 0
        self._expired_ms = 0

    async def run(self) -> None:
        every = self.settings.evaluate_every_s
        # Held a little past the next round: a dead holder's lease runs out within it.
        lease_ms = int(every * 3 * 1000)
        while True:
            self.wake.clear()
            try:
                if await self.access.take_lease(LEASE, self.owner, lease_ms):
                    await self.evaluate()
            except StoreError as err:
                _LOGGER.warning("Alert rules skipped: %s", err)
                await asyncio.sleep(STORE_RETRY_S)
                continue
            await wait_set(self.wake, every)

    async def evaluate(self) -> tuple[int, int]:
        """One round; (opened, cleared)."""
        boxes = await self.fleet.boxes()
        overdue = await self.fleet.overdue_writebacks()
        active = conditions(boxes, overdue, now_ms(), self.settings)
        opened = cleared = 0
        open_now = {i.key: i for i in await self.incidents.open_incidents()}
        for key, cond in active.items():
            if key in open_now:
                continue
            if await self.incidents.open(cond, self.settings.recipients(cond.box_id)):
                opened += 1
                _LOGGER.warning("Alert opened: %s", cond.text)
        for key, incident in open_now.items():
            if key in active:
                continue
            if await self.incidents.clear(incident, self.settings.recipients(incident.box_id)):
                cleared += 1
                _LOGGER.info("Alert cleared: %s", incident.text)
        self.rounds += 1
        now = now_ms()
        if now - self._expired_ms >= EXPIRE_EVERY_MS:
            self._expired_ms = now
            gone = await self.incidents.expire(now - self.settings.keep_days * 86400 * 1000)
            if gone:
                _LOGGER.info("Expired %d cleared incident(s)", gone)
        if opened or cleared:
            self.on_change()
        return opened, cleared
