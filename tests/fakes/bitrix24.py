"""A fake Bitrix24 portal for tests: aiohttp.web on 127.0.0.1.

Written from Bitrix24's public REST documentation [B24] (`sale.cashbox.*`, `catalog.vat.list`,
incoming webhooks, OAuth) and the behaviour of the portal's core towards a REST cashbox:

- `sale.cashbox.handler.add` refuses a taken CODE (`ERROR_HANDLER_ALREADY_EXIST`); it reads
  SUPPORTS_FFD105 only inside SETTINGS; without it, only sell and the sell returns print.
- `sale.cashbox.add` creates the cashbox inactive unless ACTIVE=Y; an inactive one prints nothing.
- A check is posted once to PRINT_URL as a PHP form over HTTP/1.0 with `Connection: close`;
  `{"UUID"}` stores the external uuid (state P), `{"ERRORS"}` marks it E, anything else
  leaves it in P with no uuid.
- A status refresh posts `uuid` to CHECK_URL: WAIT changes nothing, DONE stores the fiscal
  data (Y), ERROR marks E, and anything else marks it Y with empty fiscal data.
- `sale.cashbox.check.apply` answers `true` for a check already in Y and changes nothing;
  an unknown UUID is `ERROR_CHECK_NOT_FOUND`.
- Errors are `{"error", "error_description"}`; faults can be queued per method
  (`fail(method, 503, "QUERY_LIMIT_EXCEEDED")`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import aiohttp
from aiohttp import web

from tests.support.broker import free_port

FFD105_ONLY = frozenset({"sell", "sellreturn", "sellreturncash"})
INCOME = frozenset(
    {"sell", "advancepayment", "prepayment", "fullprepayment", "credit", "creditpayment"}
)


@dataclass
class PortalCheck:
    id: int
    cashbox_id: int
    query: dict[str, Any]
    status: str = "N"  # N new, P printing, E error, Y printed
    external_uuid: str | None = None
    link_params: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    applied: int = 0  # check.apply calls that changed it
    apply_answers: int = 0  # check.apply calls answered true


class RestFailure(Exception):
    def __init__(self, status: int, error: str, description: str = "") -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description


def php_form(data: dict[str, Any]) -> str:
    """PHP's http_build_query: nested arrays as a[b][0]=…, null left out, + for spaces."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}[{key}]" if prefix else str(key), item)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(f"{prefix}[{i}]", item)
        elif isinstance(value, bool):
            pairs.append((prefix, "1" if value else ""))
        else:
            pairs.append((prefix, str(value)))

    walk("", data)
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in pairs)


