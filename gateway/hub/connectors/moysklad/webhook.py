"""The JSON API webhook: `POST /moysklad/{account}/{secret}?requestId=…` [MOYSKLAD] webhooks.

МойСклад waits 1500 ms for a 200/204, then retries the same `requestId` three times and
drops the event. So the hub re-reads the order and commits it within a budget below that;
when it cannot (МойСклад slow or rate-limited, the database down) it answers 503 and the
retry tries again. A `requestId` already handled is answered at once; a new `requestId` for
an order already taken lands on the same order (its key is the order id): one receipt.
An order already carrying a fiscal attribute value is never taken again.
No signature is documented: the secret in the URL authenticates, and the order is re-read.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from gateway.hub.connectors.moysklad import mapping
from gateway.hub.connectors.moysklad.client import WEBHOOK_ECHO_HEADER, Client
from gateway.hub.connectors.moysklad.errors import MoyskladError, OrderRefused
from gateway.hub.connectors.moysklad.settings import MoyskladAccount
from gateway.hub.connectors.moysklad.writeback import REFUSED, attribute, refusal_text
from gateway.hub.errors import StoreError, UnknownRoute
from gateway.hub.model import NewOrder, Order, job_uuid
from gateway.hub.store import Store

_LOGGER = logging.getLogger(__name__)

CONNECTOR = "moysklad"
BUDGET_S = 1.2  # under МойСклад's 1500 ms window
READ_TIMEOUT_S = 1.0
SEEN_PER_ACCOUNT = 1000
EXPAND = "positions.assortment,agent"
PAGE = 1000  # [MOYSKLAD] at most 1000 rows per page


class Webhooks:
    """The route and what it does; `clients(account)` gives that account's JSON API client."""

    def __init__(
        self,
        store: Store,
        accounts: Mapping[str, MoyskladAccount],
        clients: Callable[[MoyskladAccount], Client],
        *,
        api_url: str,
        public_url: str,
        on_accepted: Callable[[Order], None],
    ) -> None:
        self.store = store
        self.accounts = accounts
        self.clients = clients
        self.api_url = api_url
        self.public_url = public_url
        self.on_accepted = on_accepted
        self._seen: dict[str, OrderedDict[str, None]] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/moysklad/{account}/{secret}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        account = self.accounts.get(request.match_info["account"])
        secret = account.webhook_secret if account is not None else None
        given = request.match_info["secret"].encode()
        if (
            account is None
            or secret is None
            or not hmac.compare_digest(given, secret.reveal().encode())
        ):
            return web.Response(status=404)
        request_id = request.query.get("requestId", "")
        seen = self._seen.setdefault(account.name, OrderedDict())
        if request_id and request_id in seen:
            return web.Response(status=204)
        try:
            async with asyncio.timeout(BUDGET_S):
                raw = await request.read()
                for href in _hrefs(raw, account.entity):
                    if not href.startswith(f"{self.api_url}/entity/{account.entity}/"):
                        # Our token goes with the re-read: only to МойСклад itself.
                        _LOGGER.warning("МойСклад webhook names a foreign href %r", href)
                        continue
                    await self.take(account, href)
        except (MoyskladError, StoreError, TimeoutError) as err:
            _LOGGER.warning("МойСклад webhook %s (%s) not taken: %s", request_id, account.name, err)
            return web.Response(status=503)
        if request_id:
            seen[request_id] = None
            while len(seen) > SEEN_PER_ACCOUNT:
                seen.popitem(last=False)
        return web.Response(status=204)

    async def take(self, account: MoyskladAccount, href: str) -> Order | None:
        """Read the order; commit it when it is in the "fiscalise" state and not yet taken."""
        client = self.clients(account)
        _, doc = await client.call("GET", f"{href}?expand={EXPAND}")
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            raise MoyskladError(f"GET {href}: not an order")
        if not _in_state(doc, account.state):
            return None
        if _fiscal_value(doc, account.fiscal_attr):
            return None  # written back before (perhaps by an order since expired here)
        key = doc["id"]
        earlier = await self.store.orders.by_key(CONNECTOR, account.name, key)
        if earlier is not None:
            return earlier
        uuid = job_uuid(CONNECTOR, account.name, key)
        try:
            positions = await self._positions(client, doc)
            task = mapping.to_task(doc, positions, _profile(account))
            request = mapping.checked(task, uuid)
        except OrderRefused as err:
            await self._refuse(client, account, href, err.field, err.reason)
            return None
        meta = {"href": href, "entity": account.entity, "name": doc.get("name")}
        new = NewOrder(CONNECTOR, account.name, key, account.name, request, meta)
        try:
            accepted = await self.store.orders.accept(new)
        except UnknownRoute:
            await self._refuse(client, account, href, "hub", "no box is routed for this shop")
            return None
        if accepted.created:
            self.on_accepted(accepted.order)
            _LOGGER.info("МойСклад order %s (%s) -> %s", key, account.name, accepted.order.box_id)
        return accepted.order

    async def _positions(self, client: Client, doc: dict[str, Any]) -> list[Any]:
        block = doc.get("positions")
        if not isinstance(block, dict):
            return []
        rows = block.get("rows")
        size = block.get("meta", {}).get("size", 0)
        if isinstance(rows, list) and len(rows) >= size:
            return rows
        href = block["meta"]["href"]  # more than one expanded page: read them all
        out: list[Any] = []
        while len(out) < size:
            _, page = await client.call(
                "GET", f"{href}?expand=assortment&limit={PAGE}&offset={len(out)}"
            )
            got = page.get("rows") if isinstance(page, dict) else None
            if not got:
                raise MoyskladError(f"GET {href}: fewer positions than its size {size}")
            out.extend(got)
        return out

    async def _refuse(
        self, client: Client, account: MoyskladAccount, href: str, field: str, reason: str
    ) -> None:
        """The refusal goes on the order itself; if it cannot, the webhook is answered 503."""
        _LOGGER.warning("МойСклад order %s refused: %s: %s", href, field, reason)
        assert account.fiscal_attr is not None
        value = refusal_text(f"{field}: {reason}")
        body = {"attributes": [attribute(self.api_url, account.entity, account.fiscal_attr, value)]}
        await client.call("PUT", href, body, headers={WEBHOOK_ECHO_HEADER: self.public_url})


def _profile(account: MoyskladAccount) -> mapping.Profile:
    return mapping.Profile(taxation=account.taxation, payment=account.payment)


def _hrefs(raw: bytes, entity: str) -> list[str]:
    """The orders a delivery names (several events may come in one)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return []
    events = doc.get("events") if isinstance(doc, dict) else None
    out: list[str] = []
    for event in events if isinstance(events, list) else []:
        meta = event.get("meta") if isinstance(event, dict) else None
        if (
            isinstance(meta, dict)
            and meta.get("type") == entity
            and event.get("action") in ("CREATE", "UPDATE")
            and isinstance(meta.get("href"), str)
            and meta["href"] not in out
        ):
            out.append(meta["href"])
    return out


def _in_state(doc: dict[str, Any], state_id: str | None) -> bool:
    state = doc.get("state")
    href = state.get("meta", {}).get("href", "") if isinstance(state, dict) else ""
    return state_id is not None and isinstance(href, str) and href.endswith(f"/{state_id}")


def _fiscal_value(doc: dict[str, Any], attr_id: str | None) -> bool:
    for attr in doc.get("attributes") or []:
        if isinstance(attr, dict) and attr.get("id") == attr_id and attr.get("value"):
            return not str(attr["value"]).startswith(REFUSED)  # a refused order may come again
    return False
