"""One database layer for SQLite (one machine) and PostgreSQL (several hub processes).

SQLAlchemy Core's async engine runs the same statements on aiosqlite and asyncpg, so there is
one set of queries, one schema definition and one transaction discipline; the dialect shows
only where it must (`FOR UPDATE SKIP LOCKED` is PostgreSQL's and SQLite needs none, as it has
a single writer). SQLite write transactions start with BEGIN IMMEDIATE, so two writers wait
for each other instead of failing on a lock upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.hub.errors import StoreError
from gateway.hub.store import schema

_LOGGER = logging.getLogger(__name__)

TX_TIMEOUT_S = 30.0  # a transaction that takes longer is abandoned (rolled back)
SQLITE_BUSY_MS = 20_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def engine_url(url: str) -> str:
    """`sqlite:///path` / `postgresql://…` -> the async driver's URL."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+aiosqlite"):
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if parsed.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise StoreError(f"database: {parsed.drivername!r} is not sqlite:// or postgresql://")


def describe(url: str) -> str:
    """The URL without its password, for logs."""
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """The engine and its transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        target = engine_url(url)
        self.sqlite = target.startswith("sqlite")
        self._serial: asyncio.Lock | contextlib.nullcontext[None] = (
            asyncio.Lock() if self.sqlite else contextlib.nullcontext()
        )
        if self.sqlite:
            database = make_url(target).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            # One kept connection, its transactions queued here: SQLite has one writer, and
            # waiting in its busy handler (which sleeps in steps) would be far slower.
            self.engine: AsyncEngine = create_async_engine(target, pool_size=1, max_overflow=0)
            _sqlite_hooks(self.engine)
        else:
            self.engine = create_async_engine(
                target, pool_size=5, max_overflow=5, pool_pre_ping=True
            )

    @contextlib.asynccontextmanager
    async def tx(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block ends, rolled back on any error."""
        try:
            async with asyncio.timeout(TX_TIMEOUT_S), self._serial, self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as err:
            raise StoreError(f"database: {type(err).__name__}: {err}") from err
        except OSError as err:
            raise StoreError(f"database unreachable: {err}") from err

    async def create(self) -> None:
        """Create missing tables and record the schema version; refuse a newer schema."""
        async with self.tx() as conn:
            if not self.sqlite:  # several processes may start at once: one creates, others wait
                await conn.execute(text("SELECT pg_advisory_xact_lock(7150021)"))
            await conn.run_sync(schema.metadata.create_all)
            found = (
                await conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema"))
            ).scalar_one_or_none()
            if found is None:
                await conn.execute(
                    schema.meta.insert().values(key="schema", value=str(schema.SCHEMA_VERSION))
                )
            elif int(found) > schema.SCHEMA_VERSION:
                raise StoreError(
                    f"the database has schema {found}; this hub knows up to "
                    f"{schema.SCHEMA_VERSION}: upgrade the hub"
                )

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun below, not by the driver
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # a committed order survives a power cut
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
