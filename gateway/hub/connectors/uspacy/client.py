"""Uspacy's REST API as an External connector: `app_sign_in` with the client id and secret.

The JWT is refreshed before it expires; a 401 anyway (revoked, clock skew) signs in again
once; a 429 waits for `Retry-After` (capped) and tries again. Other errors go to the caller,
which retries later (the outbox, the webhook worker) [USPACY].
"""

from __future__ import annotations

import asyncio
import email.utils
import json as json_mod
import logging
import time
from typing import TYPE_CHECKING, Any, Final, cast

import aiohttp

from gateway.hub.connectors.uspacy.errors import UspacyApiError
from gateway.hub.connectors.uspacy.wire import Comment, Deal, Funnel, ProductLine

if TYPE_CHECKING:
    from gateway.hub.connectors.uspacy.marketplace import PortalTokens

_LOGGER = logging.getLogger(__name__)

SIGN_IN: Final = "/auth/v1/auth/app_sign_in"
REFRESH: Final = "/auth/v1/auth/refresh_token"
REFRESH_MARGIN_S: Final = 60.0  # refresh this long before the JWT expires
MAX_THROTTLED: Final = 3  # 429 answers waited out per call
MAX_WAIT_S: Final = 30.0  # a longer Retry-After is left to the caller's own retry


