"""One SQLite connection: all use serialised, under a time limit; every write commits."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from gateway.domain.errors import CorruptJournal, JournalError
from gateway.journal.opening import (
    check_file,
    close_quietly,
    configure,
    damaged_message,
    is_damage,
    migrate,
    set_aside_damaged,
)

_LOGGER = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 120.0  # integrity check and migration on a slow SD card
OP_TIMEOUT_S = 30.0  # waiting for the connection plus one read or one write transaction


class Database:
    """The journal's connection.

    Reads take the same lock as write transactions: with one connection, a read issued while
    another coroutine is inside a transaction would see rows that are not committed yet.
    """

    def __init__(
        self, path: Path, conn: aiosqlite.Connection, integrity: str, kept: Path | None
    ) -> None:
        self.path = path
        self.integrity_result = integrity
        self.kept_corrupt = kept
        self._conn = conn
        self._lock = asyncio.Lock()
        self._closed = False
        self.commits = 0  # write transactions committed since open (each one fsync)

    @classmethod
    async def open(cls, path: Path, *, recreate_if_corrupt: bool) -> Database:
        """Check, set aside if damaged and allowed, configure, migrate."""
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        kept: Path | None = None
        try:
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                damage = await check_file(path)
                if damage is not None:
                    if not recreate_if_corrupt:
                        raise CorruptJournal(damaged_message(path, damage))
                    kept = await set_aside_damaged(path, damage)
                conn = await cls._connect(path)
        except TimeoutError as err:
            raise JournalError(
                f"opening journal file {path} took longer than {OPEN_TIMEOUT_S:g} s"
            ) from err
        return cls(path, conn, "ok", kept)

    @staticmethod
    async def _connect(path: Path) -> aiosqlite.Connection:
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as err:
            raise JournalError(f"cannot open journal file {path}: {err}") from err
        try:
            conn.row_factory = sqlite3.Row
            await configure(conn, path)
            await migrate(conn, path)
        except sqlite3.Error as err:
            await close_quietly(conn)
            if is_damage(err):
                raise CorruptJournal(f"journal file {path} is damaged: {err}") from err
            raise JournalError(f"cannot open journal file {path}: {err}") from err
        except BaseException:
            await close_quietly(conn)
            raise
        return conn

    async def close(self) -> None:
        """Wait for the operation in flight, then close (SQLite checkpoints the WAL)."""
        if self._closed:
            return
        async with self.use():
            self._closed = True
            await self._conn.close()

    @asynccontextmanager
    async def use(self) -> AsyncIterator[aiosqlite.Connection]:
        """Exclusive use of the connection, outside a transaction (reads, maintenance)."""
        try:
            async with asyncio.timeout(OP_TIMEOUT_S), self._lock:
                if self._closed:
                    raise JournalError(f"journal {self.path} is closed")
                yield self._conn
        except TimeoutError as err:
            raise JournalError(
                f"journal {self.path} did not answer within {OP_TIMEOUT_S:g} s; "
                "a write in flight may still complete"
            ) from err
        except sqlite3.Error as err:
            if is_damage(err):
                raise CorruptJournal(
                    f"journal file {self.path} turned out damaged while in use ({err}); "
                    "restart the gateway to check it"
                ) from err
            raise JournalError(f"journal {self.path}: {err}") from err

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; committed, and so durable, when the block exits."""
        async with self.use() as conn:
            try:
                # Inside the try: a caller cancelled while BEGIN is queued still gets a
                # ROLLBACK queued behind it, so the connection never stays in a transaction.
                await conn.execute("BEGIN IMMEDIATE")
                yield conn
            except BaseException:
                await self._rollback(conn)
                raise
            try:
                # A COMMIT on the wire finishes even if our caller stops waiting.
                await asyncio.shield(conn.execute("COMMIT"))
            except sqlite3.Error:
                await self._rollback(conn)
                raise
            self.commits += 1

    @staticmethod
    async def _rollback(conn: aiosqlite.Connection) -> None:
        try:
            await asyncio.shield(conn.execute("ROLLBACK"))
        except sqlite3.Error as err:  # SQLite may have rolled back by itself (I/O error)
            _LOGGER.debug("Journal rollback: %s", err)
