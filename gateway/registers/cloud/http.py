"""The one aiohttp client adapter for cloud РРО backends (Checkbox, Вчасно.Каса).

It turns HTTP into the register layer's errors so the worker treats a cloud backend like a
cable: no answer or a 5xx after a request went out is `NoAnswer(command_sent=True)` (the
outcome is unknown, reconcile), a refused connection is `NoAnswer(command_sent=False)`,
a 401/403 is `CredentialsRejected`, a 429 (rate limited: the request was not acted on) a
transient `CloudApiError` to retry later, any other 4xx is `CloudApiError` (a clean refusal)
whose neutral reason the driver's `reason_of` gives from the backend's own code.
Headers and bodies are never logged: they carry the license key, tokens and PINs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.domain.errors import NoAnswer, Refusal
from gateway.registers.cloud.errors import CloudApiError, CredentialsRejected

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0

# What a backend's own error code means, where the driver knows (None: by the HTTP status).
ReasonOf = Callable[[int, str], Refusal | None]


@dataclass(frozen=True, slots=True)
class Reply:
    """A JSON answer with a 2xx status."""

    status: int
    body: Any


class CloudHttp:
    """A keep-alive session to one API root; every call has a timeout."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        name: str = "cloud",
        reason_of: ReasonOf = lambda _status, _code: None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._reason_of = reason_of
        self._headers = dict(headers or {})
        self._timeout_s = timeout_s
        self._name = name
        self._session: aiohttp.ClientSession | None = None

    def refused(
        self,
        status: int,
        api_code: str,
        text: str,
        *,
        path: str,
        hint: str | None = None,
        transient: bool | None = None,
    ) -> CloudApiError:
        """A refusal from this backend, its code mapped to a neutral reason by the driver."""
        return CloudApiError(
            status,
            api_code,
            text,
            path=path,
            source=self._name,
            reason=self._reason_of(status, api_code),
            hint=hint,
            transient=transient,
        )

    @property
    def base_url(self) -> str:
        """The API root, version included."""
        return self._base

    def url(self, path: str) -> str:
        """Absolute URL of `path` under the API root."""
        return f"{self._base}/{path.lstrip('/')}"

    async def open(self) -> None:
        """Create the session (idempotent)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers)

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Reply:
        """One call; raises the register layer's errors (module docstring)."""
        await self.open()
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(
            total=timeout_s or self._timeout_s, connect=CONNECT_TIMEOUT_S
        )
        sent = False
        try:
            async with self._session.request(
                method,
                self.url(path),
                json=body,
                params=params,
                headers=headers,
                timeout=timeout,
            ) as resp:
                sent = True
                text = await resp.text()
                status = resp.status
        except aiohttp.ClientConnectorError as err:
            raise NoAnswer(f"{self._name}: cannot reach {path}: {err}", command_sent=False) from err
        except (TimeoutError, aiohttp.ClientError) as err:
            # The request may have reached the backend: whether it acted is unknown.
            raise NoAnswer(
                f"{self._name}: no answer to {method} {path} ({type(err).__name__})",
                command_sent=True,
            ) from err
        _LOGGER.debug("%s %s %s -> %d (sent=%s)", self._name, method, path, status, sent)
        if 200 <= status < 300:
            try:
                return Reply(status, json.loads(text) if text.strip() else None)
            except ValueError as err:
                # Went out, and the answer is unreadable: as good as no answer.
                raise NoAnswer(
                    f"{self._name}: {method} {path} answered something that is not JSON: "
                    f"{text[:80]!r}",
                    command_sent=True,
                ) from err
        try:
            parsed = json.loads(text) if text.strip() else None
        except ValueError:
            parsed = None  # an HTML error page from a proxy
        api_code, message = _error_fields(parsed, text)
        if status >= 500:
            raise NoAnswer(
                f"{self._name}: {method} {path} failed with HTTP {status} ({message})",
                command_sent=True,
            )
        if status in (401, 403):
            rejected = CredentialsRejected(
                f"{self._name}: {path} refused the credentials (HTTP {status}, "
                f"{api_code or 'no code'}): {message}",
                which="unknown",
                api_code=api_code,
            )
            rejected.status = status
            raise rejected
        if status == 429:
            raise self.refused(
                status,
                api_code or "rate_limited",
                message,
                path=path,
                hint="the backend limits the request rate; retried later",
                transient=True,
            )
        raise self.refused(status, api_code, message, path=path)


def _error_fields(parsed: Any, text: str) -> tuple[str, str]:
    """(code, message) of an error body: Checkbox `{code, message[, detail]}`, others loosely."""
    if isinstance(parsed, dict):
        code = parsed.get("code") or parsed.get("res") or ""
        message = parsed.get("message") or parsed.get("errortxt") or parsed.get("detail") or ""
        if not isinstance(message, str):
            message = json.dumps(message, ensure_ascii=False)[:200]
        return str(code), message or text[:200]
    return "", text[:200]