class UspacyClient:
    """One portal's API; safe to share between tasks."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout_s: float = 10.0,
        max_wait_s: float = MAX_WAIT_S,
        tokens: PortalTokens | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._secret = client_secret
        self.timeout_s = timeout_s
        self.max_wait_s = max_wait_s
        self.tokens = tokens  # set: a marketplace install's stored tokens, not app_sign_in
        self._jwt: str | None = None
        self._refresh: str | None = None
        self._renew_at = 0.0  # monotonic
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.sign_ins = 0
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"UspacyClient({self.base_url!r})"  # never the secret or tokens

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self._session

    # --- tokens -----------------------------------------------------------------------------

    async def _token(self, *, renew: bool = False) -> str:
        async with self._lock:
            stale = self._jwt is None or time.monotonic() >= self._renew_at
            if self.tokens is not None and (renew or stale):
                self._jwt, usable_s = await self.tokens.token(self, renew=renew, refused=self._jwt)
                self._renew_at = time.monotonic() + usable_s
            elif renew or stale:
                await self._renew()
            assert self._jwt is not None
            return self._jwt

    async def _renew(self) -> None:
        if self._refresh is not None:
            try:
                self._take(await self._raw("POST", REFRESH, bearer=self._refresh))
                self.refreshes += 1
                return
            except UspacyApiError as err:
                if err.transient:
                    raise
                _LOGGER.info("Uspacy %s: refresh refused, signing in again", self.base_url)
        body = {"client_id": self._client_id, "client_secret": self._secret}
        self._take(await self._raw("POST", SIGN_IN, json=body))
        self.sign_ins += 1

    def _take(self, answer: object) -> None:
        data = answer.get("data", answer) if isinstance(answer, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("jwt"), str):
            raise UspacyApiError("POST", SIGN_IN, 200, "the answer carries no jwt")
        ttl = data.get("expireInSeconds")
        self._jwt = data["jwt"]
        self._refresh = (
            data.get("refreshToken") if isinstance(data.get("refreshToken"), str) else None
        )
        life = float(ttl) if isinstance(ttl, int | float) else 300.0
        # Well before expiry: the margin, or half the life of a short-lived token.
        self._renew_at = time.monotonic() + life - min(REFRESH_MARGIN_S, life / 2)

    # --- calls ------------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """One API call with the current JWT; the parsed JSON answer (None when empty)."""
        renewed = False
        throttled = 0
        while True:
            token = await self._token()
            try:
                return await self._raw(method, path, bearer=token, json=json, params=params)
            except _Throttled as err:
                throttled += 1
                if throttled > MAX_THROTTLED or err.wait_s > self.max_wait_s:
                    raise err.error from None
                _LOGGER.info("Uspacy %s %s: 429, waiting %.1f s", method, path, err.wait_s)
                await asyncio.sleep(err.wait_s)
            except UspacyApiError as err:
                if err.status != 401 or renewed:
                    raise
                renewed = True  # expired or revoked: sign in afresh, once
                await self._token(renew=True)

    async def check_token(self) -> None:
        """Renew the token now if it is due (installed portals: read or refresh the store's)."""
        await self._token()

    async def raw_call(self, method: str, path: str, *, bearer: str | None = None) -> Any:
        """One call with the given bearer, no renewal (a token refresh)."""
        return await self._raw(method, path, bearer=bearer)

    async def _raw(
        self,
        method: str,
        path: str,
        *,
        bearer: str | None = None,
        json: object = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            async with (
                asyncio.timeout(self.timeout_s + 1),
                self._http().request(
                    method, self.base_url + path, json=json, params=params, headers=headers
                ) as resp,
            ):
                text = await resp.text()
                if resp.status == 429:
                    error = UspacyApiError(method, path, 429, "too many requests")
                    raise _Throttled(error, retry_after(resp.headers.get("Retry-After")))
                if resp.status >= 300:
                    raise UspacyApiError(method, path, resp.status, text[:200])
                return json_mod.loads(text) if text.strip() else None
        except ValueError:  # a 2xx whose body is not JSON
            raise UspacyApiError(method, path, 200, "the answer is not JSON") from None
        except (aiohttp.ClientError, TimeoutError) as err:
            raise UspacyApiError(method, path, None, type(err).__name__) from None

    # --- the calls the connector makes ------------------------------------------------------

    async def deal(self, deal_id: int) -> Deal:
        answer = await self.call("GET", f"/crm/v1/entities/deals/{deal_id}")
        return _unwrap(answer, f"deal {deal_id}")

    async def products(self, deal_id: int) -> list[ProductLine]:
        params = {"entity_type": "deals", "entity_id": str(deal_id)}
        answer = await self.call("GET", "/crm/v1/static/entity-product-lists", params=params)
        lists = answer.get("data", answer) if isinstance(answer, dict) else answer
        if isinstance(lists, dict):
            lists = [lists]
        lines: list[ProductLine] = []
        for one in lists if isinstance(lists, list) else []:
            if isinstance(one, dict) and isinstance(one.get("list_products"), list):
                lines.extend(one["list_products"])
        return lines

    async def set_fields(self, deal_id: int, values: dict[str, object]) -> None:
        await self.call("PATCH", f"/crm/v1/entities/deals/{deal_id}", json=values)

    async def comment(self, deal_id: int, message: str) -> None:
        body = Comment(entityType="deal", entityId=deal_id, message=message)
        await self.call("POST", "/comments/v1/comments", json=body)

    async def move(self, deal_id: int, stage_id: int) -> None:
        path = f"/crm/v1/entities/deals/{deal_id}/move/stage/{stage_id}"
        await self.call("POST", path, json={"reason_id": None})

    async def confirm(self, url: str) -> None:
        """GET the webhook's confirmation link (no JWT: the link is the proof)."""
        try:
            async with (
                asyncio.timeout(self.timeout_s + 1),
                self._http().get(url) as resp,
            ):
                await resp.read()
                if resp.status >= 300:
                    raise UspacyApiError("GET", "confirmation link", resp.status, "")
        except (aiohttp.ClientError, TimeoutError) as err:
            raise UspacyApiError("GET", "confirmation link", None, type(err).__name__) from None

    async def funnels(self) -> list[Funnel]:
        answer = await self.call("GET", "/crm/v1/entities/deals/funnel")
        data = answer.get("data", answer) if isinstance(answer, dict) else answer
        items = data if isinstance(data, list) else []
        return [cast(Funnel, f) for f in items if isinstance(f, dict)]


def _unwrap(answer: object, what: str) -> dict[str, Any]:
    data = answer.get("data", answer) if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        raise UspacyApiError("GET", what, 200, "not an object")
    return data


class _Throttled(Exception):
    def __init__(self, error: UspacyApiError, wait_s: float) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait_s = wait_s


def retry_after(value: str | None, *, now: float | None = None) -> float:
    """`Retry-After` in seconds or as an HTTP date -> seconds to wait (1 when absent)."""
    if not value:
        return 1.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return 1.0
    return max(0.0, when - (time.time() if now is None else now))
