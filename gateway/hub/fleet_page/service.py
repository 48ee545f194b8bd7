"""The fleet page and the alerts in one hub process: MQTT ingestion of the boxes' status,
telemetry and events, the leased rule evaluation, alert delivery and the page's server."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.hub.alerts.delivery import AlertSender
from gateway.hub.alerts.evaluator import RuleEvaluator
from gateway.hub.alerts.ingest import FleetIngest, fleet_link
from gateway.hub.alerts.records import FleetRecords, IncidentRecords
from gateway.hub.alerts.settings import AlertSettings
from gateway.hub.alerts.tables import ensure_tables
from gateway.hub.fleet_page.app import start
from gateway.hub.fleet_page.settings import PageSettings
from gateway.hub.fleet_page.state import PageState
from gateway.hub.store import Store
from gateway.ingress.mqtt import LinkSettings, MqttError
from gateway.web.passwords import ScryptHash

_LOGGER = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0


class FleetService:
    """Build with the hub's store, its MQTT settings and the two sections; `run()` until
    cancelled."""

    def __init__(
        self,
        store: Store,
        mqtt: LinkSettings,
        *,
        prefix: str,
        share_group: str,
        alerts: AlertSettings,
        page: PageSettings,
        owner: str,
    ) -> None:
        self.store = store
        self.fleet = FleetRecords(store.db)
        self.incidents = IncidentRecords(store.db)
        self.link = fleet_link(mqtt, prefix, share_group)
        self.ingest = FleetIngest(self.fleet, self.link, prefix=prefix)
        self.sender = AlertSender(self.incidents, alerts, owner=owner)
        self.evaluator = RuleEvaluator(
            self.fleet,
            self.incidents,
            store.access,
            alerts,
            owner=owner,
            on_change=self.sender.wake.set,
        )
        password = ScryptHash.parse(page.password_hash) if page.password_hash else None
        self.page = PageState(page, store, self.fleet, self.incidents, password)
        self.ready = asyncio.Event()

    async def run(self) -> None:
        await ensure_tables(self.store.db)
        # Without a password nobody could log in: the page stays off, the alerts still run.
        runner = await start(self.page) if self.page.password is not None else None
        if runner is None:
            _LOGGER.info("Fleet page off: set web.password_hash to turn it on")
        try:
            self.ready.set()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.link.run(), name="fleet-mqtt-link")
                tg.create_task(self.ingest.run(), name="fleet-ingest")
                tg.create_task(self.evaluator.run(), name="alert-rules")
                tg.create_task(self.sender.run(), name="alert-delivery")
                tg.create_task(self._nudge(), name="alert-nudge")
        finally:
            with contextlib.suppress(TimeoutError, MqttError):
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    if runner is not None:
                        await runner.cleanup()
                    await self.link.disconnect()

    async def _nudge(self) -> None:
        """A status change or an event is judged at once, not at the next round."""
        while True:
            await self.ingest.wake.wait()
            self.ingest.wake.clear()
            self.evaluator.wake.set()
