"""The store: one database, four groups of operations."""

from __future__ import annotations

import logging

from gateway.hub.store.access import AccessStore
from gateway.hub.store.database import Database, describe
from gateway.hub.store.fleet import FleetStore
from gateway.hub.store.orders import OrderStore
from gateway.hub.store.outbox import OutboxStore
from gateway.hub.store.records import RecordStore

_LOGGER = logging.getLogger(__name__)


class Store:
    """Open with `await Store.open(url)`; close with `await store.close()`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.orders = OrderStore(db)
        self.fleet = FleetStore(db)
        self.outbox = OutboxStore(db)
        self.access = AccessStore(db)
        self.records = RecordStore(db)  # connectors' own records (Bitrix24 installs)

    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect and create missing tables (safe from several processes at once)."""
        db = Database(url)
        try:
            await db.create()
        except BaseException:
            await db.close()
            raise
        _LOGGER.info("Hub store at %s", describe(url))
        return cls(db)

    async def close(self) -> None:
        await self.db.close()
