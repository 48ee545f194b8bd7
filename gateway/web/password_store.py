"""Where the page password lives: `web.password_hash` in the config, else the one set at
first run (kept in the journal's key-value table, so it survives restarts and power cuts)."""

from __future__ import annotations

import asyncio
import logging
from typing import Final, Protocol

from gateway.web.errors import PasswordHashInvalid
from gateway.web.passwords import ScryptHash, check_new_password, hash_password, verify_password

_LOGGER = logging.getLogger(__name__)

META_KEY: Final = "web.password_hash"
HASH_TIMEOUT_S: Final = 30.0  # scrypt on a slow Pi under load
META_TIMEOUT_S: Final = 15.0


class MetaStore(Protocol):
    """The journal's key-value methods the store needs."""

    async def meta_get(self, key: str) -> str | None: ...

    async def meta_set(self, key: str, value: str) -> None: ...


class PasswordStore:
    """The page password: configured, set at first run, or not yet set."""

    def __init__(self, meta: MetaStore, configured: str | None) -> None:
        self._meta = meta
        self._configured = ScryptHash.parse(configured) if configured else None
        self._stored: ScryptHash | None = None
        self._setting = asyncio.Lock()  # two first-run forms at once: the first one wins
        # One scrypt at a time: each needs 32 MiB, and a burst of logins must not exhaust a Pi.
        self._hashing = asyncio.Semaphore(1)

    @property
    def from_config(self) -> bool:
        """True when the config sets the password (first-run setup is then off)."""
        return self._configured is not None

    async def current(self) -> ScryptHash | None:
        """The hash in force, or None before the first password is set."""
        if self._configured is not None:
            return self._configured
        if self._stored is None:
            async with asyncio.timeout(META_TIMEOUT_S):
                text = await self._meta.meta_get(META_KEY)
            if text:
                try:
                    self._stored = ScryptHash.parse(text)
                except PasswordHashInvalid as err:
                    # A damaged stored hash must not lock the box: first run is offered again.
                    _LOGGER.error(
                        "The stored page password hash is unusable (%s); set it again", err
                    )
                    return None
        return self._stored

    async def is_set(self) -> bool:
        """True once there is a password."""
        return await self.current() is not None

    async def verify(self, password: str) -> bool:
        """True when `password` is the page password (False when none is set)."""
        stored = await self.current()
        if stored is None:
            return False
        async with asyncio.timeout(HASH_TIMEOUT_S), self._hashing:
            return await asyncio.to_thread(verify_password, password, stored)

    async def set_first(self, password: str) -> bool:
        """Store the first password; False when one is set already (nothing changed).

        PasswordTooWeak when the password is not acceptable.
        """
        check_new_password(password)
        async with self._setting:
            if await self.is_set():
                return False
            async with asyncio.timeout(HASH_TIMEOUT_S), self._hashing:
                text = await asyncio.to_thread(hash_password, password)
            async with asyncio.timeout(META_TIMEOUT_S):
                await self._meta.meta_set(META_KEY, text)
            self._stored = ScryptHash.parse(text)
        _LOGGER.info("The status page password was set")
        return True
