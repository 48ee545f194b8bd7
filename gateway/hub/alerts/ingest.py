"""The boxes' status, telemetry and events over MQTT, committed to the fleet tables.

Telemetry and events come through shared subscriptions (the broker hands each to one hub
process, which stores it for all); status is retained and reaches every process on a plain
subscription. A QoS 1 event is acknowledged only after its row is committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from typing import Any

from gateway.hub.alerts.records import FleetRecords
from gateway.hub.errors import StoreError
from gateway.ingress.mqtt import LinkSettings, Message, MqttLink
from gateway.ingress.topics import split

_LOGGER = logging.getLogger(__name__)

STORE_RETRY_S = 1.0
MAX_BOX_ID = 128  # the tables' column width: a longer id is not a box of ours
SESSION_EXPIRY_S = 86400


def fleet_subscriptions(prefix: str, share_group: str) -> tuple[tuple[str, int], ...]:
    share = f"$share/{share_group}/{prefix}"
    return (
        (f"{share}/+/telemetry", 0),
        (f"{share}/+/event", 1),
        (f"{prefix}/+/status", 1),
    )


def fleet_link(base: LinkSettings, prefix: str, share_group: str) -> MqttLink:
    """A link of its own (client id `<hub client>-fleet`), so the hub's answers never wait
    behind telemetry."""
    settings = replace(
        base,
        client_id=f"{base.client_id}-fleet",
        protocol="5",
        session_expiry_s=SESSION_EXPIRY_S,
        subscriptions=fleet_subscriptions(prefix, share_group),
        clean_start=False,
        will=None,
    )
    return MqttLink(settings, queue_size=1000)


class FleetIngest:
    """Stores what the boxes say; `wake` is set when a box's online state may have changed."""

    def __init__(self, records: FleetRecords, link: MqttLink, *, prefix: str) -> None:
        self.records = records
        self.link = link
        self.prefix = prefix
        self.wake = asyncio.Event()
        self.stored = 0

    async def run(self) -> None:
        while True:
            message = await self.link.messages.get()
            await self._committed(message)
            self.link.ack(message)

    async def _committed(self, message: Message) -> None:
        while True:
            try:
                await self._handle(message)
                return
            except StoreError as err:
                _LOGGER.warning("Fleet message on %s not stored yet: %s", message.topic, err)
                await asyncio.sleep(STORE_RETRY_S)

    async def _handle(self, message: Message) -> None:
        where = split(message.topic, self.prefix)
        body = _json_object(message.payload)
        if where is None or body is None:
            if message.payload:
                _LOGGER.warning("Ignored a malformed fleet message on %s", message.topic)
            return
        box, kind, _uuid = where
        if len(box) > MAX_BOX_ID:
            _LOGGER.warning("Ignored a fleet message from a box id of %d characters", len(box))
            return
        if kind == "status":
            await self.records.status(box, body)
            self.wake.set()
        elif kind == "telemetry":
            await self.records.telemetry(box, body)
        elif kind == "event":
            await self.records.event(box, body)
            self.wake.set()
        else:
            return
        self.stored += 1


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(payload) if payload else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
