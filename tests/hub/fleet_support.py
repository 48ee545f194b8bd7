"""Real parts for the fleet page and alert tests: a box on MQTT, an SMTP server, a webhook
receiver, and the fleet service of one hub process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message as EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.hub.alerts.settings import AlertSettings, RecipientGroup, SmtpSettings
from gateway.hub.fleet_page.service import FleetService
from gateway.hub.fleet_page.settings import PageSettings
from gateway.hub.model import NewOrder, Order, Route, WritebackSpec
from gateway.hub.store import Store
from gateway.ingress.mqtt import LinkSettings, MqttLink, Will
from gateway.web.passwords import hash_password
from tests.support.broker import Broker, Pki, free_port

PREFIX = "fiscal/v1"
PASSWORD = "fleet-pass-2026"
PASSWORD_HASH = hash_password(PASSWORD, ln=14)


def link_settings(broker: Broker, pki: Pki, cn: str, client_id: str, **extra: Any) -> LinkSettings:
    cert, key = pki.root / f"{cn}.crt", pki.root / f"{cn}.key"
    if not cert.exists():
        cert, key = pki.issue(cn)
    return LinkSettings(
        host="127.0.0.1",
        port=broker.port,
        client_id=client_id,
        tls=True,
        ca_file=pki.ca_file,
        cert_file=cert,
        key_file=key,
        **extra,
    )


class MailBox:
    """aiosmtpd's SMTP server on this loop: keeps every message it is handed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self._server: asyncio.Server | None = None

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def subjects(self) -> list[str]:
        # Folded long headers unfold with the fold's space in front: a mail client trims it.
        return [" ".join(str(m["Subject"]).split()) for m in self.messages]

    async def __aenter__(self) -> MailBox:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: SMTP(self), "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class Webhook:
    """A responsible person's webhook (aiohttp's real server): keeps every JSON body."""

    def __init__(self, *, refuse_first: int = 0) -> None:
        self.port = free_port()
        self.bodies: list[dict[str, Any]] = []  # the posts it answered 200
        self.refused = 0
        self._refuse = refuse_first  # answer 503 this many times first
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.refused < self._refuse:
            self.refused += 1
            return web.json_response({"busy": True}, status=503)
        self.bodies.append(body)
        return web.json_response({"ok": True})

    def phases(self) -> list[str]:
        return [b["phase"] for b in self.bodies]

    async def __aenter__(self) -> Webhook:
        app = web.Application()
        app.router.add_post("/hook", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class FakeBoxLink:
    """A box's MQTT side as the daemon does it: retained `online`, the Last Will `offline`,
    telemetry and events. Cancelling `run` drops the socket without a DISCONNECT, so the
    broker publishes the will."""

    broker: Broker
    pki: Pki
    box_id: str
    boot_id: str = "boot-1"
    link: MqttLink | None = None
    task: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        return f"{PREFIX}/{self.box_id}"

    async def connect(self) -> None:
        will = json.dumps(
            {"state": "offline", "boot_id": self.boot_id, "reason": "connection lost"}
        ).encode()
        settings = link_settings(
            self.broker,
            self.pki,
            self.box_id,
            self.box_id,
            keepalive_s=5,
            will=Will(f"{self.base}/status", will),
        )
        self.link = MqttLink(settings)
        self.task = asyncio.create_task(self.link.run(), name=f"box-{self.box_id}")
        async with asyncio.timeout(20):
            await self.link.connected.wait()
        online = {
            "state": "online",
            "boot_id": self.boot_id,
            "version": "0.1.0",
            "device": {"register": "connected", "firmware": "A4 build 1"},
        }
        await self.link.publish(f"{self.base}/status", json.dumps(online).encode(), retain=True)

    async def telemetry(self, body: dict[str, Any]) -> None:
        assert self.link is not None
        await self.link.publish(f"{self.base}/telemetry", json.dumps(body).encode(), qos=0)

    async def event(self, body: dict[str, Any]) -> None:
        assert self.link is not None
        await self.link.publish(f"{self.base}/event", json.dumps(body).encode())

    async def vanish(self) -> None:
        """The power goes: no goodbye."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.task = self.link = None


def telemetry(*, depth: int = 0, blocked: str | None = None, drift: float = 0.4) -> dict[str, Any]:
    """A box's telemetry as gateway/app/telemetry.py builds it (the fields the hub reads)."""
    return {
        "version": "0.1.0",
        "register": {"state": "connected", "model": "SHTRIH-M-01F", "serial": "0012345"},
        "queue": {"depth": depth, "blocked": blocked, "paused": None},
        "clock": {"drift_s": drift},
        "health": {
            "reading": {
                "fn_number": "9999078900012345",
                "fn_expiry": "2027-09-01",
                "fn_days_left": 270,
                "ofd_unsent": 2,
                "ofd_oldest_age_days": 0.1,
            }
        },
        "status": "ok",
    }


@dataclass
class HubFleet:
    """The fleet service of one hub process, on the test's loop."""

    service: FleetService
    task: asyncio.Task[None]
    page_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.page_port}"