class FakePortal:
    def __init__(self) -> None:
        self.port = free_port()
        self.domain = "127.0.0.1"
        self.webhook_code = secrets.token_hex(8)
        self.client_id = "local.test-app"
        self.client_secret = secrets.token_hex(8)
        self.refresh_token = secrets.token_hex(8)
        self.access_tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.token_ttl_s = 3600.0
        self.handlers: dict[str, dict[str, Any]] = {}
        self.cashboxes: dict[int, dict[str, Any]] = {}
        self.checks: dict[int, PortalCheck] = {}
        self.vats: list[dict[str, Any]] = [
            {"id": "1", "name": "Без НДС", "rate": None},
            {"id": "2", "name": "НДС 0%", "rate": "0.00"},
            {"id": "3", "name": "НДС 10%", "rate": "10.00"},
            {"id": "4", "name": "НДС 20%", "rate": "20.00"},
        ]
        self.calls: Counter[str] = Counter()
        self.refused = 0  # calls refused for a missing, unknown or expired token
        self.faults: dict[str, list[tuple[int, str]]] = {}
        self.print_requests: list[dict[str, Any]] = []  # what PRINT_URL saw come back
        self._ids = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook(self) -> str:
        return f"{self.url}/rest/1/{self.webhook_code}/"

    def fail(self, method: str, status: int, error: str, times: int = 1) -> None:
        self.faults.setdefault(method, []).extend([(status, error)] * times)

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # --- server ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakePortal:
        app = web.Application()
        app.router.add_post("/rest/{user}/{code}/{method}", self._webhook_call)
        app.router.add_post("/rest/{method}", self._oauth_call)
        app.router.add_get("/oauth/token/", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        # The core speaks HTTP/1.0 unless HTTP_VERSION says 1.1; the handler gets either.
        self._session = aiohttp.ClientSession(version=aiohttp.HttpVersion10)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _webhook_call(self, request: web.Request) -> web.Response:
        if request.match_info["code"] != self.webhook_code:
            return _error(401, "INVALID_CREDENTIALS", "Invalid request credentials")
        return await self._call(request.match_info["method"], await request.json())

    async def _oauth_call(self, request: web.Request) -> web.Response:
        params = await request.json()
        token = params.pop("auth", None)
        expiry = self.access_tokens.get(str(token))
        if expiry is None:
            self.refused += 1
            return _error(401, "invalid_token", "Unable to authorize user")
        if expiry <= time.monotonic():
            self.refused += 1
            return _error(401, "expired_token", "The access token provided has expired.")
        return await self._call(request.match_info["method"], params)

    async def _token(self, request: web.Request) -> web.Response:
        q = request.query
        if (
            q.get("grant_type") != "refresh_token"
            or q.get("client_id") != self.client_id
            or q.get("client_secret") != self.client_secret
            or q.get("refresh_token") != self.refresh_token
        ):
            return _error(400, "invalid_grant", "Invalid refresh token")
        self.calls["oauth/token"] += 1
        access = secrets.token_hex(8)
        self.refresh_token = secrets.token_hex(8)  # a refresh token is used once
        self.access_tokens[access] = time.monotonic() + self.token_ttl_s
        return web.json_response(
            {
                "access_token": access,
                "refresh_token": self.refresh_token,
                "expires_in": int(self.token_ttl_s),
                "domain": self.domain,
            }
        )

    async def _call(self, method: str, params: dict[str, Any]) -> web.Response:
        self.calls[method] += 1
        queued = self.faults.get(method)
        if queued:
            status, error = queued.pop(0)
            return _error(status, error, "injected")
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return _error(404, "ERROR_METHOD_NOT_FOUND", f"Method not found: {method}")
        try:
            return web.json_response({"result": handler(params), "time": {}})
        except RestFailure as err:
            return _error(err.status, err.error, err.description)

    # --- REST methods -----------------------------------------------------------------------

    def m_sale_cashbox_handler_add(self, p: dict[str, Any]) -> int:
        for key in ("CODE", "NAME", "SETTINGS"):
            if not p.get(key):
                raise RestFailure(400, "ERROR_CHECK_FAILURE", f"{key} is required")
        settings = p["SETTINGS"]
        for key in ("PRINT_URL", "CHECK_URL", "CONFIG"):
            if key not in settings:
                raise RestFailure(400, "ERROR_CHECK_FAILURE", f"SETTINGS[{key}] is required")
        if p["CODE"] in self.handlers:
            raise RestFailure(400, "ERROR_HANDLER_ALREADY_EXIST", "the handler exists")
        handler_id = self._next_id()
        self.handlers[p["CODE"]] = {
            "ID": handler_id,
            "CODE": p["CODE"],
            "NAME": p["NAME"],
            "SORT": p.get("SORT", 100),
            "SETTINGS": settings,
            # The core ignores a top-level SUPPORTS_FFD105.
            "SUPPORTS_FFD105": settings.get("SUPPORTS_FFD105", "N"),
        }
        return handler_id

    def _handler_by_id(self, handler_id: object) -> dict[str, Any]:
        for handler in self.handlers.values():
            if str(handler["ID"]) == str(handler_id):
                return handler
        raise RestFailure(400, "ERROR_HANDLER_NOT_FOUND", "no such handler")

    def m_sale_cashbox_handler_update(self, p: dict[str, Any]) -> bool:
        handler = self._handler_by_id(p.get("ID"))
        fields = p.get("FIELDS") or {}
        for key in ("NAME", "SORT"):
            if key in fields:
                handler[key] = fields[key]
        if "SETTINGS" in fields:
            handler["SETTINGS"] = fields["SETTINGS"]
            handler["SUPPORTS_FFD105"] = fields["SETTINGS"].get("SUPPORTS_FFD105", "N")
        return True

    def m_sale_cashbox_handler_delete(self, p: dict[str, Any]) -> bool:
        handler = self._handler_by_id(p.get("ID"))
        if any(c["REST_CODE"] == handler["CODE"] for c in self.cashboxes.values()):
            raise RestFailure(400, "ERROR_HANDLER_IS_USED", "a cashbox uses this handler")
        del self.handlers[handler["CODE"]]
        return True

    def m_sale_cashbox_handler_list(self, _p: dict[str, Any]) -> list[dict[str, Any]]:
        return [dict(h) for h in self.handlers.values()]

    def m_sale_cashbox_add(self, p: dict[str, Any]) -> int:
        for key in ("NAME", "REST_CODE", "EMAIL"):
            if not p.get(key):
                raise RestFailure(400, "ERROR_CHECK_FAILURE", f"{key} is required")
        if p["REST_CODE"] not in self.handlers:
            raise RestFailure(400, "ERROR_HANDLER_NOT_FOUND", "no handler with REST_CODE")
        cashbox_id = self._next_id()
        self.cashboxes[cashbox_id] = {
            "ID": cashbox_id,
            "NAME": p["NAME"],
            "REST_CODE": p["REST_CODE"],
            "EMAIL": p["EMAIL"],
            "NUMBER_KKM": p.get("NUMBER_KKM", ""),
            "ACTIVE": p.get("ACTIVE", "N"),
            "USE_OFFLINE": p.get("USE_OFFLINE", "N"),
            "SETTINGS": p.get("SETTINGS") or {},
        }
        return cashbox_id

    def m_sale_cashbox_update(self, p: dict[str, Any]) -> bool:
        cashbox = self.cashboxes.get(int(p.get("ID") or 0))
        if cashbox is None:
            raise RestFailure(400, "ERROR_CASHBOX_NOT_FOUND", "no such cashbox")
        cashbox.update(p.get("FIELDS") or {})
        return True

    def m_sale_cashbox_delete(self, p: dict[str, Any]) -> bool:
        if self.cashboxes.pop(int(p.get("ID") or 0), None) is None:
            raise RestFailure(400, "ERROR_CASHBOX_NOT_FOUND", "no such cashbox")
        return True

    def m_sale_cashbox_list(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        wanted = (p.get("filter") or {}).get("REST_CODE")
        return [
            dict(c) for c in self.cashboxes.values() if wanted is None or c["REST_CODE"] == wanted
        ]

    def m_catalog_vat_list(self, _p: dict[str, Any]) -> dict[str, Any]:
        return {"vats": [dict(v) for v in self.vats]}

    def m_sale_cashbox_check_apply(self, p: dict[str, Any]) -> bool:
        check = self._by_uuid(p.get("UUID"))
        if check is None:
            raise RestFailure(400, "ERROR_CHECK_NOT_FOUND", "check not found")
        check.apply_answers += 1
        if check.status == "Y":
            return True
        check.status = "Y"
        check.applied += 1
        check.link_params = {k: v for k, v in p.items() if k != "UUID"}
        return True

    def _by_uuid(self, uuid: object) -> PortalCheck | None:
        for check in self.checks.values():
            if check.external_uuid is not None and check.external_uuid == uuid:
                return check
        return None

    # --- the core's side --------------------------------------------------------------------

    def new_check(
        self,
        cashbox_id: int,
        check_type: str,
        items: list[dict[str, Any]],
        payments: list[dict[str, Any]],
        *,
        email: str | None = "buyer@example.org",
        phone: str | None = None,
        check_id: int | None = None,
    ) -> PortalCheck:
        """A check as the core's buildCheckQuery makes it."""
        cashbox = self.cashboxes[cashbox_id]
        check_id = check_id or self._next_id()
        total = sum(float(p["sum"]) for p in payments)
        query: dict[str, Any] = {
            "type": check_type,
            "calculated_sign": "income" if check_type in INCOME else "consumption",
            "unique_id": check_id,
            "items": items,
            "date_create": int(time.time()),
            "payments": payments,
            "client_email": email,
            "client_phone": phone,
            "total_sum": round(total, 2),
            "uuid": f"check|{self.domain}|{check_id}",
            "operation": "income" if check_type in INCOME else "consumption",
            "number_kkm": cashbox["NUMBER_KKM"],
            "service_email": cashbox["EMAIL"],
            "cashbox_params": cashbox["SETTINGS"],
        }
        check = PortalCheck(check_id, cashbox_id, query)
        self.checks[check_id] = check
        return check

    def _handler_of(self, check: PortalCheck) -> dict[str, Any]:
        cashbox = self.cashboxes[check.cashbox_id]
        if cashbox["ACTIVE"] != "Y":
            raise RuntimeError("the core prints nothing on an inactive cashbox")
        handler = self.handlers[cashbox["REST_CODE"]]
        if handler["SUPPORTS_FFD105"] != "Y" and check.query["type"] not in FFD105_ONLY:
            raise RuntimeError(f"{check.query['type']} needs a handler with SUPPORTS_FFD105=Y")
        return handler

    async def print_check(self, check: PortalCheck, *, url: str | None = None) -> None:
        """PRINT_URL, called once: HTTP/1.0, Connection: close, a PHP form."""
        handler = self._handler_of(check)
        target = url or handler["SETTINGS"]["PRINT_URL"]
        check.status = "P"
        status, doc = await self._post(target, check.query)
        self.print_requests.append({"status": status, "doc": doc})
        if status != 200 or not isinstance(doc, dict):
            return  # stays in P, no uuid: nothing tells the manager
        doc = {str(k).upper(): v for k, v in doc.items()}
        if isinstance(doc.get("ERRORS"), list) and doc["ERRORS"]:
            check.status = "E"
            check.errors = [str(e) for e in doc["ERRORS"]]
        elif doc.get("UUID"):
            check.external_uuid = str(doc["UUID"])

    async def refresh(self, check: PortalCheck, *, url: str | None = None) -> str:
        """A manager's "refresh" (or the agent): posts uuid to CHECK_URL; returns STATUS."""
        handler = self._handler_of(check)
        target = url or handler["SETTINGS"]["CHECK_URL"]
        status, doc = await self._post(target, {"uuid": check.external_uuid})
        answer = doc.get("STATUS") if status == 200 and isinstance(doc, dict) else None
        if answer == "WAIT":
            return "WAIT"
        if answer == "ERROR":
            check.status = "E"
            check.errors = [str(doc.get("ERROR", ""))]
            return "ERROR"
        # DONE, or anything else at all: printed, with whatever fiscal data came.
        check.status = "Y"
        if answer == "DONE":
            check.link_params = {k: v for k, v in doc.items() if k != "STATUS"}
        return str(answer)

    async def _post(self, url: str, data: dict[str, Any]) -> tuple[int, Any]:
        assert self._session is not None
        try:
            async with (
                asyncio.timeout(60),
                self._session.post(
                    url,
                    data=php_form(data).encode(),
                    headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "Connection": "close",
                    },
                ) as response,
            ):
                text = await response.text()
                try:
                    return response.status, json.loads(text)
                except ValueError:
                    return response.status, None
        except (aiohttp.ClientError, TimeoutError):
            return 0, None


def _error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)
