"""Publishes each box's due orders, oldest first, while the box is online.

A box's orders are published by one process at a time (the box's dispatch lease in the
store), each with a sequence number allocated in the same transaction, so they reach the box
in order and a replay is impossible. An order is sent again every `resend_s` until acked and
every `reask_s` until its result came (the box answers a known uuid from its journal and
never prints twice). A box that is offline is skipped; when its `online` status arrives its
pending orders are due at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from gateway.hub.config import DispatchSettings
from gateway.hub.dispatch.signer import CommandSigner
from gateway.hub.errors import StoreError
from gateway.hub.store import Store
from gateway.hub.store.database import now_ms
from gateway.ingress.mqtt import MqttError, MqttLink
from gateway.ingress.topics import Topics
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

IDLE_S = 0.5  # orders accepted by another process are found within this
PUBACK_TIMEOUT_S = 15.0
STORE_RETRY_S = 2.0


class Dispatcher:
    """One per hub process."""

    def __init__(
        self,
        store: Store,
        link: MqttLink,
        signer: CommandSigner,
        settings: DispatchSettings,
        *,
        owner: str,
        prefix: str,
    ) -> None:
        self.store = store
        self.link = link
        self.signer = signer
        self.settings = settings
        self.owner = owner
        self.prefix = prefix
        self.online: set[str] = set()
        self.wake = asyncio.Event()
        self.published = 0
        self._held: dict[str, float] = {}  # box -> when our dispatch lease runs out (monotonic)

    async def run(self) -> None:
        while True:
            await self.link.connected.wait()
            self.wake.clear()
            try:
                await self._round()
            except (StoreError, MqttError) as err:
                _LOGGER.warning("Dispatch paused: %s", err)
                await asyncio.sleep(STORE_RETRY_S)
                continue
            await wait_set(self.wake, IDLE_S)

    async def _round(self) -> None:
        due = [b for b in await self.store.orders.due_boxes(now_ms()) if b in self.online]
        lease_ms = int(self.settings.lease_s * 1000)
        for box in due:
            # Renewed at half time, not for every batch: one transaction fewer per order.
            if self._held.get(box, 0.0) - time.monotonic() < self.settings.lease_s / 2:
                if not await self.store.fleet.claim_box(box, self.owner, lease_ms):
                    self._held.pop(box, None)
                    continue
                self._held[box] = time.monotonic() + self.settings.lease_s
            batch = await self.store.orders.take_dispatch(
                box,
                self.owner,
                limit=self.settings.window,
                resend_ms=int(self.settings.resend_s * 1000),
                reask_ms=int(self.settings.reask_s * 1000),
            )
            topic = Topics(self.prefix, box).cmd
            # Handed to the socket in order, then the PUBACKs awaited together.
            futures = [
                self.link.publish_nowait(
                    topic,
                    json.dumps(
                        self.signer.command(box, d.job_uuid, d.request, d.seq),
                        ensure_ascii=False,
                    ).encode("utf-8"),
                )
                for d in batch
            ]
            if futures:
                async with asyncio.timeout(PUBACK_TIMEOUT_S):
                    await asyncio.gather(*futures)
                self.published += len(futures)
                _LOGGER.debug("Published %d order(s) to %s", len(futures), box)

    def box_status(self, box: str, online: bool) -> bool:
        """Track a box's status; True when it has just come online."""
        was = box in self.online
        if online:
            self.online.add(box)
        else:
            self.online.discard(box)
        if online and not was:
            self.wake.set()
            return True
        return False
