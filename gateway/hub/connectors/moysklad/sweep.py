"""Lost webhooks: МойСклад drops an event after four failed tries [MOYSKLAD] webhooks.

So every `sweep_s` one hub process (a lease per account) lists the orders in the
"fiscalise" state changed in the last week, and takes each one with no fiscal attribute
value that the hub does not know yet, exactly as a webhook would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import urllib.parse
from typing import Any

from gateway.hub.connectors.moysklad.errors import MoyskladError
from gateway.hub.connectors.moysklad.settings import MoyskladAccount
from gateway.hub.connectors.moysklad.webhook import CONNECTOR, Webhooks
from gateway.hub.errors import StoreError
from gateway.hub.store import Store

_LOGGER = logging.getLogger(__name__)

WINDOW = dt.timedelta(days=7)
PAGE = 100


class Sweeper:
    def __init__(self, store: Store, webhooks: Webhooks, account: MoyskladAccount, owner: str):
        self.store = store
        self.webhooks = webhooks
        self.account = account
        self.owner = owner
        self.taken = 0

    async def run(self) -> None:
        lease = f"moysklad-sweep-{self.account.name}"
        ttl_ms = int(self.account.sweep_s * 2000)
        while True:
            await asyncio.sleep(self.account.sweep_s)
            try:
                if await self.store.access.take_lease(lease, self.owner, ttl_ms):
                    await self.sweep_once()
            except (MoyskladError, StoreError) as err:
                _LOGGER.warning("МойСклад sweep %s: %s", self.account.name, err)

    async def sweep_once(self) -> None:
        client = self.webhooks.clients(self.account)
        state = f"{self.webhooks.api_url}/entity/{self.account.entity}/metadata/states/"
        since = (dt.datetime.now() - WINDOW).strftime("%Y-%m-%d %H:%M:%S")
        query = urllib.parse.urlencode(
            {"filter": f"state={state}{self.account.state};updated>={since}", "limit": PAGE}
        )
        _, page = await client.call("GET", f"/entity/{self.account.entity}?{query}")
        for row in (page or {}).get("rows", []):
            if not self._untaken(row) or await self._known(row):
                continue
            if await self.webhooks.take(self.account, row["meta"]["href"]) is not None:
                self.taken += 1
                _LOGGER.warning("МойСклад order %s taken by the sweep", row.get("id"))

    def _untaken(self, row: dict[str, Any]) -> bool:
        for attr in row.get("attributes") or []:
            if attr.get("id") == self.account.fiscal_attr and attr.get("value"):
                return False  # printed, or refused: a refused order comes back by webhook only
        return isinstance(row.get("meta"), dict) and isinstance(row.get("id"), str)

    async def _known(self, row: dict[str, Any]) -> bool:
        found = await self.store.orders.by_key(CONNECTOR, self.account.name, row["id"])
        return found is not None
