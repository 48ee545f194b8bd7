"""One hub process: the API, the MQTT link, dispatch, answers, write-back and expiry.

Every process of a deployment runs the same parts; none is special. Work that must happen
once (a box's dispatch, a write-back, expiry) is leased in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping

from aiohttp import web

from gateway.atol.limits import MAX_BODY_BYTES
from gateway.hub.config import HubConfig
from gateway.hub.connectors.atol_online.connector import AtolOnlineConnector
from gateway.hub.connectors.base import Connector
from gateway.hub.connectors.bitrix24.writeback import Bitrix24Connector
from gateway.hub.connectors.moysklad.connector import MoyskladConnector
from gateway.hub.connectors.uspacy.webhook import UspacyConnector
from gateway.hub.dispatch.answers import Answers
from gateway.hub.dispatch.dispatcher import Dispatcher
from gateway.hub.dispatch.link import hub_link
from gateway.hub.dispatch.signer import CommandSigner
from gateway.hub.errors import StoreError
from gateway.hub.fleet_page.service import FleetService
from gateway.hub.fleet_page.settings import PageSettings
from gateway.hub.model import Order, WritebackSpec
from gateway.hub.store import Store
from gateway.hub.store.database import now_ms
from gateway.hub.writeback.sender import WritebackSender
from gateway.ingress.mqtt import MqttError

_LOGGER = logging.getLogger(__name__)

EXPIRY_EVERY_S = 600.0
STOP_TIMEOUT_S = 10.0


class Hub:
    """The parts of one process, wired; `run()` until cancelled."""

    def __init__(self, cfg: HubConfig, store: Store) -> None:
        self.cfg = cfg
        self.store = store
        self.owner = cfg.client_id
        self.link = hub_link(cfg)
        self.signer = CommandSigner.from_file(
            cfg.signing.private_key_file, cfg.signing.kid, cfg.signing.valid_for_s
        )
        self.dispatcher = Dispatcher(
            store,
            self.link,
            self.signer,
            cfg.dispatch,
            owner=self.owner,
            prefix=cfg.mqtt.topic_prefix,
        )
        self.atol_online = AtolOnlineConnector(
            store,
            cfg.atol_online,
            daemon_code=cfg.hub_id,
            timeout_s=cfg.writeback.timeout_s,
            on_accepted=self._accepted,
        )
        # Bitrix24 REST cashbox (docs/bitrix24.md): installs live in the store.
        self.bitrix24 = Bitrix24Connector(
            store, timeout_s=cfg.writeback.timeout_s, on_accepted=self._accepted
        )
        # МойСклад (docs/moysklad.md): accounts from the config's `moysklad:` section.
        self.moysklad = MoyskladConnector(
            store,
            cfg.moysklad,
            public_url=cfg.public_url,
            owner=self.owner,
            timeout_s=cfg.writeback.timeout_s,
            on_accepted=self._accepted,
        )
        # Uspacy (docs/uspacy.md): portals from the config's `uspacy:` section.
        self.uspacy = UspacyConnector(
            store, cfg.uspacy, timeout_s=cfg.writeback.timeout_s, on_accepted=self._accepted
        )
        self.connectors: Mapping[str, Connector] = {
            self.atol_online.name: self.atol_online,
            self.bitrix24.name: self.bitrix24,
            self.moysklad.name: self.moysklad,
            self.uspacy.name: self.uspacy,
        }
        self.sender = WritebackSender(store, self.connectors, cfg.writeback, owner=self.owner)
        self.answers = Answers(
            store,
            self.link,
            self.dispatcher,
            self._build_writeback,
            prefix=cfg.mqtt.topic_prefix,
            reask_ms=int(cfg.dispatch.reask_s * 1000),
            on_finished=self._finished,
        )
        # The fleet page and the alerts: their own MQTT client, tables and server.
        self.fleet = FleetService(
            store,
            self.link.settings,
            prefix=cfg.mqtt.topic_prefix,
            share_group=cfg.mqtt.share_group,
            alerts=cfg.alerts,
            page=PageSettings(
                listen=cfg.web_listen,
                password_hash=cfg.web_password_hash,
                language=cfg.web_language,
            ),
            owner=self.owner,
        )
        self.ready = asyncio.Event()

    def _accepted(self, _order: Order) -> None:
        self.dispatcher.wake.set()

    def _finished(self, _order: Order) -> None:
        self.sender.wake.set()

    def _build_writeback(self, order: Order) -> WritebackSpec | None:
        connector = self.connectors.get(order.connector)
        return connector.build_writeback(order) if connector is not None else None

    async def run(self) -> None:
        await self.store.fleet.sync_routes(self.cfg.routes)
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        for connector in self.connectors.values():
            connector.add_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, port = self.cfg.api_listen
        try:
            await web.TCPSite(runner, host, port).start()
            _LOGGER.info(
                "Hub %s (process %s) API on http://%s:%d; commands %s",
                self.cfg.hub_id,
                self.owner,
                host,
                port,
                "signed" if self.signer.signs else "UNSIGNED",
            )
            self.ready.set()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.link.run(), name="hub-mqtt-link")
                tg.create_task(self.answers.run(), name="hub-answers")
                tg.create_task(self.dispatcher.run(), name="hub-dispatch")
                tg.create_task(self.sender.run(), name="hub-writeback")
                tg.create_task(self._expiry(), name="hub-expiry")
                tg.create_task(self.fleet.run(), name="hub-fleet")
                tg.create_task(self.moysklad.run(), name="hub-moysklad-pos")
                tg.create_task(self.uspacy.run(), name="hub-uspacy-hints")
        finally:
            await self._stop(runner)

    async def _stop(self, runner: web.AppRunner) -> None:
        with contextlib.suppress(TimeoutError, StoreError, MqttError):
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await runner.cleanup()
                await self.atol_online.close()
                await self.bitrix24.close()
                await self.moysklad.close()
                await self.uspacy.close()
                await self.store.fleet.release_boxes(self.owner)
                await self.link.disconnect()

    async def _expiry(self) -> None:
        """Reports older than `report_days` and expired tokens go, by one process at a time."""
        keep_ms = self.cfg.atol_online.report_days * 86400 * 1000
        while True:
            try:
                if await self.store.access.take_lease(
                    "expiry", self.owner, int(EXPIRY_EVERY_S * 1000)
                ):
                    gone = await self.store.orders.expire(now_ms() - keep_ms)
                    await self.store.access.expire_tokens(now_ms())
                    if gone:
                        _LOGGER.info("Expired %d finished order(s)", gone)
            except StoreError as err:
                _LOGGER.warning("Expiry skipped: %s", err)
            await asyncio.sleep(EXPIRY_EVERY_S)


async def serve(cfg: HubConfig) -> int:
    """Open the store, run until SIGTERM/SIGINT, close."""
    store = await Store.open(cfg.database)
    hub = Hub(cfg, store)
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    stopping = False

    def stop() -> None:
        nonlocal stopping
        stopping = True
        if main is not None:
            main.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await hub.run()
    except asyncio.CancelledError:
        if not stopping:
            raise
        _LOGGER.info("Hub stopped")
    finally:
        await store.close()
    return 0
