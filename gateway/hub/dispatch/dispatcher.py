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
MAX_IN_FLIGHT = 100  # publishes awaiting PUBACK (the MQTT client queues at most 200)


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
        if not due:
            return
        # Leases are renewed at half time, all in one transaction, not once per order.
        clock = time.monotonic()
        renew = [b for b in due if self._held.get(b, 0.0) - clock < self.settings.lease_s / 2]
        if renew:
            got = await self.store.fleet.claim_boxes(
                renew, self.owner, int(self.settings.lease_s * 1000)
            )
            for box in renew:
                if box in got:
                    self._held[box] = clock + self.settings.lease_s
                else:
                    self._held.pop(box, None)
        mine = [b for b in due if b in self._held]
        taken = await self.store.orders.take_dispatch_many(
            mine,
            self.owner,
            limit=self.settings.window,
            resend_ms=int(self.settings.resend_s * 1000),
            reask_ms=int(self.settings.reask_s * 1000),
        )
        # Handed to the socket in order, box by box; PUBACKs awaited before the client's
        # outgoing queue would overflow.
        futures: list[asyncio.Future[None]] = []
        for box, batch in taken.items():
            if len(futures) + len(batch) > MAX_IN_FLIGHT:
                await self._acked(futures)
                futures = []
            topic = Topics(self.prefix, box).cmd
            for d in batch:
                command = self.signer.command(box, d.job_uuid, d.request, d.seq)
                payload = json.dumps(command, ensure_ascii=False).encode("utf-8")
                futures.append(self.link.publish_nowait(topic, payload))
        await self._acked(futures)

    async def _acked(self, futures: list[asyncio.Future[None]]) -> None:
        if futures:
            async with asyncio.timeout(PUBACK_TIMEOUT_S):
                await asyncio.gather(*futures)
            self.published += len(futures)

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
