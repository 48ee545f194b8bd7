"""A fake Uspacy portal for tests: aiohttp.web on 127.0.0.1, written from [USPACY].

- Auth: `app_sign_in {client_id, client_secret}` and `refresh_token` (the refresh token as
  the bearer) issue HS256 JWTs carrying `domain`, `exp` and `permissions`; a JWT past
  `exp` (or revoked with `expire_tokens()`) gets 401; a refresh rotates both tokens.
- Permissions per entity and action (`crm.deals.view|edit`, `comments.comments.create`,
  `company.webhooks.create`): a missing one gets 403.
- CRM: deals (GET, PATCH: an unknown field code gets 422), the funnel and its stages, deal
  fields (create, list), moves between stages, product lists, comments.
- Webhooks: registration; an unregistered one is unconfirmed and delivers nothing until
  the receiver GETs the link Uspacy POSTs to it (SNS-style `SubscriptionConfirmation`);
  a stage change (by API or by `move()`) POSTs a `Notification` to every confirmed one.
- Marketplace: `install_app(callback_url)` POSTs `{token, refresh_token, expiry_date}`
  (epoch seconds) to `<callback_url>/portals/install` with a JWT signed (HS256) by the app's
  secret, the portal in its header `domain`; `uninstall_app` DELETEs `/portals/uninstall`.
- Faults: `fail(path_prefix, status, times, retry_after=…)` answers the next calls to a
  path with 429/5xx, with `Retry-After` in seconds or as an HTTP date.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.broker import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ALL_PERMISSIONS = (
    "crm.deals.view",
    "crm.deals.edit",
    "crm.deals.create",
    "comments.comments.create",
    "company.webhooks.create",
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Fault:
    prefix: str
    status: int
    times: int
    retry_after: str | None = None


@dataclass
class Hook:
    id: int
    url: str
    events: list[dict[str, Any]]
    confirmed: bool = False
    token: str = field(default_factory=lambda: secrets.token_hex(8))


class FakeUspacy:
    """One portal with one External connector (client id and secret)."""

    def __init__(
        self, *, token_ttl_s: int = 3600, permissions: tuple[str, ...] = ALL_PERMISSIONS
    ) -> None:
        self.port = free_port()
        self.client_id = "app-" + secrets.token_hex(4)
        self.client_secret = secrets.token_hex(16)
        self.app_id = "market-" + secrets.token_hex(4)  # the marketplace app's client id
        self.app_secret = secrets.token_hex(16)
        self.token_ttl_s = token_ttl_s
        self.permissions = permissions
        self._key = secrets.token_bytes(32)
        self._jwts: dict[str, float] = {}  # jwt -> expiry (epoch s)
        self._refresh: set[str] = set()
        self.sign_ins = 0
        self.refreshes = 0
        self.deals: dict[int, dict[str, Any]] = {}
        self.products: dict[int, list[dict[str, Any]]] = {}
        self.fields: list[dict[str, Any]] = [{"code": "title", "name": "Title", "type": "string"}]
        self.funnels: list[dict[str, Any]] = [
            {
                "id": 1,
                "title": "Продажі",
                "funnel_code": "sales",
                "default": True,
                "active": True,
                "stages": [
                    {"id": 11, "title": "Нова", "stage_code": "new", "sort": 1},
                    {"id": 12, "title": "Оплачено", "stage_code": "paid", "sort": 2},
                    {"id": 13, "title": "Чек видано", "stage_code": "receipt", "sort": 3},
                ],
            }
        ]
        self.comments: list[dict[str, Any]] = []
        self.patches: list[tuple[int, dict[str, Any]]] = []
        self.moves: list[tuple[int, int]] = []
        self.hooks: dict[int, Hook] = {}
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, str, int]] = []  # (method, path, status)
        self.sns = True  # events in the SNS-style envelope; False: the bare event
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks = asyncio.TaskGroup()  # outgoing webhook POSTs

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- set-up and inspection --------------------------------------------------------------

    def add_deal(self, deal_id: int, stage: int, lines: list[dict[str, Any]], **extra: Any) -> None:
        self.deals[deal_id] = {
            "id": deal_id,
            "title": f"Угода {deal_id}",
            "kanban_stage_id": stage,
            "kanban_status": "IN_WORK",
            **extra,
        }
        self.products[deal_id] = lines

    def fail(
        self, prefix: str, status: int, times: int = 1, retry_after: str | None = None
    ) -> None:
        self.faults.append(Fault(prefix, status, times, retry_after))

    def expire_tokens(self) -> None:
        """Every JWT issued so far now answers 401, as after its `exp`."""
        self._jwts = dict.fromkeys(self._jwts, 0.0)

    def subscribe(self, url: str) -> Hook:
        """A confirmed stage-change webhook to `url`, as left by an earlier install."""
        hook = Hook(len(self.hooks) + 1, url, [], confirmed=True)
        self.hooks[hook.id] = hook
        return hook

    def _app_jwt(self) -> str:
        now = int(time.time())
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "domain": self.domain}).encode())
        claims = {"iss": "uspacy", "iat": now, "exp": now + 300, "domain": self.domain}
        body = _b64(json.dumps(claims).encode())
        sig = _b64(
            hmac.new(self.app_secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        )
        return f"{head}.{body}.{sig}"

    async def install_app(self, callback_url: str) -> int:
        """The portal installs the marketplace app: its tokens go to the app's callback."""
        issued = self._issue()
        body = {
            "token": issued["jwt"],
            "refresh_token": issued["refreshToken"],
            "expiry_date": int(time.time()) + self.token_ttl_s,
        }
        headers = {"Authorization": f"Bearer {self._app_jwt()}"}
        assert self._session is not None
        url = callback_url + "/portals/install"
        async with asyncio.timeout(10), self._session.post(url, json=body, headers=headers) as resp:
            await resp.read()
            return resp.status

    async def uninstall_app(self, callback_url: str) -> int:
        headers = {"Authorization": f"Bearer {self._app_jwt()}"}
        assert self._session is not None
        url = callback_url + "/portals/uninstall"
        async with asyncio.timeout(10), self._session.delete(url, headers=headers) as resp:
            await resp.read()
            return resp.status

    def comments_on(self, deal_id: int) -> list[str]:
        return [c["message"] for c in self.comments if c["entityId"] == deal_id]

    async def move(self, deal_id: int, stage: int) -> None:
        """A manager drags the deal to `stage` in the portal."""
        self.deals[deal_id]["kanban_stage_id"] = stage
        await self._emit(deal_id)

    async def __aenter__(self) -> FakeUspacy:
        app = web.Application(middlewares=[self._faults])
        r = app.router
        r.add_post("/auth/v1/auth/app_sign_in", self._sign_in)
        r.add_post("/auth/v1/auth/refresh_token", self._refresh_token)
        r.add_get("/crm/v1/entities/deals/funnel", self._guard("crm.deals.view", self._funnel))
        r.add_get("/crm/v1/entities/deals/fields", self._guard("crm.deals.view", self._list_fields))
        r.add_post("/crm/v1/entities/deals/fields", self._guard("crm.deals.edit", self._add_field))
        r.add_get("/crm/v1/entities/deals/{id:\\d+}", self._guard("crm.deals.view", self._deal))
        r.add_patch("/crm/v1/entities/deals/{id:\\d+}", self._guard("crm.deals.edit", self._patch))
        r.add_post(
            "/crm/v1/entities/deals/{id:\\d+}/move/stage/{stage:\\d+}",
            self._guard("crm.deals.edit", self._move),
        )
        r.add_get(
            "/crm/v1/static/entity-product-lists", self._guard("crm.deals.view", self._products)
        )
        r.add_post("/comments/v1/comments", self._guard("comments.comments.create", self._comment))
        r.add_post("/company/v1/webhooks", self._guard("company.webhooks.create", self._add_hook))
        r.add_get(
            "/company/v1/webhooks/{id:\\d+}", self._guard("company.webhooks.create", self._hook)
        )
        r.add_get("/company/v1/webhooks/{id:\\d+}/confirm/{token}", self._confirm)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        await self._tasks.__aenter__()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._tasks.__aexit__(None, None, None)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- plumbing ---------------------------------------------------------------------------

    @web.middleware
    async def _faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        for fault in self.faults:
            if fault.times > 0 and request.path.startswith(fault.prefix):
                fault.times -= 1
                self.calls.append((request.method, request.path, fault.status))
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                text = "Too Many Attempts." if fault.status == 429 else "Service Unavailable"
                return web.json_response({"message": text}, status=fault.status, headers=headers)
        response = await handler(request)
        self.calls.append((request.method, request.path, response.status))
        return response

    def _guard(self, permission: str, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            header = request.headers.get("Authorization", "")
            token = header.removeprefix("Bearer ")
            if self._jwts.get(token, 0.0) <= time.time():
                return web.json_response({"message": "Unauthenticated."}, status=401)
            claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
            if permission not in claims["permissions"]["all"]:
                return web.json_response({"message": "Forbidden."}, status=403)
            return await handler(request)

        return guarded

    def _issue(self) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": "uspacy",
            "iat": now,
            "exp": now + self.token_ttl_s,
            "domain": self.domain,
            "id": self.client_id,
            "permissions": {"all": list(self.permissions)},
        }
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims).encode())
        sig = _b64(hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest())
        jwt = f"{head}.{body}.{sig}"
        self._jwts[jwt] = now + self.token_ttl_s
        refresh = secrets.token_hex(16)
        self._refresh.add(refresh)
        return {"jwt": jwt, "refreshToken": refresh, "expireInSeconds": self.token_ttl_s}

    async def _sign_in(self, request: web.Request) -> web.Response:
        doc = await request.json()
        ok = hmac.compare_digest(str(doc.get("client_id")), self.client_id) and hmac.compare_digest(
            str(doc.get("client_secret")), self.client_secret
        )
        if not ok:
            return web.json_response({"message": "Invalid credentials"}, status=401)
        self.sign_ins += 1
        return web.json_response(self._issue())

    async def _refresh_token(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self._refresh:
            return web.json_response({"message": "Unauthenticated."}, status=401)
        self._refresh.discard(token)  # rotated: the old refresh token is spent
        self.refreshes += 1
        return web.json_response(self._issue())

    # --- CRM --------------------------------------------------------------------------------

    async def _funnel(self, _request: web.Request) -> web.Response:
        return web.json_response(self.funnels)

    async def _list_fields(self, _request: web.Request) -> web.Response:
        return web.json_response({"data": self.fields})

    async def _add_field(self, request: web.Request) -> web.Response:
        doc = await request.json()
        if any(f["code"] == doc.get("code") for f in self.fields):
            return web.json_response({"message": "The code has already been taken."}, status=422)
        self.fields.append({"code": doc["code"], "name": doc["name"], "type": doc["type"]})
        return web.json_response(self.fields[-1], status=201)

    def _deal_of(self, request: web.Request) -> dict[str, Any]:
        deal = self.deals.get(int(request.match_info["id"]))
        if deal is None:
            raise web.HTTPNotFound(text='{"message": "Not found"}', content_type="application/json")
        return deal

    async def _deal(self, request: web.Request) -> web.Response:
        return web.json_response(self._deal_of(request))

    async def _patch(self, request: web.Request) -> web.Response:
        deal = self._deal_of(request)
        doc = await request.json()
        known = {f["code"] for f in self.fields}
        unknown = [k for k in doc if k not in known]
        if unknown:
            return web.json_response({"message": f"unknown field {unknown[0]}"}, status=422)
        deal.update(doc)
        self.patches.append((deal["id"], doc))
        return web.json_response(deal)

    async def _move(self, request: web.Request) -> web.Response:
        deal = self._deal_of(request)
        stage = int(request.match_info["stage"])
        self.moves.append((deal["id"], stage))
        changed = deal["kanban_stage_id"] != stage
        deal["kanban_stage_id"] = stage
        if changed:
            self._tasks.create_task(self._emit(deal["id"]), name="fake-uspacy-emit")
        return web.json_response(deal)

    async def _products(self, request: web.Request) -> web.Response:
        if request.query.get("entity_type") != "deals":
            return web.json_response({"message": "entity_type"}, status=422)
        deal_id = int(request.query.get("entity_id", "0"))
        lines = self.products.get(deal_id, [])
        return web.json_response(
            {
                "id": deal_id * 10,
                "entity_type": "deals",
                "entity_id": deal_id,
                "is_automatic_calculation": True,
                "list_products": lines,
            }
        )

    async def _comment(self, request: web.Request) -> web.Response:
        doc = await request.json()
        if doc.get("entityType") != "deal" or not isinstance(doc.get("entityId"), int):
            return web.json_response({"message": "entityType/entityId"}, status=422)
        comment = {"id": len(self.comments) + 1, **doc}
        self.comments.append(comment)
        return web.json_response(comment, status=201)

    # --- webhooks ---------------------------------------------------------------------------

    async def _add_hook(self, request: web.Request) -> web.Response:
        doc = await request.json()
        hook = Hook(len(self.hooks) + 1, str(doc["url"]), list(doc.get("events") or []))
        self.hooks[hook.id] = hook
        link = f"{self.url}/company/v1/webhooks/{hook.id}/confirm/{hook.token}"
        self._tasks.create_task(
            self._post(hook.url, {"Type": "SubscriptionConfirmation", "SubscribeURL": link}),
            name="fake-uspacy-confirm",
        )
        return web.json_response(self._hook_doc(hook), status=201)

    async def _hook(self, request: web.Request) -> web.Response:
        hook = self.hooks.get(int(request.match_info["id"]))
        if hook is None:
            return web.json_response({"message": "Not found"}, status=404)
        return web.json_response(self._hook_doc(hook))

    @staticmethod
    def _hook_doc(hook: Hook) -> dict[str, Any]:
        return {
            "id": hook.id,
            "url": hook.url,
            "active": True,
            "events": hook.events,
            "confirmed": hook.confirmed,
        }

    async def _confirm(self, request: web.Request) -> web.Response:
        hook = self.hooks.get(int(request.match_info["id"]))
        if hook is None or not hmac.compare_digest(hook.token, request.match_info["token"]):
            return web.json_response({"message": "Not found"}, status=404)
        hook.confirmed = True
        return web.json_response({"confirmed": True})

    async def _emit(self, deal_id: int) -> None:
        event = {
            "data": {
                "entity": dict(self.deals[deal_id]),
                "action": "updateStage",
                "service": "crm",
                "timestamp": int(time.time()),
            }
        }
        body: dict[str, Any] = (
            {"Type": "Notification", "Message": json.dumps(event)} if self.sns else event
        )
        for hook in list(self.hooks.values()):
            if hook.confirmed:
                await self._post(hook.url, body)

    async def _post(self, url: str, body: dict[str, Any]) -> None:
        assert self._session is not None
        async with asyncio.timeout(10), self._session.post(url, json=body) as resp:
            await resp.read()
