"""CRM tokens (stored hashed) and named leases for periodic work."""

from __future__ import annotations

import hashlib

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from gateway.hub.errors import StoreError
from gateway.hub.store.database import Database, now_ms
from gateway.hub.store.schema import leases, tokens


def token_hash(token: str) -> str:
    """Only this is stored: a database leak does not hand out working tokens."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AccessStore:
    """Tokens and leases."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_token(self, token: str, connector: str, account: str, ttl_ms: int) -> int:
        """Store a new token; returns its expiry (ms)."""
        expires = now_ms() + ttl_ms
        async with self.db.tx() as conn:
            await conn.execute(
                tokens.insert().values(
                    token_hash=token_hash(token),
                    connector=connector,
                    account=account,
                    expires_ms=expires,
                )
            )
        return expires

    async def token_account(self, token: str, connector: str) -> tuple[str, bool] | None:
        """(account, still valid) for a token, or None when it is unknown."""
        async with self.db.tx() as conn:
            row = (
                await conn.execute(
                    select(tokens.c.account, tokens.c.expires_ms).where(
                        tokens.c.token_hash == token_hash(token), tokens.c.connector == connector
                    )
                )
            ).one_or_none()
        if row is None:
            return None
        return row.account, row.expires_ms > now_ms()

    async def expire_tokens(self, before_ms: int) -> int:
        async with self.db.tx() as conn:
            result = await conn.execute(delete(tokens).where(tokens.c.expires_ms < before_ms))
            return int(result.rowcount)

    async def take_lease(self, name: str, owner: str, ttl_ms: int) -> bool:
        """Hold the lease `name` for `ttl_ms` unless another process holds it now."""
        try:
            return await self._take_lease(name, owner, ttl_ms)
        except StoreError as err:
            if isinstance(err.__cause__, IntegrityError):
                return False  # another process created it first: it holds it
            raise

    async def _take_lease(self, name: str, owner: str, ttl_ms: int) -> bool:
        now = now_ms()
        async with self.db.tx() as conn:
            result = await conn.execute(
                update(leases)
                .where(
                    leases.c.name == name, (leases.c.owner == owner) | (leases.c.until_ms <= now)
                )
                .values(owner=owner, until_ms=now + ttl_ms)
            )
            if result.rowcount:
                return True
            exists = (
                await conn.execute(select(leases.c.name).where(leases.c.name == name))
            ).one_or_none()
            if exists is not None:
                return False
            await conn.execute(
                leases.insert().values(name=name, owner=owner, until_ms=now + ttl_ms)
            )
            return True
