"""The stage-change webhook and the connector: an event is a hint to re-read one deal.

The webhook stores the hint as a row in the store's connector records (connector
`uspacy.hint`), then answers 200. Workers lease due rows, so one hub process handles each,
and delete a row once its deal's order is committed or the deal is found not due; a hint
survives a crash between the 200 and the commit. A worker then re-reads the deal and its product list and
accepts an order only when the deal is in the trigger stage and has no receipt yet; the
deal id is the order's CRM key, so repeated events print one receipt. A deal that cannot
be a receipt gets a comment naming the problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web

from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.domain.errors import ValidationError
from gateway.hub.connectors.base import WritebackFailed
from gateway.hub.connectors.uspacy import mapping, writeback
from gateway.hub.connectors.uspacy.client import UspacyClient
from gateway.hub.connectors.uspacy.errors import DealRefused, UspacyApiError
from gateway.hub.connectors.uspacy.marketplace import (
    REFRESH_BEFORE_S,
    InstallCallback,
    PortalTokens,
)
from gateway.hub.connectors.uspacy.settings import Portal, UspacySettings
from gateway.hub.errors import StoreError, UnknownRoute
from gateway.hub.model import NewOrder, Order, Writeback, WritebackSpec, job_uuid
from gateway.hub.store import Store

_LOGGER = logging.getLogger(__name__)

CONNECTOR: Final = "uspacy"
MAX_BODY: Final = 256 * 1024
RETRIES: Final = 6  # a hint whose deal cannot be read is tried this often, backing off
RETRY_S: Final = 2.0
CONFIRM_HOSTS: Final = (".uspacy.ua", ".uspacy.com", ".uspacy.eu")
QUEUE: Final = 10000
REPEAT_REFUSAL_S: Final = 600.0  # the same refusal is not commented twice within this
HINTS: Final = "uspacy.hint"  # connector_records rows: one per accepted event
POLL_S: Final = 1.0  # due hints are looked for this often (and at once after an event)
LATER_S: Final = 300.0  # a hint given up for now is tried again after this
KEEP_S: Final = 86400.0  # ...until it is this old
WINDOW: Final = 64  # hints worked at once by one process
SWEEP_S: Final = 60.0  # installed portals' tokens are checked for refresh this often


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class UspacyConnector:
    """Implements the hub's Connector protocol; `run()` works the queued hints."""

    name = CONNECTOR

    def __init__(
        self,
        store: Store,
        settings: UspacySettings,
        *,
        timeout_s: float,
        on_accepted: Callable[[Order], None],
        retry_s: float = RETRY_S,
        lease_s: float | None = None,  # None: the config's `hint_lease_s`
        poll_s: float = POLL_S,
        sweep_s: float = SWEEP_S,
        refresh_before_s: float = REFRESH_BEFORE_S,
    ) -> None:
        self.store = store
        self.settings = settings
        self.on_accepted = on_accepted
        self.retry_s = retry_s
        self.lease_s = settings.hint_lease_s if lease_s is None else lease_s
        self.poll_s = poll_s
        self.owner = secrets.token_hex(8)  # this process's name on the hints it leases
        self.sweep_s = sweep_s
        self.clients = {
            p.key: UspacyClient(
                p.url,
                p.client_id,
                p.client_secret,
                timeout_s=timeout_s,
                tokens=(
                    PortalTokens(store, p.domain, before_s=refresh_before_s)
                    if p.marketplace
                    else None
                ),
            )
            for p in settings.portals
        }
        self.install = InstallCallback(store, settings.app) if settings.app else None
        self.mapping = NameMapping()
        self._wake = asyncio.Event()
        self._waiting = 0  # hint rows seen at the last look
        self._busy: set[tuple[str, Any]] = set()  # (portal, deal id or link) being worked
        self._refusals: dict[tuple[str, int], tuple[str, float]] = {}
        self.accepted = 0
        self.refused = 0

    # --- HTTP -------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        if self.install is not None:
            self.install.add_routes(app)
        app.router.add_post("/uspacy/{portal}/{secret}", self.webhook)

    async def webhook(self, request: web.Request) -> web.Response:
        portal = self.settings.portal(request.match_info["portal"])
        given = request.match_info["secret"].encode()
        if portal is None or not hmac.compare_digest(given, portal.webhook_secret.encode()):
            return web.Response(status=404)
        try:
            async with asyncio.timeout(10):
                raw = await request.content.read(MAX_BODY + 1)
            doc = json.loads(raw) if len(raw) <= MAX_BODY else None
        except (ValueError, TimeoutError):
            doc = None
        hint = _hint(doc)
        if hint is None:
            _LOGGER.info("Uspacy %s: an event without a deal id, ignored", portal.key)
        else:
            if self._waiting >= QUEUE:
                return web.Response(status=503)  # full: Uspacy may send it again
            kind, value = hint
            row = {"portal": portal.key, "kind": kind, "value": value, "created_ms": _now_ms()}
            try:
                # A row per event: a row being worked is never overwritten by a newer event.
                await self.store.records.put(
                    HINTS, f"{portal.key}/{kind}/{secrets.token_hex(8)}", row
                )
            except (StoreError, TimeoutError) as err:
                _LOGGER.warning("Uspacy %s: hint not stored: %s", portal.key, err)
                return web.Response(status=503)  # nothing kept: Uspacy may send it again
            self._wake.set()
        return web.json_response({"ok": True})

    # --- the worker -------------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            if any(c.tokens is not None for c in self.clients.values()):
                tg.create_task(self._keep_fresh(), name="uspacy-install-tokens")
            while True:
                self._wake.clear()
                try:
                    await self._take_due(tg)
                except (StoreError, TimeoutError) as err:
                    _LOGGER.warning("Uspacy hints: %s", err)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await self._wake.wait()

    async def _keep_fresh(self) -> None:
        """Refresh installed portals' stored tokens before they expire, used or not."""
        while True:
            for key, client in self.clients.items():
                if client.tokens is None:
                    continue
                try:
                    await client.check_token()
                except (UspacyApiError, StoreError, TimeoutError) as err:
                    _LOGGER.warning("Uspacy %s: install token: %s", key, err)
            await asyncio.sleep(self.sweep_s)

    async def _take_due(self, tg: asyncio.TaskGroup) -> None:
        """Lease the due hints whose deal is not being worked here, and start them."""
        found = await self.store.records.all(HINTS)
        self._waiting = len(found)
        now = _now_ms()
        for record in found:
            row = record.value
            key, kind, value = str(row.get("portal")), str(row.get("kind")), row.get("value")
            if int(row.get("until_ms", 0)) > now or (key, value) in self._busy:
                continue  # leased, waiting to be tried again, or after the read in progress
            if len(self._busy) >= WINDOW:
                return
            if self.settings.portal(key) is None or kind not in ("deal", "confirm"):
                await self.store.records.delete(HINTS, record.key)
                continue  # the portal left the config
            leased = {**row, "owner": self.owner, "until_ms": now + int(self.lease_s * 1000)}
            if not await self.store.records.put(HINTS, record.key, leased, expect=record.version):
                continue  # another process took it first
            self._busy.add((key, value))
            tg.create_task(
                self._work(record.key, record.version + 1, leased),
                name=f"uspacy-{key}-{kind}-{value}",
            )

    async def _work(self, name: str, version: int, row: dict[str, Any]) -> None:
        key, kind, value = str(row["portal"]), str(row["kind"]), row["value"]
        try:
            for attempt in range(RETRIES):
                try:
                    # Renew the lease before each try: a lost lease means another has it.
                    renewed = {**row, "until_ms": _now_ms() + int(self.lease_s * 1000)}
                    if not await self.store.records.put(HINTS, name, renewed, expect=version):
                        return
                    version += 1
                    if kind == "confirm":
                        await self._confirm(key, str(value))
                    else:
                        await self.handle(key, int(value))
                    await self.store.records.delete(HINTS, name)
                    return
                except (UspacyApiError, StoreError, TimeoutError) as err:
                    if isinstance(err, UspacyApiError) and not err.transient:
                        _LOGGER.error("Uspacy %s %s %s: %s", key, kind, value, err)
                        await self.store.records.delete(HINTS, name)
                        return
                    _LOGGER.warning(
                        "Uspacy %s %s %s (try %d): %s", key, kind, value, attempt + 1, err
                    )
                    if attempt + 1 < RETRIES:
                        await asyncio.sleep(self.retry_s * 2**attempt)
            await self._later(name, version, row)
        except (StoreError, TimeoutError) as err:
            _LOGGER.warning("Uspacy %s %s %s: %s; the lease runs out", key, kind, value, err)
        finally:
            self._busy.discard((key, value))
            self._wake.set()

    async def _later(self, name: str, version: int, row: dict[str, Any]) -> None:
        """Tries used up: the hint waits LATER_S, and is dropped once KEEP_S old."""
        key, kind, value = row["portal"], row["kind"], row["value"]
        now = _now_ms()
        if now - int(row.get("created_ms", now)) > KEEP_S * 1000:
            _LOGGER.error("Uspacy %s %s %s: given up; move the deal again", key, kind, value)
            await self.store.records.delete(HINTS, name)
            return
        _LOGGER.error("Uspacy %s %s %s: tried again in %.0f s", key, kind, value, LATER_S)
        later = {**row, "until_ms": now + int(LATER_S * 1000)}
        await self.store.records.put(HINTS, name, later, expect=version)

    async def _confirm(self, key: str, url: str) -> None:
        portal = self._portal(key)
        host = urlsplit(url).hostname or ""
        if host != urlsplit(portal.url).hostname and not host.endswith(CONFIRM_HOSTS):
            _LOGGER.error("Uspacy %s: confirmation link to %s refused", key, host)
            return
        await self.clients[key].confirm(url)
        _LOGGER.info("Uspacy %s: webhook confirmed", key)

    async def handle(self, key: str, deal_id: int) -> Order | None:
        """Re-read the deal; accept an order when it is due. The new order, else None."""
        portal = self._portal(key)
        client = self.clients[key]
        deal = await client.deal(deal_id)
        if not mapping.is_due(deal, portal.rules):
            return None
        if await self.store.orders.by_key(CONNECTOR, key, str(deal_id)) is not None:
            return None  # the first order stands; its write-back fills the field
        lines = await client.products(deal_id)
        try:
            task = mapping.to_task(deal, lines, portal.rules)
            uuid = job_uuid(CONNECTOR, key, str(deal_id))
            parsed = parse_request(json.dumps({"uuid": uuid, "request": [task]}), self.mapping)
        except DealRefused as err:
            await self._refuse(key, deal_id, err.problems)
            return None
        except ValidationError as err:
            await self._refuse(key, deal_id, [f"{err.field}: {err.reason}"])
            return None
        meta = {"deal_id": deal_id, "portal": key, "title": str(deal.get("title") or "")}
        new = NewOrder(CONNECTOR, key, str(deal_id), key, json.loads(parsed.tasks_json), meta)
        try:
            accepted = await self.store.orders.accept(new)
        except UnknownRoute:
            await self._refuse(key, deal_id, [f"no fiscal box is routed for portal {key}"])
            return None
        if not accepted.created:
            return None
        self.accepted += 1
        self.on_accepted(accepted.order)
        _LOGGER.info(
            "Order %s (Uspacy %s deal %d) for %s", uuid, key, deal_id, accepted.order.box_id
        )
        return accepted.order

    async def _refuse(self, key: str, deal_id: int, problems: list[str]) -> None:
        text = mapping.refused_comment(problems)
        now = asyncio.get_running_loop().time()
        earlier = self._refusals.get((key, deal_id))
        if earlier is not None and earlier[0] == text and now - earlier[1] < REPEAT_REFUSAL_S:
            return  # a repeated event: the manager has this comment already
        self.refused += 1
        _LOGGER.info("Uspacy %s deal %d refused: %s", key, deal_id, "; ".join(problems))
        await self.clients[key].comment(deal_id, text)
        if len(self._refusals) >= QUEUE:
            self._refusals.pop(next(iter(self._refusals)))
        self._refusals[(key, deal_id)] = (text, now)

    # --- write-back -------------------------------------------------------------------------

    def build_writeback(self, order: Order) -> WritebackSpec | None:
        portal = self.settings.portal(order.account)
        return writeback.build(order, portal) if portal is not None else None

    async def deliver(self, row: Writeback) -> None:
        client = self.clients.get(row.target)
        if client is None:
            raise WritebackFailed(f"no Uspacy portal {row.target!r} in the config", permanent=True)
        try:
            await writeback.deliver(client, row.body, retry=row.attempts > 0)
        except StoreError as err:  # an installed portal's tokens could not be read
            raise WritebackFailed(str(err)) from None

    def _portal(self, key: str) -> Portal:
        portal = self.settings.portal(key)
        assert portal is not None  # hints are queued for configured portals only
        return portal

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


def _hint(doc: object) -> tuple[str, Any] | None:
    """("confirm", url) or ("deal", id) from an event, SNS-style envelope or bare."""
    if not isinstance(doc, dict):
        return None
    kind = doc.get("Type") or doc.get("type")
    if kind == "SubscriptionConfirmation" and isinstance(doc.get("SubscribeURL"), str):
        return "confirm", doc["SubscribeURL"]
    if kind == "Notification" and isinstance(doc.get("Message"), str):
        try:
            doc = json.loads(doc["Message"])
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
    inner = doc.get("data")
    data: dict[str, Any] = inner if isinstance(inner, dict) else doc
    found = data.get("entity")
    entity: dict[str, Any] = found if isinstance(found, dict) else {}
    deal_id = entity.get("id", data.get("entity_id"))
    if isinstance(deal_id, str) and deal_id.isdigit():
        deal_id = int(deal_id)
    if isinstance(deal_id, bool) or not isinstance(deal_id, int) or deal_id <= 0:
        return None
    return "deal", deal_id
