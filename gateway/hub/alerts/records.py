"""Reads and writes of the fleet state, incidents and deliveries: each one short transaction."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.hub.alerts.model import (
    SUBJECT_MAX,
    BoxState,
    Channel,
    Condition,
    Delivery,
    Incident,
    Phase,
    Rule,
)
from gateway.hub.alerts.tables import deliveries, fleet_boxes, fleet_events, incidents
from gateway.hub.errors import StoreError
from gateway.hub.model import Order
from gateway.hub.store import rows
from gateway.hub.store.database import Database, now_ms
from gateway.hub.store.schema import orders, writebacks

KEEP_EVENTS = 200  # per box: enough for the page; the box keeps its own journal


class FleetRecords:
    """What the boxes said, as the page and the rules read it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _row(self, box_id: str, **values: Any) -> None:
        """Update the box's row, inserting it first when it is new (racing inserts re-read)."""
        for attempt in range(3):
            try:
                async with self.db.tx() as conn:
                    found = await conn.execute(
                        update(fleet_boxes).where(fleet_boxes.c.box_id == box_id).values(**values)
                    )
                    if not found.rowcount:
                        await conn.execute(fleet_boxes.insert().values(box_id=box_id, **values))
                return
            except StoreError as err:
                if not isinstance(err.__cause__, IntegrityError) or attempt == 2:
                    raise

    async def status(self, box_id: str, body: dict[str, Any]) -> None:
        """A status message; `since` moves only when online/offline changes."""
        online = body.get("state") == "online"
        now = now_ms()
        async with self.db.tx() as conn:
            known = (
                await conn.execute(
                    select(fleet_boxes.c.online).where(fleet_boxes.c.box_id == box_id)
                )
            ).one_or_none()
        values: dict[str, Any] = {"online": online, "status_json": rows.dumps(body)}
        if known is None or known.online is None or bool(known.online) != online:
            values["since_ms"] = now
        await self._row(box_id, **values)

    async def telemetry(self, box_id: str, body: dict[str, Any]) -> None:
        await self._row(box_id, telemetry_json=rows.dumps(body), telemetry_ms=now_ms())

    async def event(self, box_id: str, body: dict[str, Any]) -> None:
        kind = str(body.get("event") or "?")[:64]
        now = now_ms()
        async with self.db.tx() as conn:
            await conn.execute(
                fleet_events.insert().values(
                    box_id=box_id, kind=kind, body_json=rows.dumps(body), received_ms=now
                )
            )
            oldest_kept = (
                select(fleet_events.c.id)
                .where(fleet_events.c.box_id == box_id)
                .order_by(fleet_events.c.id.desc())
                .offset(KEEP_EVENTS)
                .limit(1)
                .scalar_subquery()
            )
            await conn.execute(
                delete(fleet_events).where(
                    fleet_events.c.box_id == box_id, fleet_events.c.id <= oldest_kept
                )
            )
        if kind == "shift_mismatch":
            await self._row(box_id, mismatch_json=rows.dumps(body), mismatch_ms=now)

    async def boxes(self) -> list[BoxState]:
        async with self.db.tx() as conn:
            result = await conn.execute(select(fleet_boxes).order_by(fleet_boxes.c.box_id))
            return [_box(r) for r in result.all()]

    async def events(self, box_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query = select(fleet_events).order_by(fleet_events.c.id.desc()).limit(limit)
        if box_id is not None:
            query = query.where(fleet_events.c.box_id == box_id)
        async with self.db.tx() as conn:
            return [
                {"box_id": r.box_id, "received_ms": r.received_ms, **json.loads(r.body_json)}
                for r in (await conn.execute(query)).all()
            ]

    async def overdue_writebacks(self) -> list[dict[str, Any]]:
        """Write-backs past their alert limit, with their order's box (the store's `overdue`)."""
        query = (
            select(
                writebacks.c.id,
                writebacks.c.connector,
                writebacks.c.attempts,
                writebacks.c.last_error,
                writebacks.c.created_ms,
                orders.c.box_id,
                orders.c.job_uuid,
            )
            .join(orders, orders.c.id == writebacks.c.order_id)
            .where(writebacks.c.state == "pending", writebacks.c.alerted_ms.is_not(None))
            .order_by(writebacks.c.id)
        )
        async with self.db.tx() as conn:
            return [dict(r._mapping) for r in (await conn.execute(query)).all()]

    async def orders(
        self,
        *,
        box_id: str | None = None,
        state: str | None = None,
        connector: str | None = None,
        day_from_ms: int | None = None,
        day_to_ms: int | None = None,
        limit: int = 200,
    ) -> list[Order]:
        """Orders for the page's filters, newest first."""
        query = select(orders).order_by(orders.c.id.desc()).limit(limit)
        if box_id:
            query = query.where(orders.c.box_id == box_id)
        if state:
            query = query.where(orders.c.state == state)
        if connector:
            query = query.where(orders.c.connector == connector)
        if day_from_ms is not None:
            query = query.where(orders.c.created_ms >= day_from_ms)
        if day_to_ms is not None:
            query = query.where(orders.c.created_ms < day_to_ms)
        async with self.db.tx() as conn:
            return [rows.order(r) for r in (await conn.execute(query)).all()]

    async def connectors(self) -> list[str]:
        async with self.db.tx() as conn:
            result = await conn.execute(select(orders.c.connector).distinct())
            return sorted(r[0] for r in result.all())


class IncidentRecords:
    """Incidents and their deliveries."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def open_incidents(self) -> list[Incident]:
        async with self.db.tx() as conn:
            result = await conn.execute(
                select(incidents).where(incidents.c.cleared_ms.is_(None)).order_by(incidents.c.id)
            )
            return [_incident(r) for r in result.all()]

    async def recent(self, limit: int = 200) -> list[Incident]:
        async with self.db.tx() as conn:
            result = await conn.execute(
                select(incidents).order_by(incidents.c.id.desc()).limit(limit)
            )
            return [_incident(r) for r in result.all()]

    async def open(self, cond: Condition, targets: list[tuple[str, str]]) -> bool:
        """Open an incident and queue its messages in one transaction; False if already open."""
        now = now_ms()
        try:
            async with self.db.tx() as conn:
                incident_id = (
                    await conn.execute(
                        incidents.insert()
                        .values(
                            rule=cond.rule.value,
                            box_id=cond.box_id,
                            subject=cond.subject[:SUBJECT_MAX],
                            open_key=cond.key,
                            text=cond.text,
                            details_json=rows.dumps(cond.details),
                            opened_ms=now,
                        )
                        .returning(incidents.c.id)
                    )
                ).scalar_one()
                await _queue(conn, incident_id, Phase.OPENED, targets, now)
        except StoreError as err:
            if isinstance(err.__cause__, IntegrityError):
                return False  # another process opened it first
            raise
        return True

    async def clear(self, incident: Incident, targets: list[tuple[str, str]]) -> bool:
        """Clear an open incident and queue its "cleared" messages; False if it was cleared."""
        now = now_ms()
        async with self.db.tx() as conn:
            done = await conn.execute(
                update(incidents)
                .where(incidents.c.id == incident.id, incidents.c.cleared_ms.is_(None))
                .values(cleared_ms=now, open_key=None)
            )
            if not done.rowcount:
                return False
            await _queue(conn, incident.id, Phase.CLEARED, targets, now)
        return True

    async def expire(self, before_ms: int, limit: int = 1000) -> int:
        """Delete incidents cleared before `before_ms` whose messages all went out."""
        async with self.db.tx() as conn:
            unsent = select(deliveries.c.incident_id).where(deliveries.c.state == "pending")
            ids = [
                r[0]
                for r in (
                    await conn.execute(
                        select(incidents.c.id)
                        .where(incidents.c.cleared_ms < before_ms, incidents.c.id.not_in(unsent))
                        .limit(limit)
                    )
                ).all()
            ]
            if ids:
                await conn.execute(delete(deliveries).where(deliveries.c.incident_id.in_(ids)))
                await conn.execute(delete(incidents).where(incidents.c.id.in_(ids)))
            return len(ids)

    async def claim(self, owner: str, *, lease_ms: int, limit: int = 20) -> list[Delivery]:
        """Due deliveries nobody holds, leased to `owner` (SKIP LOCKED on PostgreSQL)."""
        now = now_ms()
        async with self.db.tx() as conn:
            query = (
                select(deliveries.c.id)
                .where(
                    deliveries.c.state == "pending",
                    deliveries.c.next_ms <= now,
                    or_(deliveries.c.lease_until_ms.is_(None), deliveries.c.lease_until_ms <= now),
                )
                .order_by(deliveries.c.id)
                .limit(limit)
            )
            if not self.db.sqlite:
                query = query.with_for_update(skip_locked=True)
            ids = [r[0] for r in (await conn.execute(query)).all()]
            if not ids:
                return []
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(ids))
                .values(lease_owner=owner, lease_until_ms=now + lease_ms)
            )
            result = await conn.execute(
                select(deliveries, incidents)
                .join(incidents, incidents.c.id == deliveries.c.incident_id)
                .where(deliveries.c.id.in_(ids))
                .order_by(deliveries.c.id)
            )
            return [_delivery(r) for r in result.all()]

    async def sent(self, delivery: Delivery, owner: str) -> bool:
        """Mark sent while still holding the lease; False when the lease was lost."""
        async with self.db.tx() as conn:
            result = await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery.id, deliveries.c.lease_owner == owner)
                .values(
                    state="sent",
                    sent_ms=now_ms(),
                    attempts=deliveries.c.attempts + 1,
                    lease_owner=None,
                    lease_until_ms=None,
                    last_error=None,
                )
            )
            return bool(result.rowcount)

    async def failed(self, delivery: Delivery, owner: str, error: str, retry_in_ms: int) -> None:
        async with self.db.tx() as conn:
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery.id, deliveries.c.lease_owner == owner)
                .values(
                    attempts=deliveries.c.attempts + 1,
                    next_ms=now_ms() + retry_in_ms,
                    lease_owner=None,
                    lease_until_ms=None,
                    last_error=error[:1000],
                )
            )

    async def delivery_counts(self) -> dict[tuple[str, str], int]:
        """(state, channel) -> n, for the page and the tests."""
        async with self.db.tx() as conn:
            result = await conn.execute(
                select(deliveries.c.state, deliveries.c.channel, func.count()).group_by(
                    deliveries.c.state, deliveries.c.channel
                )
            )
            return {(s, c): int(n) for s, c, n in result.all()}

    async def failing_deliveries(self) -> list[dict[str, Any]]:
        async with self.db.tx() as conn:
            result = await conn.execute(
                select(deliveries).where(
                    and_(deliveries.c.state == "pending", deliveries.c.attempts > 0)
                )
            )
            return [dict(r._mapping) for r in result.all()]


async def _queue(
    conn: AsyncConnection, incident_id: int, phase: Phase, targets: list[tuple[str, str]], now: int
) -> None:
    for channel, target in targets:
        await conn.execute(
            deliveries.insert().values(
                incident_id=incident_id,
                phase=phase.value,
                channel=channel,
                target=target,
                state="pending",
                attempts=0,
                next_ms=now,
                created_ms=now,
            )
        )


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _box(row: Row[Any]) -> BoxState:
    m = row._mapping
    return BoxState(
        box_id=m["box_id"],
        online=None if m["online"] is None else bool(m["online"]),
        since_ms=m["since_ms"],
        status=_loads(m["status_json"]),
        telemetry=_loads(m["telemetry_json"]),
        telemetry_ms=m["telemetry_ms"],
        shift_mismatch=_loads(m["mismatch_json"]),
        shift_mismatch_ms=m["mismatch_ms"],
    )


def _incident(row: Row[Any]) -> Incident:
    m = row._mapping
    return Incident(
        id=m["id"],
        rule=Rule(m["rule"]),
        box_id=m["box_id"],
        subject=m["subject"],
        text=m["text"],
        details=json.loads(m["details_json"]),
        opened_ms=m["opened_ms"],
        cleared_ms=m["cleared_ms"],
    )


def _delivery(row: Row[Any]) -> Delivery:
    m = row._mapping
    incident = Incident(
        id=m[incidents.c.id],
        rule=Rule(m[incidents.c.rule]),
        box_id=m[incidents.c.box_id],
        subject=m[incidents.c.subject],
        text=m[incidents.c.text],
        details=json.loads(m[incidents.c.details_json]),
        opened_ms=m[incidents.c.opened_ms],
        cleared_ms=m[incidents.c.cleared_ms],
    )
    return Delivery(
        id=m[deliveries.c.id],
        incident=incident,
        phase=Phase(m[deliveries.c.phase]),
        channel=Channel(m[deliveries.c.channel]),
        target=m[deliveries.c.target],
        attempts=m[deliveries.c.attempts],
    )
