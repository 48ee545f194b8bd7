"""The connector: its routes, and `sale.cashbox.check.apply` through the write-back outbox.

When a box's result finishes an order, the fiscal data is queued (in the same transaction)
for `check.apply` [B24]. A 503, `QUERY_LIMIT_EXCEEDED` or a timeout is retried with the
outbox's backoff; `ERROR_CHECK_NOT_FOUND` (the check was deleted, or the cashbox was
removed) will not pass by itself and is raised as permanent: an alert, not a retry loop. A
repeated apply is harmless: the core answers `true` for a check already printed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from gateway.hub.connectors.base import WritebackFailed
from gateway.hub.connectors.bitrix24.client import PortalClient
from gateway.hub.connectors.bitrix24.errors import PortalError
from gateway.hub.connectors.bitrix24.handlers import Handlers
from gateway.hub.connectors.bitrix24.installs import CONNECTOR, Install, Installs
from gateway.hub.connectors.bitrix24.mapping import vat_table
from gateway.hub.connectors.bitrix24.status import apply_body
from gateway.hub.model import Order, OrderState, Writeback, WritebackSpec
from gateway.hub.store import Store
from gateway.hub.store.database import now_ms

_LOGGER = logging.getLogger(__name__)

_GONE = frozenset({"ERROR_CHECK_NOT_FOUND"})


class Bitrix24Connector:
    """Implements the hub's Connector protocol."""

    name = CONNECTOR

    def __init__(
        self, store: Store, *, timeout_s: float, on_accepted: Callable[[Order], None]
    ) -> None:
        self.installs = Installs(store)
        self.timeout_s = timeout_s
        self.handlers = Handlers(
            store, self.installs, read_vat=self.read_vat, on_accepted=on_accepted
        )
        self._session: aiohttp.ClientSession | None = None
        self.applied = 0

    def add_routes(self, app: web.Application) -> None:
        self.handlers.add_routes(app)

    def build_writeback(self, order: Order) -> WritebackSpec | None:
        # Only fiscal data is applied; a failed check is told by CHECK_URL as ERROR.
        if order.state is not OrderState.DONE:
            return None
        return WritebackSpec(order.account, apply_body(order))

    async def deliver(self, row: Writeback) -> None:
        install = await self.installs.get(row.target)
        if install is None:
            raise WritebackFailed(f"install {row.target!r} is gone", permanent=True)
        try:
            result = await self.call(install, "sale.cashbox.check.apply", row.body)
        except PortalError as err:
            if err.error in _GONE:
                raise WritebackFailed(f"check.apply: {err}", permanent=True) from None
            raise WritebackFailed(f"check.apply: {err}", permanent=not err.retry) from None
        if result is not True:
            raise WritebackFailed(f"check.apply answered {result!r}")
        self.applied += 1
        _LOGGER.info("Bitrix24 %s: check %s applied", install.name, row.body.get("UUID"))

    async def read_vat(self, install: Install) -> Install:
        """The portal's VAT table, read again (at most once a minute per install)."""
        if now_ms() - install.vat_read_ms < 60_000:
            return install
        result = await self.call(install, "catalog.vat.list", {})
        rows = result.get("vats", []) if isinstance(result, dict) else []
        table = vat_table(list(rows), install.vat_overrides)
        updated = await self.installs.update(install.name, vat=table, vat_read_ms=now_ms())
        return updated or install

    async def call(self, install: Install, method: str, params: dict[str, Any]) -> Any:
        # The newest tokens: another process (or an earlier call) may have renewed them.
        latest = await self.installs.get(install.name)
        auth = dict((latest or install).auth)
        client = PortalClient(self.session(), install.portal, auth, self.timeout_s)
        try:
            return await client.call(method, params)
        finally:
            if client.refreshed:  # other processes use the renewed tokens too
                await self.installs.update(install.name, auth=client.auth)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
