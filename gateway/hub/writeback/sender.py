"""Delivers the write-back outbox: leased rows, retried with backoff, alerted when late.

A row is leased to this process while it is being sent (`FOR UPDATE SKIP LOCKED` on
PostgreSQL picks rows nobody else holds), marked delivered only under that lease, and on
failure retried after an exponential, jittered delay. A row older than `alert_after_s` is
flagged for the alert rules and still retried: nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping

from gateway.hub.config import WritebackSettings
from gateway.hub.connectors.base import Connector, WritebackFailed
from gateway.hub.errors import StoreError
from gateway.hub.model import Writeback
from gateway.hub.store import Store
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

IDLE_S = 1.0
BATCH = 50
PARALLEL = 8  # calls in flight at once (each one a possible repeat if the process dies)


class WritebackSender:
    """One per hub process."""

    def __init__(
        self,
        store: Store,
        connectors: Mapping[str, Connector],
        settings: WritebackSettings,
        *,
        owner: str,
    ) -> None:
        self.store = store
        self.connectors = connectors
        self.settings = settings
        self.owner = owner
        self.wake = asyncio.Event()
        self.delivered = 0
        self._slots = asyncio.Semaphore(PARALLEL)

    async def run(self) -> None:
        while True:
            self.wake.clear()
            try:
                rows = await self.store.outbox.claim(
                    self.owner, lease_ms=int(self.settings.lease_s * 1000), limit=BATCH
                )
            except StoreError as err:
                _LOGGER.warning("Write-back paused: %s", err)
                await asyncio.sleep(IDLE_S)
                continue
            if rows:
                await asyncio.gather(*(self._one(row) for row in rows))
                continue
            await wait_set(self.wake, IDLE_S)

    async def _one(self, row: Writeback) -> None:
        connector = self.connectors.get(row.connector)
        async with self._slots:
            try:
                if connector is None:
                    raise WritebackFailed(f"no connector {row.connector!r} in this hub")
                async with asyncio.timeout(self.settings.timeout_s + 5):
                    await connector.deliver(row)
            except (WritebackFailed, TimeoutError) as err:
                permanent = isinstance(err, WritebackFailed) and err.permanent
                await self._failed(row, str(err) or type(err).__name__, permanent=permanent)
                return
        try:
            if await self.store.outbox.delivered(row, self.owner):
                self.delivered += 1
            else:
                _LOGGER.warning("Write-back %d delivered after its lease ran out", row.id)
        except StoreError as err:
            # Delivered but not recorded: it will be sent again (the CRM keys it by uuid).
            _LOGGER.error("Write-back %d delivered, not recorded: %s", row.id, err)

    async def _failed(self, row: Writeback, error: str, *, permanent: bool = False) -> None:
        delay = min(
            self.settings.retry_max_s, self.settings.retry_min_s * 2 ** min(row.attempts, 20)
        )
        if permanent:  # it will not pass by itself: alerted now, tried again only rarely
            delay = self.settings.retry_max_s
        delay *= random.uniform(0.8, 1.2)
        try:
            overdue = await self.store.outbox.failed(
                row,
                self.owner,
                error=error,
                retry_in_ms=int(delay * 1000),
                alert_after_ms=0 if permanent else int(self.settings.alert_after_s * 1000),
            )
        except StoreError as err:
            _LOGGER.error("Write-back %d failure not recorded: %s", row.id, err)
            return
        log = _LOGGER.error if overdue else _LOGGER.info
        log(
            "Write-back %d (%s, attempt %d) failed: %s; next in %.0f s%s",
            row.id,
            row.connector,
            row.attempts + 1,
            error,
            delay,
            " - overdue, alerted" if overdue else "",
        )
