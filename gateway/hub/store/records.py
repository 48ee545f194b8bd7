"""Connectors' own durable records (a Bitrix24 install: its portal, secret and tokens).

Each record is a JSON object under (connector, key) with a version, so two processes that
both refresh the same OAuth token cannot overwrite each other unseen (`put(expect=…)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update

from gateway.hub.store import rows
from gateway.hub.store.database import Database, now_ms
from gateway.hub.store.schema import connector_records


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    value: dict[str, Any]
    version: int


class RecordStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, connector: str, key: str) -> Record | None:
        async with self.db.tx() as conn:
            row = (
                await conn.execute(
                    select(connector_records).where(
                        connector_records.c.connector == connector,
                        connector_records.c.key == key,
                    )
                )
            ).one_or_none()
        return None if row is None else Record(row.key, rows.loads_obj(row.value_json), row.version)

    async def all(self, connector: str) -> list[Record]:
        async with self.db.tx() as conn:
            result = await conn.execute(
                select(connector_records)
                .where(connector_records.c.connector == connector)
                .order_by(connector_records.c.key)
            )
            return [Record(r.key, rows.loads_obj(r.value_json), r.version) for r in result.all()]

    async def put(
        self, connector: str, key: str, value: dict[str, Any], *, expect: int | None = None
    ) -> bool:
        """Insert or replace; with `expect`, only if the stored version is still that one."""
        now = now_ms()
        async with self.db.tx() as conn:
            where = (connector_records.c.connector == connector) & (connector_records.c.key == key)
            if expect is not None:
                where = where & (connector_records.c.version == expect)
            result = await conn.execute(
                update(connector_records)
                .where(where)
                .values(
                    value_json=rows.dumps(value),
                    version=connector_records.c.version + 1,
                    updated_ms=now,
                )
            )
            if result.rowcount:
                return True
            if expect is not None:
                return False
            await conn.execute(
                connector_records.insert().values(
                    connector=connector,
                    key=key,
                    value_json=rows.dumps(value),
                    version=1,
                    updated_ms=now,
                )
            )
            return True

    async def delete(self, connector: str, key: str) -> bool:
        async with self.db.tx() as conn:
            result = await conn.execute(
                delete(connector_records).where(
                    connector_records.c.connector == connector, connector_records.c.key == key
                )
            )
            return bool(result.rowcount)
