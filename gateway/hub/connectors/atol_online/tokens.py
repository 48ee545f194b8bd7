"""Per-shop logins and tokens: constant-time password checks, attempts rate limited.

A token is 256 random bits, handed out once and stored only as its SHA-256, valid for
`token_ttl_s` (ATOL's own lifetime is 24 h). Attempts are counted per login and per client
address in a sliding minute; past the limit `getToken` answers 429 without checking.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque

from gateway.hub.config import AtolAccount, AtolOnlineSettings
from gateway.hub.connectors.atol_online.errors import AtolCode, AtolError
from gateway.hub.store import Store

CONNECTOR = "atol_online"
WINDOW_S = 60.0
_MAX_TRACKED = 100_000  # the attempt table is bounded: a flood of addresses cannot grow it


class Tokens:
    """Issues and checks tokens for the configured accounts."""

    def __init__(self, store: Store, settings: AtolOnlineSettings) -> None:
        self.store = store
        self.settings = settings
        self.accounts = {a.login: a for a in settings.accounts}
        self._attempts: dict[str, deque[float]] = {}

    async def issue(self, login: object, password: object, peer: str) -> str:
        if not isinstance(login, str) or not isinstance(password, str):
            raise AtolError(AtolCode.BAD_CREDENTIALS, "login and pass are required strings")
        self._count(f"login:{login}")
        self._count(f"peer:{peer}")
        account = self.accounts.get(login)
        # Compared even for an unknown login, so timing does not tell which logins exist.
        expected = account.password.reveal() if account is not None else secrets.token_hex(16)
        if not hmac.compare_digest(password.encode("utf-8"), expected.encode("utf-8")) or (
            account is None
        ):
            raise AtolError(AtolCode.BAD_CREDENTIALS, "wrong login or password")
        token = secrets.token_urlsafe(32)
        await self.store.access.add_token(token, CONNECTOR, login, self.settings.token_ttl_s * 1000)
        return token

    async def account(self, token: str | None) -> AtolAccount:
        """The account a token was issued to, or the re-authenticate error."""
        if not token:
            raise AtolError(AtolCode.TOKEN_MISSING, "no token: send the Token header")
        found = await self.store.access.token_account(token, CONNECTOR)
        if found is None:
            raise AtolError(AtolCode.TOKEN_UNKNOWN, "unknown token: get a new one")
        login, valid = found
        account = self.accounts.get(login)
        if account is None:
            raise AtolError(AtolCode.TOKEN_UNKNOWN, "the token's login was removed")
        if not valid:
            raise AtolError(AtolCode.TOKEN_EXPIRED, "the token has expired: get a new one")
        return account

    def _count(self, key: str) -> None:
        now = time.monotonic()
        seen = self._attempts.get(key)
        if seen is None:
            if len(self._attempts) >= _MAX_TRACKED:
                self._forget(now)
            seen = self._attempts[key] = deque()
        while seen and seen[0] <= now - WINDOW_S:
            seen.popleft()
        if len(seen) >= self.settings.max_token_attempts:
            raise AtolError(AtolCode.TOO_MANY_ATTEMPTS, "too many token requests: wait a minute")
        seen.append(now)

    def _forget(self, now: float) -> None:
        for key in [k for k, v in self._attempts.items() if not v or v[-1] <= now - WINDOW_S]:
            del self._attempts[key]
        if len(self._attempts) >= _MAX_TRACKED:
            self._attempts.clear()
