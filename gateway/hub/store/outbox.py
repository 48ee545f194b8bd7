"""The write-back outbox: calls back to CRMs, leased to one process, retried until delivered."""

from __future__ import annotations

from sqlalchemy import select, update

from gateway.hub.model import Writeback, WritebackState
from gateway.hub.store import rows
from gateway.hub.store.database import Database, now_ms
from gateway.hub.store.schema import orders, writebacks


class OutboxStore:
    """Rows are claimed with a lease; only the lease holder may mark them delivered."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(self, owner: str, *, lease_ms: int, limit: int) -> list[Writeback]:
        """Due rows nobody holds, leased to `owner` (SKIP LOCKED on PostgreSQL)."""
        now = now_ms()
        async with self.db.tx() as conn:
            query = (
                select(writebacks.c.id)
                .where(
                    writebacks.c.state == WritebackState.PENDING.value,
                    writebacks.c.next_ms <= now,
                    (writebacks.c.lease_until_ms.is_(None)) | (writebacks.c.lease_until_ms <= now),
                )
                .order_by(writebacks.c.id)
                .limit(limit)
            )
            if not self.db.sqlite:
                query = query.with_for_update(skip_locked=True)
            ids = [r[0] for r in (await conn.execute(query)).all()]
            if not ids:
                return []
            await conn.execute(
                update(writebacks)
                .where(writebacks.c.id.in_(ids))
                .values(lease_owner=owner, lease_until_ms=now + lease_ms)
            )
            result = await conn.execute(
                select(writebacks).where(writebacks.c.id.in_(ids)).order_by(writebacks.c.id)
            )
            return [rows.writeback(r) for r in result.all()]

    async def delivered(self, row: Writeback, owner: str) -> bool:
        """Mark a row delivered; False if the lease was lost meanwhile (another may resend)."""
        now = now_ms()
        async with self.db.tx() as conn:
            result = await conn.execute(
                update(writebacks)
                .where(writebacks.c.id == row.id, writebacks.c.lease_owner == owner)
                .values(
                    state=WritebackState.DELIVERED.value,
                    delivered_ms=now,
                    attempts=writebacks.c.attempts + 1,
                    lease_owner=None,
                    lease_until_ms=None,
                    last_error=None,
                )
            )
            if not result.rowcount:
                return False
            await conn.execute(
                update(orders)
                .where(orders.c.id == row.order_id)
                .values(writeback=WritebackState.DELIVERED.value, updated_ms=now)
            )
            return True

    async def failed(
        self, row: Writeback, owner: str, *, error: str, retry_in_ms: int, alert_after_ms: int
    ) -> bool:
        """Record a failed attempt and when to try again; True when it has just become overdue."""
        now = now_ms()
        overdue = row.alerted_ms is None and now - row.created_ms >= alert_after_ms
        async with self.db.tx() as conn:
            values: dict[str, object] = {
                "attempts": writebacks.c.attempts + 1,
                "next_ms": now + retry_in_ms,
                "lease_owner": None,
                "lease_until_ms": None,
                "last_error": error[:1000],
            }
            if overdue:
                values["alerted_ms"] = now
            await conn.execute(
                update(writebacks)
                .where(writebacks.c.id == row.id, writebacks.c.lease_owner == owner)
                .values(**values)
            )
        return overdue

    async def overdue(self) -> list[Writeback]:
        """Rows still pending after the alert limit: a person must look (the alert rules)."""
        async with self.db.tx() as conn:
            result = await conn.execute(
                select(writebacks)
                .where(
                    writebacks.c.state == WritebackState.PENDING.value,
                    writebacks.c.alerted_ms.is_not(None),
                )
                .order_by(writebacks.c.id)
            )
            return [rows.writeback(r) for r in result.all()]

    async def pending_count(self) -> int:
        async with self.db.tx() as conn:
            result = await conn.execute(
                select(writebacks.c.id).where(writebacks.c.state == WritebackState.PENDING.value)
            )
            return len(result.all())

    async def for_order(self, order_id: int) -> list[Writeback]:
        async with self.db.tx() as conn:
            result = await conn.execute(
                select(writebacks)
                .where(writebacks.c.order_id == order_id)
                .order_by(writebacks.c.id)
            )
            return [rows.writeback(r) for r in result.all()]
