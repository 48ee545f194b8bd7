"""REST calls to a Bitrix24 portal [B24]: an incoming webhook, or an app's OAuth tokens.

A webhook URL holds its own secret (`https://<portal>/rest/<user>/<code>/`). An app calls
`https://<portal>/rest/<method>` with `auth=<access token>`; the token lives an hour and is
renewed with the refresh token at the OAuth server before it expires.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from gateway.hub.connectors.bitrix24.errors import PortalError

_LOGGER = logging.getLogger(__name__)

# Errors worth calling again later [B24]: the portal's rate limit and its own outages.
_RETRY_ERRORS = frozenset({"QUERY_LIMIT_EXCEEDED", "INTERNAL_SERVER_ERROR", "OVERLOAD_LIMIT"})
_TOKEN_ERRORS = frozenset({"expired_token", "invalid_token"})
REFRESH_BEFORE_S = 300.0


def portal_domain(url: str) -> str:
    host = urlsplit(url).hostname
    if not host:
        raise PortalError("install", "bad_url", f"not a portal URL: {url!r}", retry=False)
    return host


class PortalClient:
    """One portal's calls; `auth` is the install's auth record, updated in place on refresh."""

    def __init__(
        self, session: aiohttp.ClientSession, portal: str, auth: dict[str, Any], timeout_s: float
    ) -> None:
        self.session = session
        self.portal = portal.rstrip("/")
        self.auth = auth
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.refreshed = False  # tells the caller to store the new tokens

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """The method's `result`, or PortalError (retry=True for what may pass)."""
        if self.auth.get("kind") == "oauth" and self._expiring():
            await self.refresh()
        try:
            return await self._call(method, params or {})
        except PortalError as err:
            if self.auth.get("kind") != "oauth" or err.error not in _TOKEN_ERRORS:
                raise
        await self.refresh()
        return await self._call(method, params or {})

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        if self.auth.get("kind") == "webhook":
            url = str(self.auth["url"]).rstrip("/") + f"/{method}"
            body = params
        else:
            url = f"{self.portal}/rest/{method}"
            body = {**params, "auth": self.auth.get("access_token", "")}
        try:
            async with self.session.post(url, json=body, timeout=self.timeout) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as err:
            raise PortalError(method, type(err).__name__, str(err), retry=True) from None
        return _result(method, status, text)

    def _expiring(self) -> bool:
        expires_ms = int(self.auth.get("expires_ms") or 0)
        return expires_ms - REFRESH_BEFORE_S * 1000 <= time.time() * 1000

    async def refresh(self) -> None:
        """New tokens from the OAuth server with the refresh token."""
        server = str(self.auth.get("oauth_server") or "https://oauth.bitrix.info").rstrip("/")
        query = {
            "grant_type": "refresh_token",
            "client_id": str(self.auth.get("client_id", "")),
            "client_secret": str(self.auth.get("client_secret", "")),
            "refresh_token": str(self.auth.get("refresh_token", "")),
        }
        try:
            async with self.session.get(
                f"{server}/oauth/token/", params=query, timeout=self.timeout
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as err:
            raise PortalError("oauth/token", type(err).__name__, str(err), retry=True) from None
        doc = _result("oauth/token", status, text, whole=True)
        if not isinstance(doc, dict) or not doc.get("access_token"):
            raise PortalError("oauth/token", "no_token", text[:200], retry=True)
        self.auth.update(
            access_token=doc["access_token"],
            refresh_token=doc.get("refresh_token", self.auth.get("refresh_token")),
            expires_ms=int(time.time() * 1000) + int(doc.get("expires_in", 3600)) * 1000,
        )
        self.refreshed = True
        _LOGGER.info("Bitrix24 %s: OAuth token renewed", self.portal)


def _result(method: str, status: int, text: str, *, whole: bool = False) -> Any:
    try:
        doc = json.loads(text) if text else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("error"):
        error = str(doc["error"])
        retry = status >= 500 or error in _RETRY_ERRORS
        raise PortalError(method, error, str(doc.get("error_description", "")), retry=retry)
    if status >= 300 or not isinstance(doc, dict):
        raise PortalError(
            method, f"HTTP {status}", text[:200], retry=status >= 500 or status == 429
        )
    return doc if whole else doc.get("result")
