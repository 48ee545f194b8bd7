"""The ATOL Online connector: its API, and its callback (the report POSTed to `callback_url`)."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from aiohttp import web

from gateway.hub.config import AtolOnlineSettings
from gateway.hub.connectors.atol_online.api import AtolOnlineApi
from gateway.hub.connectors.atol_online.reports import report
from gateway.hub.connectors.atol_online.tokens import CONNECTOR, Tokens
from gateway.hub.connectors.base import WritebackFailed
from gateway.hub.model import Order, Writeback, WritebackSpec
from gateway.hub.store import Store


class AtolOnlineConnector:
    """Implements the hub's Connector protocol."""

    name = CONNECTOR

    def __init__(
        self,
        store: Store,
        settings: AtolOnlineSettings,
        *,
        daemon_code: str,
        timeout_s: float,
        on_accepted: Callable[[Order], None],
    ) -> None:
        self.daemon_code = daemon_code
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.api = AtolOnlineApi(
            store, Tokens(store, settings), daemon_code=daemon_code, on_accepted=on_accepted
        )
        self._session: aiohttp.ClientSession | None = None

    def add_routes(self, app: web.Application) -> None:
        self.api.add_routes(app)

    def build_writeback(self, order: Order) -> WritebackSpec | None:
        url = order.meta.get("callback_url")
        if not url:
            return None
        return WritebackSpec(str(url), dict(report(order, daemon_code=self.daemon_code)))

    async def deliver(self, row: Writeback) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._session.post(row.target, json=row.body) as response:
                await response.read()
                if response.status >= 300:
                    raise WritebackFailed(f"callback answered HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as err:
            raise WritebackFailed(f"callback failed: {type(err).__name__}: {err}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
