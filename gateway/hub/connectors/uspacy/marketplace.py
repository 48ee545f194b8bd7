"""Marketplace installs: the portal's tokens, kept in the store's connector records.

Uspacy calls `<callback_url>/portals/install` when a portal installs the app, with a JWT
signed (HS256) by the app's client secret and the body `{token, refresh_token,
expiry_date}`; `/portals/uninstall` (DELETE) when it is removed [USPACY]. The hub's
callback URL carries an unguessable install secret as well. The tokens are stored under
(`uspacy.portal`, portal domain) with a version, so the processes of one hub share them and
a refresh by one is seen by the others; two refreshing at once cannot overwrite each other
unseen (`put(expect=…)`): the loser reads the winner's tokens.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from gateway.hub.connectors.uspacy.errors import UspacyApiError
from gateway.hub.connectors.uspacy.settings import MarketplaceApp
from gateway.hub.errors import StoreError
from gateway.hub.store import Store

if TYPE_CHECKING:
    from gateway.hub.connectors.uspacy.client import UspacyClient

_LOGGER = logging.getLogger(__name__)

INSTALLS: Final = "uspacy.portal"
REFRESH: Final = "/auth/v1/auth/refresh_token"
TOKEN_LIFE_S: Final = 86400.0  # the install token's life when `expiry_date` is missing
REFRESH_BEFORE_S: Final = 3600.0  # a stored token is refreshed this long before it expires
MAX_BODY: Final = 64 * 1024


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class PortalTokens:
    """One installed portal's token, read from the store and refreshed before expiry."""

    def __init__(self, store: Store, domain: str, *, before_s: float = REFRESH_BEFORE_S) -> None:
        self.store = store
        self.domain = domain
        self.before_s = before_s
        self.refreshes = 0

    async def token(
        self, client: UspacyClient, *, renew: bool = False, refused: str | None = None
    ) -> tuple[str, float]:
        """(token, seconds it stays usable); refreshed first when due, or when `renew` and
        the stored token is still the `refused` one (another process may have renewed it)."""
        record = await self.store.records.get(INSTALLS, self.domain)
        if record is None:
            raise UspacyApiError("GET", "install", 401, f"portal {self.domain} is not installed")
        row = record.value
        left_s = (int(row["expires_ms"]) - _now_ms()) / 1000
        if (renew and row["token"] == refused) or left_s <= self.before_s:
            row = await self._refresh(client, record.value, record.version)
            left_s = (int(row["expires_ms"]) - _now_ms()) / 1000
        return str(row["token"]), max(left_s - self.before_s, 1.0)

    async def _refresh(
        self, client: UspacyClient, row: dict[str, Any], version: int
    ) -> dict[str, Any]:
        answer = await client.raw_call("POST", REFRESH, bearer=str(row["refresh_token"]))
        data = answer.get("data", answer) if isinstance(answer, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("jwt"), str):
            raise UspacyApiError("POST", REFRESH, 200, "the answer carries no jwt")
        life = data.get("expireInSeconds")
        fresh = {
            **row,
            "token": data["jwt"],
            "refresh_token": str(data.get("refreshToken") or row["refresh_token"]),
            "expires_ms": _now_ms()
            + int((life if isinstance(life, int | float) else TOKEN_LIFE_S) * 1000),
        }
        if await self.store.records.put(INSTALLS, self.domain, fresh, expect=version):
            self.refreshes += 1
            _LOGGER.info("Uspacy %s: install token refreshed", self.domain)
            return fresh
        # Another process refreshed first (our refresh token was spent or rotated): its
        # tokens stand.
        record = await self.store.records.get(INSTALLS, self.domain)
        if record is None:
            raise UspacyApiError("POST", REFRESH, 401, f"portal {self.domain} was uninstalled")
        return record.value


class InstallCallback:
    """`POST|DELETE /uspacy/app/{secret}/portals/install|uninstall` on the hub's API."""

    def __init__(self, store: Store, app: MarketplaceApp) -> None:
        self.store = store
        self.app = app

    def add_routes(self, web_app: web.Application) -> None:
        web_app.router.add_post("/uspacy/app/{secret}/portals/install", self.install)
        web_app.router.add_delete("/uspacy/app/{secret}/portals/uninstall", self.uninstall)

    def _domain(self, request: web.Request) -> str | None:
        given = request.match_info["secret"].encode()
        if not hmac.compare_digest(given, self.app.install_secret.encode()):
            return None
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return verified_domain(bearer, self.app.client_secret)

    async def install(self, request: web.Request) -> web.Response:
        domain = self._domain(request)
        if domain is None:
            return web.Response(status=404)
        try:
            async with asyncio.timeout(10):
                raw = await request.content.read(MAX_BODY + 1)
            doc = json.loads(raw) if len(raw) <= MAX_BODY else None
        except (ValueError, TimeoutError):
            doc = None
        if not isinstance(doc, dict):
            return web.json_response({"error": "a JSON object is expected"}, status=400)
        token, refresh = doc.get("token"), doc.get("refresh_token")
        if not isinstance(token, str) or not token or not isinstance(refresh, str) or not refresh:
            return web.json_response({"error": "token and refresh_token required"}, status=400)
        expires = expiry_ms(doc.get("expiry_date"))
        row = {"domain": domain, "token": token, "refresh_token": refresh, "expires_ms": expires}
        try:
            await self.store.records.put(INSTALLS, domain, row)
        except (StoreError, TimeoutError) as err:
            _LOGGER.warning("Uspacy %s: install not stored: %s", domain, err)
            return web.Response(status=503)  # nothing kept: Uspacy may call again
        _LOGGER.info("Uspacy %s: installed from the marketplace", domain)
        return web.json_response({"ok": True})

    async def uninstall(self, request: web.Request) -> web.Response:
        domain = self._domain(request)
        if domain is None:
            return web.Response(status=404)
        try:
            await self.store.records.delete(INSTALLS, domain)
        except (StoreError, TimeoutError) as err:
            _LOGGER.warning("Uspacy %s: uninstall not stored: %s", domain, err)
            return web.Response(status=503)
        _LOGGER.info("Uspacy %s: uninstalled", domain)
        return web.json_response({"ok": True})


def verified_domain(jwt: str, secret: str) -> str | None:
    """The portal's domain from an HS256 JWT signed with `secret` (header, else claim)."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return None
    signed = f"{parts[0]}.{parts[1]}".encode()
    want = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    try:
        head, claims, sig = (base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts)
        header, payload = json.loads(head), json.loads(claims)
    except (ValueError, binascii.Error):
        return None
    if not hmac.compare_digest(want, sig) or not isinstance(header, dict):
        return None
    if header.get("alg") != "HS256" or not isinstance(payload, dict):
        return None
    exp = payload.get("exp")
    if isinstance(exp, int | float) and exp < time.time():
        return None
    domain = header.get("domain") or payload.get("domain")
    return domain if isinstance(domain, str) and domain else None


def expiry_ms(value: object) -> int:
    """`expiry_date` as epoch ms: seconds or ms since the epoch, or an ISO 8601 time."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value) if value > 1e11 else int(value * 1000)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.strip()).timestamp() * 1000)
        except ValueError:
            pass
    return _now_ms() + int(TOKEN_LIFE_S * 1000)
