"""Sends queued alert messages by e-mail (SMTP) and webhook (JSON POST).

A delivery is leased to this process while it is sent, marked sent only under that lease,
and on failure retried after an exponential, jittered delay; nothing is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random

import aiohttp
import aiosmtplib

from gateway.hub.alerts.messages import email, webhook_body
from gateway.hub.alerts.model import Channel, Delivery
from gateway.hub.alerts.records import IncidentRecords
from gateway.hub.alerts.settings import AlertSettings
from gateway.hub.errors import HubError, StoreError
from gateway.runtime.aio import wait_set

_LOGGER = logging.getLogger(__name__)

IDLE_S = 1.0
BATCH = 20


class DeliveryFailed(HubError):
    """A recipient's server refused or did not answer; the delivery is retried."""

    code = "alert_delivery_failed"

    def __init__(self, channel: str, target: str, reason: str) -> None:
        super().__init__(f"{channel} to {target}: {reason}")
        self.channel = channel
        self.target = target
        self.reason = reason


class AlertSender:
    """One per hub process."""

    def __init__(self, records: IncidentRecords, settings: AlertSettings, *, owner: str) -> None:
        self.records = records
        self.settings = settings
        self.owner = owner
        self.wake = asyncio.Event()
        self.sent = 0
        self._http: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            self._http = http
            while True:
                self.wake.clear()
                try:
                    batch = await self.records.claim(
                        self.owner, lease_ms=int(self.settings.lease_s * 1000), limit=BATCH
                    )
                except StoreError as err:
                    _LOGGER.warning("Alert delivery paused: %s", err)
                    await asyncio.sleep(IDLE_S)
                    continue
                for delivery in batch:
                    await self._one(delivery)
                if not batch:
                    await wait_set(self.wake, IDLE_S)

    async def _one(self, d: Delivery) -> None:
        try:
            if d.channel is Channel.EMAIL:
                await self._email(d)
            else:
                await self._webhook(d)
        except DeliveryFailed as err:
            delay = min(
                self.settings.retry_max_s, self.settings.retry_min_s * 2 ** min(d.attempts, 20)
            ) * random.uniform(0.8, 1.2)
            _LOGGER.warning(
                "Alert %d (%s) not delivered: %s; next try in %.0f s",
                d.incident.id,
                d.phase.value,
                err,
                delay,
            )
            try:
                await self.records.failed(d, self.owner, str(err), int(delay * 1000))
            except StoreError as store_err:
                _LOGGER.error("Alert delivery %d failure not recorded: %s", d.id, store_err)
            return
        try:
            if await self.records.sent(d, self.owner):
                self.sent += 1
            else:
                _LOGGER.warning("Alert delivery %d sent after its lease ran out", d.id)
        except StoreError as err:
            # Sent but not recorded: it goes again (recipients key messages by id and phase).
            _LOGGER.error("Alert delivery %d sent, not recorded: %s", d.id, err)

    async def _email(self, d: Delivery) -> None:
        smtp = self.settings.smtp
        message = email(d, smtp.sender, self.settings.page_url)
        try:
            async with asyncio.timeout(smtp.timeout_s + 5):
                await aiosmtplib.send(
                    message,
                    hostname=smtp.host,
                    port=smtp.port,
                    start_tls=smtp.starttls,
                    username=smtp.username,
                    password=smtp.password,
                    timeout=smtp.timeout_s,
                )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as err:
            raise DeliveryFailed("email", d.target, f"{type(err).__name__}: {err}") from err

    async def _webhook(self, d: Delivery) -> None:
        assert self._http is not None
        body = json.dumps(webhook_body(d, self.settings.page_url), ensure_ascii=False)
        try:
            async with (
                asyncio.timeout(self.settings.webhook_timeout_s + 5),
                self._http.post(
                    d.target,
                    data=body.encode("utf-8"),
                    headers={"Content-Type": "application/json"},
                ) as resp,
            ):
                if not 200 <= resp.status < 300:
                    raise DeliveryFailed("webhook", d.target, f"HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as err:
            raise DeliveryFailed("webhook", d.target, f"{type(err).__name__}: {err}") from err
