"""PRINT_URL and CHECK_URL, the two calls the portal's core makes [B24].

The core calls PRINT_URL once and never again: anything but HTTP 200 with `{"UUID": …}` or
`{"ERRORS": […]}` leaves the check "printing" forever, so every outcome is a 200. It reads
any CHECK_URL answer but a well-formed one as "printed, no fiscal data", so a hub in trouble
answers `WAIT`. The URLs carry the install's secret: a wrong one is a 404, nothing stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.hub.connectors.bitrix24.errors import CheckRefused, PortalError
from gateway.hub.connectors.bitrix24.form import decode_body
from gateway.hub.connectors.bitrix24.installs import CONNECTOR, Install, Installs
from gateway.hub.connectors.bitrix24.mapping import checked_request, split_uuid, to_task
from gateway.hub.connectors.bitrix24.status import status_answer
from gateway.hub.connectors.bitrix24.wire import PrintAnswer, StatusAnswer
from gateway.hub.errors import OrderNotFound, StoreError, UnknownRoute
from gateway.hub.model import NewOrder, Order, job_uuid
from gateway.hub.store import Store

_LOGGER = logging.getLogger(__name__)

BASE = "/bitrix24"
READ_TIMEOUT_S = 20.0  # the core waits 60 s for the answer
MAX_BODY_BYTES = 2 * 1024 * 1024
VatReader = Callable[[Install], Awaitable[Install]]


class Handlers:
    """The routes; `read_vat` re-reads the portal's VAT table when a check names an id the
    cached one lacks; `on_accepted` is told of each new order (to wake the dispatcher)."""

    def __init__(
        self,
        store: Store,
        installs: Installs,
        *,
        read_vat: VatReader,
        on_accepted: Callable[[Order], None],
    ) -> None:
        self.store = store
        self.installs = installs
        self.read_vat = read_vat
        self.on_accepted = on_accepted

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{BASE}/{{secret}}/print", self.print_check)
        app.router.add_post(f"{BASE}/{{secret}}/check", self.check_status)

    async def print_check(self, request: web.Request) -> web.Response:
        try:
            install = await self.installs.by_secret(request.match_info["secret"])
        except StoreError as err:
            _LOGGER.error("Bitrix24 print: store unavailable: %s", err)
            return _print({"ERRORS": ["the fiscal hub cannot store checks now: print it again"]})
        if install is None:
            raise web.HTTPNotFound()
        try:
            return _print(await self._print(install, request))
        except CheckRefused as err:
            _LOGGER.info("Bitrix24 %s: check refused: %s", install.name, err)
            return _print({"ERRORS": [f"Fiscal hub: {err}"]})
        except StoreError as err:
            _LOGGER.error("Bitrix24 %s print: store unavailable: %s", install.name, err)
            return _print({"ERRORS": ["the fiscal hub cannot store checks now: print it again"]})
        except Exception:
            # Not a 500: the core would leave the check "printing" forever, unseen.
            _LOGGER.exception("Bitrix24 %s print failed", install.name)
            return _print({"ERRORS": ["the fiscal hub failed on this check: print it again"]})

    async def _print(self, install: Install, request: web.Request) -> PrintAnswer:
        check = decode_body(await _body(request), request.content_type)
        domain, check_id = split_uuid(check.get("uuid"))
        # The domain is not checked: a custom domain or a cron run names it differently, and
        # the secret in the URL already says which install this is.
        key = str(check["uuid"])
        earlier = await self.store.orders.by_key(CONNECTOR, install.name, key)
        if earlier is not None:  # the same check again: the same answer, nothing printed
            return {"UUID": earlier.job_uuid}
        uuid = job_uuid(CONNECTOR, install.name, key)
        try:
            mapped = to_task(check, install.vat)
        except CheckRefused as err:
            if not err.field.endswith("[vat]"):
                raise
            try:
                install = await self.read_vat(install)  # a VAT rate added since it was read
            except PortalError as portal:
                _LOGGER.warning("Bitrix24 %s: VAT table not read: %s", install.name, portal)
                raise err from None
            mapped = to_task(check, install.vat)
        tasks = checked_request(uuid, mapped.task)
        meta: dict[str, Any] = {
            "portal": install.portal,
            "domain": domain,
            "check_id": check_id,
            "check_type": str(check.get("type")),
            "cashbox_id": install.cashbox_id,
            **mapped.meta,
        }
        new = NewOrder(CONNECTOR, install.name, key, install.name, tasks, meta)
        try:
            accepted = await self.store.orders.accept(new)
        except UnknownRoute:
            raise CheckRefused(
                "", "no box is routed for this cashbox: run the install again"
            ) from None
        if accepted.created:
            self.on_accepted(accepted.order)
            _LOGGER.info(
                "Bitrix24 %s: check %s (%s) -> order %s on %s",
                install.name,
                check_id,
                check.get("type"),
                uuid,
                accepted.order.box_id,
            )
        return {"UUID": accepted.order.job_uuid}

    async def check_status(self, request: web.Request) -> web.Response:
        try:
            install = await self.installs.by_secret(request.match_info["secret"])
        except StoreError as err:
            _LOGGER.error("Bitrix24 status: store unavailable: %s", err)
            return _status({"STATUS": "WAIT"})
        if install is None:
            raise web.HTTPNotFound()
        try:
            return _status(await self._status(install, request))
        except Exception as err:
            # Any other answer marks the check printed with no fiscal data: wait instead.
            _LOGGER.error("Bitrix24 %s status: %s; answered WAIT", install.name, err)
            return _status({"STATUS": "WAIT"})

    async def _status(self, install: Install, request: web.Request) -> StatusAnswer:
        doc = decode_body(await _body(request), request.content_type)
        uuid = doc.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            return {"STATUS": "ERROR", "ERROR": "Fiscal hub: no uuid in the request"}
        try:
            order = await self.store.orders.get(uuid)
        except OrderNotFound:
            order = None
        if order is None or order.connector != CONNECTOR or order.account != install.name:
            return {"STATUS": "ERROR", "ERROR": f"Fiscal hub: no check {uuid} for this cashbox"}
        return status_answer(order)


async def _body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise CheckRefused("", f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            return await request.read()  # the server's client_max_size bounds it too
    except web.HTTPRequestEntityTooLarge:
        raise CheckRefused("", "the body is larger than the hub takes") from None


def _print(answer: PrintAnswer) -> web.Response:
    return web.json_response(answer, dumps=_dumps)


def _status(answer: StatusAnswer) -> web.Response:
    return web.json_response(answer, dumps=_dumps)


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)
