"""The HTTP endpoints: getToken, register a document, its report.

Every body is checked at the edge with the box's own task parser; a bad one is answered
with code 32 naming the field, and nothing is stored or sent. An order is committed before
its 200 answer. The same `external_id` in the same group answers code 33 with the first
document's uuid and prints nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid as uuid_mod
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.atol.limits import MAX_BODY_BYTES
from gateway.atol.names import NameMapping
from gateway.atol.parser import parse_request
from gateway.domain.errors import ValidationError
from gateway.hub.connectors.atol_online import wire
from gateway.hub.connectors.atol_online.errors import AtolCode, AtolError
from gateway.hub.connectors.atol_online.reports import report
from gateway.hub.connectors.atol_online.tokens import CONNECTOR, Tokens
from gateway.hub.errors import OrderNotFound, StoreError, UnknownRoute
from gateway.hub.model import NewOrder, Order, job_uuid
from gateway.hub.store import Store

_LOGGER = logging.getLogger(__name__)

BASE = "/possystem/v5"
READ_TIMEOUT_S = 30.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AtolOnlineApi:
    """The routes; `on_accepted` is told of each new order (to wake the dispatcher)."""

    def __init__(
        self,
        store: Store,
        tokens: Tokens,
        *,
        daemon_code: str,
        on_accepted: Callable[[Order], None],
        mapping: NameMapping | None = None,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.daemon_code = daemon_code
        self.on_accepted = on_accepted
        self.mapping = mapping or NameMapping()
        self.accepted = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{BASE}/getToken", _answering(self.get_token))
        for operation in wire.OPERATIONS:
            app.router.add_post(
                f"{BASE}/{{group_code}}/{operation}", _answering(self._register(operation))
            )
        app.router.add_get(f"{BASE}/{{group_code}}/report/{{uuid}}", _answering(self.get_report))

    async def get_token(self, request: web.Request) -> dict[str, Any]:
        doc = await _json_body(request)
        if not isinstance(doc, dict):
            raise AtolError(AtolCode.BAD_CREDENTIALS, "the body must be {login, pass}")
        token = await self.tokens.issue(doc.get("login"), doc.get("pass"), request.remote or "")
        return {"token": token, "error": None, "timestamp": wire.timestamp()}

    def _register(self, operation: str) -> Callable[[web.Request], Awaitable[dict[str, Any]]]:
        async def handler(request: web.Request) -> dict[str, Any]:
            return await self.register(request, operation)

        return handler

    async def register(self, request: web.Request, operation: str) -> dict[str, Any]:
        group = request.match_info["group_code"]
        account = await self.tokens.account(_token(request))
        if group not in account.group_codes:
            raise AtolError(AtolCode.GROUP_NOT_ALLOWED, f"group_code {group!r} is not this login's")
        doc = await _json_body(request)
        external_id, callback_url, ts = wire.check_envelope(doc)
        uuid = job_uuid(CONNECTOR, group, external_id)
        earlier = await self.store.orders.by_key(CONNECTOR, group, external_id)
        if earlier is not None:
            raise _duplicate(earlier)
        assert isinstance(doc, dict)
        task = wire.to_task(operation, doc.get("receipt"))
        try:
            parsed = parse_request(json.dumps({"uuid": uuid, "request": [task]}), self.mapping)
        except ValidationError as err:
            raise AtolError(
                AtolCode.INVALID_BODY, err.reason, field=wire.client_field(err.field)
            ) from None
        meta = {
            "group_code": group,
            "operation": operation,
            "callback_url": callback_url,
            "timestamp": ts,
            "login": account.login,
        }
        new = NewOrder(CONNECTOR, group, external_id, group, json.loads(parsed.tasks_json), meta)
        try:
            accepted = await self.store.orders.accept(new)
        except UnknownRoute:
            raise AtolError(
                AtolCode.GROUP_NOT_ROUTED, f"group_code {group!r} has no box: add a route"
            ) from None
        if not accepted.created:
            raise _duplicate(accepted.order)
        self.accepted += 1
        self.on_accepted(accepted.order)
        _LOGGER.info("Order %s (%s %s) for %s", uuid, group, operation, accepted.order.box_id)
        return {"uuid": uuid, "status": "wait", "error": None, "timestamp": wire.timestamp()}

    async def get_report(self, request: web.Request) -> dict[str, Any]:
        group = request.match_info["group_code"]
        account = await self.tokens.account(_token(request))
        if group not in account.group_codes:
            raise AtolError(AtolCode.GROUP_NOT_ALLOWED, f"group_code {group!r} is not this login's")
        uuid = request.match_info["uuid"]
        try:
            order = await self.store.orders.get(uuid)
        except OrderNotFound:
            order = None
        if order is None or order.connector != CONNECTOR or order.account != group:
            raise AtolError(AtolCode.NOT_FOUND, f"no document {uuid!r} in group {group!r}")
        return dict(report(order, daemon_code=self.daemon_code))


def _duplicate(order: Order) -> AtolError:
    return AtolError(
        AtolCode.DUPLICATE_EXTERNAL_ID,
        f"a document with external_id {order.crm_key!r} exists already",
        uuid=order.job_uuid,
    )


def _token(request: web.Request) -> str | None:
    return request.headers.get("Token") or request.query.get("token")


async def _json_body(request: web.Request) -> object:
    async with asyncio.timeout(READ_TIMEOUT_S):
        raw = await request.read()
    try:
        return json.loads(raw)
    except ValueError as err:
        raise AtolError(AtolCode.INVALID_BODY, f"not JSON: {err}") from None


def _answering(handler: Callable[[web.Request], Awaitable[dict[str, Any]]]) -> Handler:
    """Turns AtolError (and a store outage) into ATOL Online's error answer."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return web.json_response(await handler(request), dumps=_dumps)
        except AtolError as err:
            return _error(err)
        except StoreError as err:
            _LOGGER.error("Store unavailable: %s", err)
            return _error(AtolError(AtolCode.STORE_UNAVAILABLE, "try again later"))
        except web.HTTPRequestEntityTooLarge:
            return _error(
                AtolError(AtolCode.INVALID_BODY, f"the body is larger than {MAX_BODY_BYTES} bytes")
            )

    return wrapped


def _error(err: AtolError) -> web.Response:
    body: dict[str, Any] = {
        "error": {
            "error_id": str(uuid_mod.uuid4()),
            "code": int(err.atol_code),
            "text": err.text,
            "type": err.kind,
        },
        "timestamp": wire.timestamp(),
    }
    if err.field:
        body["error"]["field"] = err.field
    if err.uuid is not None:
        body["uuid"] = err.uuid
        body["status"] = "fail"
    return web.json_response(body, status=err.http_status, dumps=_dumps)


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)
