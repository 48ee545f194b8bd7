"""A fake МойСклад for tests: aiohttp.web on 127.0.0.1, written from [MOYSKLAD] (JSON API 1.2)
and [MOYSKLAD-POS] (POS API 1.0).

JSON API (`/api/remap/1.2`): 415 without `Accept-Encoding: gzip`; Bearer tokens (a solution
token costs 1 unit, a user token 4) against a bucket of 45 units per 3 s per token, and at
most 5 requests in flight per token, each overflow answered 429 with the `X-Lognex-*` headers;
errors as `{"errors": [{"error", "code"}]}`; customer orders and retail demands with positions
(prices in kopecks), states and attributes metadata; attribute PUTs; webhooks (CRUD, unique
per entity type, action and URL, one URL per entity type and action for a solution) delivered
as `POST <url>?requestId=…` with a 1500 ms timeout, then three immediate retries, then
dropped; a write carrying `X-Lognex-WebHook-DisableByPrefix` fires no webhook whose URL
starts with its value.

POS API (`/api/posap/1.0`): `attach` (Basic) issues a token and revokes the store's older
ones; the auth headers `Lognex-Pos-Auth-Token` + `Lognex-Pos-Auth-Cashier-Uid`; open shift;
the master queue: poll hands out the oldest operation not yet approved or rejected, and hands
the same one out again until then (the undocumented case a master must survive); an empty
queue answers 204; approve needs an opened shift. 100 requests per 5 s per token.

`fail_next` queues forced answers (429, 503…) for a method and path prefix.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.broker import free_port

API = "/api/remap/1.2"
POS = "/api/posap/1.0"
SOLUTION_TOKEN = "solution-token-0001"
USER_TOKEN = "user-token-0001"
ADMIN = ("admin@shop", "admin-pass")
ORG_ID = "org-0001"
STORE_ID = "store-0001"
WEBHOOK_TIMEOUT_S = 1.5
BUCKET_UNITS = 45
BUCKET_S = 3.0
POS_LIMIT = (100, 5.0)


def _error(status: int, code: int, text: str) -> web.Response:
    return web.json_response({"errors": [{"error": text, "code": code}]}, status=status)


@dataclass
class Delivery:
    request_id: str
    url: str
    body: dict[str, Any]
    status: int | None  # None: no answer within the timeout


@dataclass
class Fake:
    port: int = field(default_factory=free_port)
    tokens: dict[str, int] = field(
        default_factory=lambda: {SOLUTION_TOKEN: 1, USER_TOKEN: 4}
    )  # token -> units per request
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)  # id -> name
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> metadata
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    puts: list[dict[str, Any]] = field(default_factory=list)  # applied order PUTs
    fail_next: dict[tuple[str, str], deque[int]] = field(default_factory=lambda: defaultdict(deque))
    answered_429: int = 0
    # POS
    pos_tokens: dict[str, str] = field(default_factory=dict)  # token -> uid
    store_tokens: dict[str, list[str]] = field(default_factory=dict)
    shifts: set[str] = field(default_factory=set)
    queue: list[dict[str, Any]] = field(default_factory=list)
    approved: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    rejected: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    polls: int = 0
    handed: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # op id -> polls
    _spent: dict[str, deque[tuple[float, int]]] = field(default_factory=lambda: defaultdict(deque))
    _inflight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _tasks: set[asyncio.Task[list[Delivery]]] = field(default_factory=set)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base + API

    @property
    def pos_url(self) -> str:
        return self.base + POS

    # --- the shop's data ---------------------------------------------------------------------

    def add_state(self, name: str) -> str:
        state_id = str(uuid.uuid4())
        self.states[state_id] = name
        return state_id

    def state_meta(self, state_id: str, entity: str = "customerorder") -> dict[str, Any]:
        href = f"{self.api_url}/entity/{entity}/metadata/states/{state_id}"
        return {"meta": {"href": href, "type": "state", "mediaType": "application/json"}}

    def add_order(self, positions: list[dict[str, Any]], **fields: Any) -> str:
        order_id = str(uuid.uuid4())
        href = f"{self.api_url}/entity/customerorder/{order_id}"
        self.orders[order_id] = {
            "id": order_id,
            "meta": {"href": href, "type": "customerorder", "mediaType": "application/json"},
            "name": f"{len(self.orders) + 1:05d}",
            "vatEnabled": True,
            "vatIncluded": True,
            "sum": sum(_line_sum(p) for p in positions),
            "agent": {
                "meta": {"href": f"{self.api_url}/entity/counterparty/a1", "type": "counterparty"},
                "name": "ООО Покупатель",
                "email": "buyer@example.org",
            },
            "positions": positions,
            "attributes": {},
            "updated": _now(),
            **fields,
        }
        return order_id

    async def set_state(self, order_id: str, state_id: str) -> list[Delivery]:
        """A person moves the order to a state: МойСклад fires its UPDATE webhooks."""
        self.orders[order_id]["state"] = self.state_meta(state_id)
        self.orders[order_id]["updated"] = _now()
        return await self.fire("customerorder", "UPDATE", order_id, ["state"])

    async def fire(
        self, entity: str, action: str, order_id: str, fields: list[str], *, prefix: str = ""
    ) -> list[Delivery]:
        out = []
        for hook in list(self.webhooks.values()):
            if hook["entityType"] != entity or hook["action"] != action or not hook["enabled"]:
                continue
            if prefix and hook["url"].startswith(prefix):
                continue
            event: dict[str, Any] = {
                "meta": dict(self.orders[order_id]["meta"]),
                "action": action,
                "accountId": "acc-0001",
            }
            if hook.get("diffType") == "FIELDS":
                event["updatedFields"] = fields
            body = {"auditContext": {"uid": "admin@shop", "moment": _now()}, "events": [event]}
            out.append(await self.deliver(hook["url"], body, str(uuid.uuid4())))
        return out

    async def deliver(self, url: str, body: dict[str, Any], request_id: str) -> Delivery:
        """One delivery: up to four tries with the same requestId, then dropped."""
        assert self._session is not None
        delivery = Delivery(request_id, url, body, None)
        for _ in range(4):
            try:
                async with (
                    asyncio.timeout(WEBHOOK_TIMEOUT_S),
                    self._session.post(f"{url}?requestId={request_id}", json=body) as resp,
                ):
                    delivery = Delivery(request_id, url, body, resp.status)
            except (TimeoutError, aiohttp.ClientError):
                delivery = Delivery(request_id, url, body, None)
            self.deliveries.append(delivery)
            if delivery.status in (200, 204):
                break
        return delivery

    def operation(self, positions: list[dict[str, Any]], kind: str = "retaildemand") -> str:
        """A minion (an online store) puts a cheque into the master queue."""
        op_id = str(uuid.uuid4())
        total = sum(_line_sum(p) for p in positions)
        self.queue.append(
            {
                "meta": {
                    "href": f"{self.api_url}/entity/{kind}/syncid/{op_id}",
                    "type": kind,
                    "id": op_id,
                    "idType": "sync",
                },
                "id": op_id,
                "vatEnabled": True,
                "vatIncluded": True,
                "taxSystem": "GENERAL_TAX_SYSTEM",
                "sum": total,
                "noCashSum": total,
                "positions": {"meta": {"size": len(positions)}, "rows": positions},
            }
        )
        return op_id

    # --- server -------------------------------------------------------------------------------

    async def __aenter__(self) -> Fake:
        app = web.Application(middlewares=[self._gate])
        r = app.router
        for entity in ("customerorder", "retaildemand"):
            r.add_get(f"{API}/entity/{{entity:{entity}}}/metadata", self._metadata)
            r.add_get(f"{API}/entity/{{entity:{entity}}}/metadata/attributes", self._attributes)
            r.add_post(f"{API}/entity/{{entity:{entity}}}/metadata/attributes", self._add_attribute)
        r.add_get(API + "/entity/webhook", self._webhooks)
        r.add_post(API + "/entity/webhook", self._add_webhook)
        r.add_delete(API + "/entity/webhook/{id}", self._delete_webhook)
        r.add_get(API + "/entity/customerorder", self._list_orders)
        r.add_get(API + "/entity/customerorder/{id:[0-9a-f-]{36}}", self._get_order)
        r.add_get(API + "/entity/customerorder/{id:[0-9a-f-]{36}}/positions", self._get_positions)
        r.add_put(API + "/entity/customerorder/{id:[0-9a-f-]{36}}", self._put_order)
        r.add_post(POS + "/admin/attach/{store}", self._attach)
        r.add_put(POS + "/rpc/openshift/", self._open_shift)
        r.add_get(POS + "/cheque/rpc/master/poll/{org}", self._poll)
        r.add_put(POS + "/cheque/rpc/master/approve", self._approve)
        r.add_put(POS + "/cheque/rpc/master/reject", self._reject)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _gate(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Forced answers, gzip, auth and the rate limits, before any handler."""
        path = request.path
        for (method, prefix), queue in self.fail_next.items():
            if method == request.method and path.startswith(prefix) and queue:
                status = queue.popleft()
                if status == 429:
                    self.answered_429 += 1
                    return self._too_many(1000)
                return _error(status, 1000 + status, "forced")
        pos = path.startswith(POS)
        if not pos and "gzip" not in request.headers.get("Accept-Encoding", ""):
            return web.Response(status=415)  # [MOYSKLAD] no body
        if pos and "/admin/attach/" in path:
            return await handler(request)
        token, units = self._auth(request, pos)
        if token is None:
            return _error(401, 1056, "Ошибка аутентификации")
        limit, window = POS_LIMIT if pos else (BUCKET_UNITS, BUCKET_S)
        spent = self._spent[token]
        now = time.monotonic()
        while spent and spent[0][0] < now - window:
            spent.popleft()
        if sum(u for _, u in spent) + units > limit:
            self.answered_429 += 1
            return self._too_many(int((spent[0][0] + window - now) * 1000) + 1)
        if self._inflight[token] >= 5:
            self.answered_429 += 1
            resp = self._too_many(100)
            resp.text = json.dumps({"errors": [{"error": "parallel", "code": 1073}]})
            return resp
        spent.append((now, units))
        self._inflight[token] += 1
        try:
            return await handler(request)
        finally:
            self._inflight[token] -= 1

    def _auth(self, request: web.Request, pos: bool) -> tuple[str | None, int]:
        if pos:
            token = request.headers.get("Lognex-Pos-Auth-Token", "")
            uid = request.headers.get("Lognex-Pos-Auth-Cashier-Uid", "")
            ok = self.pos_tokens.get(token) == uid
            return (token if ok else None), 1
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        return (token, self.tokens[token]) if token in self.tokens else (None, 0)

    def _too_many(self, retry_ms: int) -> web.Response:
        resp = _error(429, 1049, "Превышено ограничение на количество запросов")
        resp.headers["X-RateLimit-Limit"] = str(BUCKET_UNITS)
        resp.headers["X-RateLimit-Remaining"] = "0"
        resp.headers["X-Lognex-Retry-TimeInterval"] = str(int(BUCKET_S * 1000))
        resp.headers["X-Lognex-Retry-After"] = str(max(retry_ms, 1))
        return resp

    # --- JSON API ------------------------------------------------------------------------------

    async def _metadata(self, request: web.Request) -> web.Response:
        entity = request.match_info["entity"]
        states = [
            {**self.state_meta(i, entity), "id": i, "name": n} for i, n in self.states.items()
        ]
        return web.json_response({"states": states, "attributes": list(self.attributes.values())})

    async def _attributes(self, _request: web.Request) -> web.Response:
        rows = list(self.attributes.values())
        return web.json_response({"meta": {"size": len(rows)}, "rows": rows})

    async def _add_attribute(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("type") not in ("string", "link", "text"):
            return _error(400, 3000, "type")
        attr_id = str(uuid.uuid4())
        href = f"{self.api_url}/entity/{request.match_info['entity']}/metadata/attributes/{attr_id}"
        self.attributes[attr_id] = {
            "meta": {"href": href, "type": "attributemetadata", "mediaType": "application/json"},
            "id": attr_id,
            "name": body["name"],
            "type": body["type"],
        }
        return web.json_response(self.attributes[attr_id])

    async def _webhooks(self, _request: web.Request) -> web.Response:
        rows = list(self.webhooks.values())
        return web.json_response({"meta": {"size": len(rows)}, "rows": rows})

    async def _add_webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        token, _ = self._auth(request, False)
        same = [
            h
            for h in self.webhooks.values()
            if (h["entityType"], h["action"]) == (body["entityType"], body["action"])
        ]
        if any(h["url"] == body["url"] for h in same):
            return _error(412, 30001, "Вебхук с такими параметрами уже существует")
        if len(same) >= (1 if token == SOLUTION_TOKEN else 5):
            return _error(412, 30002, "Превышено количество вебхуков")
        hook_id = str(uuid.uuid4())
        self.webhooks[hook_id] = {
            "meta": {"href": f"{self.api_url}/entity/webhook/{hook_id}", "type": "webhook"},
            "id": hook_id,
            "url": body["url"],
            "action": body["action"],
            "entityType": body["entityType"],
            "diffType": body.get("diffType", "NONE"),
            "enabled": True,
        }
        return web.json_response(self.webhooks[hook_id])

    async def _delete_webhook(self, request: web.Request) -> web.Response:
        self.webhooks.pop(request.match_info["id"], None)
        return web.Response(status=200)

    def _order(self, request: web.Request) -> dict[str, Any] | None:
        return self.orders.get(request.match_info["id"])

    async def _get_order(self, request: web.Request) -> web.Response:
        order = self._order(request)
        if order is None:
            return _error(404, 1021, "Объект не найден")
        expand = request.query.get("expand", "")
        doc = {k: v for k, v in order.items() if k not in ("positions", "attributes", "agent")}
        doc["agent"] = order["agent"] if "agent" in expand else {"meta": order["agent"]["meta"]}
        href = f"{order['meta']['href']}/positions"
        rows = [self._row(p, "positions.assortment" in expand) for p in order["positions"]]
        block: dict[str, Any] = {"meta": {"href": href, "size": len(rows), "limit": 1000}}
        if "positions" in expand:
            block["rows"] = rows[:100]  # [MOYSKLAD] expand holds at most 100 rows
        doc["positions"] = block
        doc["attributes"] = [
            {**self.attributes[a], "value": v} for a, v in order["attributes"].items()
        ]
        return web.json_response(doc)

    async def _list_orders(self, request: web.Request) -> web.Response:
        """`filter=state=<href>;updated>=<time>`: the only filters the hub uses."""
        rows = []
        conditions = [c for c in request.query.get("filter", "").split(";") if c]
        for order in self.orders.values():
            ok = True
            for cond in conditions:
                if cond.startswith("state="):
                    ok &= order.get("state", {}).get("meta", {}).get("href") == cond[6:]
                elif cond.startswith("updated>="):
                    ok &= order["updated"] >= cond[9:]
                else:
                    return _error(400, 1002, f"unknown filter {cond}")
            if ok:
                rows.append(
                    {
                        "meta": order["meta"],
                        "id": order["id"],
                        "attributes": [
                            {**self.attributes[a], "value": v}
                            for a, v in order["attributes"].items()
                        ],
                    }
                )
        limit = int(request.query.get("limit", "1000"))
        return web.json_response({"meta": {"size": len(rows)}, "rows": rows[:limit]})

    async def _get_positions(self, request: web.Request) -> web.Response:
        order = self._order(request)
        if order is None:
            return _error(404, 1021, "Объект не найден")
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", "1000"))
        rows = [
            self._row(p, "assortment" in request.query.get("expand", ""))
            for p in order["positions"]
        ]
        return web.json_response(
            {"meta": {"size": len(rows)}, "rows": rows[offset : offset + limit]}
        )

    def _row(self, position: dict[str, Any], expanded: bool) -> dict[str, Any]:
        row = dict(position)
        if not expanded:
            row["assortment"] = {"meta": position["assortment"]["meta"]}
        return row

    async def _put_order(self, request: web.Request) -> web.Response:
        order = self._order(request)
        if order is None:
            return _error(404, 1021, "Объект не найден")
        body = await request.json()
        for attr in body.get("attributes", []):
            attr_id = attr["meta"]["href"].rsplit("/", 1)[-1]
            if attr_id not in self.attributes or attr["meta"].get("type") != "attributemetadata":
                return _error(400, 3006, f"Неизвестный доп. реквизит {attr_id}")
            order["attributes"][attr_id] = attr["value"]
        self.puts.append(body)
        prefix = request.headers.get("X-Lognex-WebHook-DisableByPrefix", "")
        order_id = order["id"]
        # МойСклад answers the write first and fires its webhooks afterwards.
        task = asyncio.get_running_loop().create_task(
            self.fire("customerorder", "UPDATE", order_id, ["attributes"], prefix=prefix),
            name=f"fake-moysklad-webhook-{order_id}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response({k: v for k, v in order.items() if k != "positions"})

    # --- POS API -------------------------------------------------------------------------------

    async def _attach(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        try:
            login, _, password = (
                base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
            )
        except ValueError:
            login, password = "", ""
        if (login, password) != ADMIN:
            return web.Response(status=401)  # [MOYSKLAD-POS] no WWW-Authenticate
        store = request.match_info["store"]
        if store != STORE_ID:
            return _error(404, 1021, "Точка продаж не найдена")
        for old in self.store_tokens.get(store, []):  # a new token revokes the store's older ones
            self.pos_tokens.pop(old, None)
        token = f"pos-{uuid.uuid4().hex}"
        self.pos_tokens[token] = login
        self.store_tokens[store] = [token]
        return web.json_response({"token": token, "uid": login}, status=201)

    async def _open_shift(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.shifts.add(body["retailShift"]["meta"]["href"])
        return web.Response(status=204)

    async def _poll(self, request: web.Request) -> web.Response:
        self.polls += 1
        if request.match_info["org"] != ORG_ID:
            return _error(404, 1021, "Юрлицо не найдено")
        for op in self.queue:
            if op["id"] not in self.approved and op["id"] not in self.rejected:
                self.handed[op["id"]] += 1
                return web.json_response(op)  # the same one again until approved or rejected
        return web.Response(status=204)

    async def _approve(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("retailShift", {}).get("meta", {}).get("href") not in self.shifts:
            return _error(400, 3000, "retailShift: смена не открыта")
        self.approved[body["meta"]["id"]].append(body)
        return web.Response(status=204)

    async def _reject(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.rejected[body["meta"]["id"]].append(body["fiscalErrMsg"])
        return web.Response(status=204)


def product(
    name: str, price_kop: float, quantity: float = 1, vat: int = 20, **extra: Any
) -> dict[str, Any]:
    """A customer-order position with its assortment expanded."""
    return {
        "quantity": quantity,
        "price": price_kop,
        "discount": extra.pop("discount", 0),
        "vat": vat,
        "vatEnabled": True,
        "assortment": {
            "meta": {"href": f"http://fake/entity/product/{uuid.uuid4()}", "type": "product"},
            "name": name,
            "paymentItemType": "GOOD",
            "trackingType": "NOT_TRACKED",
        },
        **extra,
    }


def _line_sum(p: dict[str, Any]) -> float:
    return float(round(p["price"] * p["quantity"] * (100 - p.get("discount", 0)) / 100))


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")
