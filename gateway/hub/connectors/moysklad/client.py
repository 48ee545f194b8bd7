"""МойСклад's JSON API and POS API over HTTP: bearer token, gzip, and a back-off per token.

[MOYSKLAD] limits requests per user or solution and answers 429 with `X-Lognex-Retry-After`
(ms); repeated 429s can switch the account's access off. So after a 429 this token sends
nothing until that time has passed: callers get RateLimited at once and retry later.
At most 5 requests per token are in flight (the documented parallel limit).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from gateway.hub.connectors.moysklad.errors import MoyskladError, RateLimited

_LOGGER = logging.getLogger(__name__)

PARALLEL_PER_TOKEN = 5  # [MOYSKLAD] restrictions: 5 parallel requests per user or solution
DEFAULT_BACKOFF_S = 3.0  # the length of the rate-limit window when no header says otherwise
MAX_BACKOFF_S = 60.0
WEBHOOK_ECHO_HEADER = "X-Lognex-WebHook-DisableByPrefix"


class Backoff:
    """When each token may call again; shared by every client of this process."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}

    def wait_s(self, key: str) -> float:
        return max(0.0, self._until.get(key, 0.0) - time.monotonic())

    def hit(self, key: str, seconds: float) -> None:
        until = time.monotonic() + min(max(seconds, 0.1), MAX_BACKOFF_S)
        self._until[key] = max(self._until.get(key, 0.0), until)

    def slots(self, key: str) -> asyncio.Semaphore:
        return self._slots.setdefault(key, asyncio.Semaphore(PARALLEL_PER_TOKEN))


class Client:
    """One token's calls; `headers` authenticate (Bearer for JSON API, Lognex-Pos-* for POS).

    `session()` gives the process's HTTP session (made on first use, inside the loop)."""

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        base: str,
        headers: dict[str, str],
        *,
        key: str,
        backoff: Backoff,
        timeout_s: float,
    ) -> None:
        self.session = session
        self.base = base.rstrip("/")
        self.headers = {"Accept-Encoding": "gzip", **headers}  # [MOYSKLAD] 415 without gzip
        self.key = key
        self.backoff = backoff
        self.timeout_s = timeout_s

    async def call(
        self,
        method: str,
        path_or_url: str,
        body: object = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, JSON or None) for a 2xx; MoyskladError (RateLimited on 429) otherwise."""
        wait = self.backoff.wait_s(self.key)
        if wait > 0:
            raise RateLimited(f"backing off for {wait:.1f} s after a 429", status=429)
        url = path_or_url if path_or_url.startswith("http") else self.base + path_or_url
        try:
            async with (
                self.backoff.slots(self.key),
                asyncio.timeout(self.timeout_s),
                self.session().request(
                    method, url, json=body, headers={**self.headers, **(headers or {})}
                ) as resp,
            ):
                raw = await resp.read()
                status = resp.status
                retry_ms = resp.headers.get("X-Lognex-Retry-After")
        except (aiohttp.ClientError, TimeoutError) as err:
            raise MoyskladError(f"{method} {url}: {type(err).__name__}: {err}") from None
        if status == 429:
            seconds = _seconds(retry_ms)
            self.backoff.hit(self.key, seconds)
            _LOGGER.warning("МойСклад rate limit: %s backs off %.1f s", method, seconds)
            raise RateLimited(f"{method} {url}: 429", status=429, retry_after_s=seconds)
        doc = _json(raw)
        if status >= 300:
            raise MoyskladError(f"{method} {url}: HTTP {status}: {_errors(doc)}", status=status)
        return status, doc


def _seconds(header: str | None) -> float:
    try:
        return int(header or "") / 1000
    except ValueError:
        return DEFAULT_BACKOFF_S


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _errors(doc: object) -> str:
    """[MOYSKLAD] `{"errors": [{"error", "code", …}]}` -> one line."""
    if isinstance(doc, dict) and isinstance(doc.get("errors"), list):
        parts = [
            f"{e.get('code', '')} {e.get('error', '')}".strip()
            for e in doc["errors"]
            if isinstance(e, dict)
        ]
        return "; ".join(parts) or "no error text"
    return "no error text"