def alert_settings(mail: MailBox | None, hook: Webhook | None, **extra: Any) -> AlertSettings:
    group = RecipientGroup(
        name="shops",
        boxes=("shop-*",),
        email=("duty@example.org",) if mail else (),
        webhook=(hook.url,) if hook else (),
    )
    return AlertSettings(
        evaluate_every_s=1.0,
        offline_after_s=1.0,
        retry_min_s=0.2,
        retry_max_s=2.0,
        lease_s=10.0,
        smtp=SmtpSettings(port=mail.port if mail else 25, timeout_s=5),
        groups=(group,),
        page_url="http://127.0.0.1:8701/alerts",
        **extra,
    )


@contextlib.asynccontextmanager
async def hub_fleet(
    store: Store,
    broker: Broker,
    pki: Pki,
    name: str,
    alerts: AlertSettings,
    *,
    password_hash: str | None = PASSWORD_HASH,
) -> AsyncIterator[HubFleet]:
    port = free_port()
    service = FleetService(
        store,
        link_settings(broker, pki, "office", name),
        prefix=PREFIX,
        share_group="hub",
        alerts=alerts,
        page=PageSettings(listen=("127.0.0.1", port), password_hash=password_hash, language="en"),
        owner=name,
    )
    task = asyncio.create_task(service.run(), name=f"fleet-{name}")
    try:
        async with asyncio.timeout(20):
            await service.ready.wait()
            await service.link.connected.wait()
        yield HubFleet(service, task, port)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(check: Any, timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check() if asyncio.iscoroutinefunction(check) else check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s: {what}")


async def open_store(tmp: Path) -> Store:
    return await Store.open(f"sqlite:///{tmp / 'hub.sqlite3'}")


async def printed_order(store: Store, box_id: str, crm_key: str, callback: str) -> Order:
    """An order routed to `box_id`, acked and printed as a box answers, with its write-back."""
    await store.fleet.set_route(Route("atol_online", f"group-{box_id}", box_id))
    request: list[dict[str, Any]] = [{"type": "sell", "items": [], "payments": [], "total": 0}]
    accepted = await store.orders.accept(
        NewOrder("atol_online", "shop", crm_key, f"group-{box_id}", request, {})
    )
    uuid = accepted.order.job_uuid

    def builder(order: Order) -> WritebackSpec | None:
        return WritebackSpec(callback, {"uuid": order.job_uuid, "status": order.state.value})

    await store.orders.record_ack(
        box_id, uuid, {"uuid": uuid, "status": "accepted", "number": 1}, builder, reask_ms=60_000
    )
    fiscal = {"fiscalDocumentNumber": 17, "fiscalDocumentSign": "1234567890", "shiftNumber": 3}
    body = {"uuid": uuid, "results": [{"status": "ready", "result": {"fiscalParams": fiscal}}]}
    done = await store.orders.record_result(box_id, uuid, body, builder)
    assert done is not None
    return done
