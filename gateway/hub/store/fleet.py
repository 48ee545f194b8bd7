"""Routes (connector key -> box) and boxes (status, command sequence, dispatch lease)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.hub.errors import StoreError
from gateway.hub.model import BoxInfo, Route
from gateway.hub.store import rows
from gateway.hub.store.database import Database, now_ms
from gateway.hub.store.schema import boxes, routes


class FleetStore:
    """The route table and what the hub knows of each box."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- routes -----------------------------------------------------------------------------

    async def set_route(self, route: Route) -> None:
        """Add a route or point an existing one at another box."""
        async with self.db.tx() as conn:
            await _upsert_route(conn, route)

    async def sync_routes(self, config_routes: Iterable[Route]) -> None:
        """The config's routes, added or updated (routes added by `hub route add` stay)."""
        wanted = list(config_routes)
        for attempt in range(3):
            try:
                async with self.db.tx() as conn:
                    for route in wanted:
                        await _upsert_route(conn, route)
                return
            except StoreError as err:
                # Several processes starting at once insert the same rows: the loser re-reads.
                if not isinstance(err.__cause__, IntegrityError) or attempt == 2:
                    raise

    async def remove_route(self, connector: str, key: str) -> bool:
        async with self.db.tx() as conn:
            result = await conn.execute(
                routes.delete().where(routes.c.connector == connector, routes.c.key == key)
            )
            return bool(result.rowcount)

    async def routes(self, connector: str | None = None) -> list[Route]:
        query = select(routes).order_by(routes.c.connector, routes.c.key)
        if connector is not None:
            query = query.where(routes.c.connector == connector)
        async with self.db.tx() as conn:
            return [Route(r.connector, r.key, r.box_id) for r in (await conn.execute(query)).all()]

    # --- boxes ------------------------------------------------------------------------------

    async def record_status(self, box_id: str, body: dict[str, Any]) -> bool:
        """Store a box's status message; True when it says the box is online."""
        online = body.get("state") == "online"
        now = now_ms()
        async with self.db.tx() as conn:
            changed = await conn.execute(
                update(boxes)
                .where(boxes.c.box_id == box_id)
                .values(online=online, status_json=rows.dumps(body), seen_ms=now)
            )
            if not changed.rowcount:
                await conn.execute(
                    boxes.insert().values(
                        box_id=box_id,
                        seq=0,
                        online=online,
                        status_json=rows.dumps(body),
                        seen_ms=now,
                    )
                )
        return online

    async def boxes(self) -> list[BoxInfo]:
        async with self.db.tx() as conn:
            result = await conn.execute(select(boxes).order_by(boxes.c.box_id))
            return [rows.box(r) for r in result.all()]

    async def online(self) -> set[str]:
        async with self.db.tx() as conn:
            result = await conn.execute(select(boxes.c.box_id).where(boxes.c.online.is_(True)))
            return {r[0] for r in result.all()}

    async def claim_box(self, box_id: str, owner: str, lease_ms: int) -> bool:
        """Take (or renew) the right to dispatch this box's orders; False if another holds it."""
        now = now_ms()
        async with self.db.tx() as conn:
            result = await conn.execute(
                update(boxes)
                .where(
                    boxes.c.box_id == box_id,
                    or_(
                        boxes.c.lease_owner.is_(None),
                        boxes.c.lease_owner == owner,
                        boxes.c.lease_until_ms <= now,
                    ),
                )
                .values(lease_owner=owner, lease_until_ms=now + lease_ms)
            )
            return bool(result.rowcount)

    async def claim_boxes(self, box_ids: list[str], owner: str, lease_ms: int) -> set[str]:
        """`claim_box` for several boxes in one transaction; the ones now held by `owner`."""
        if not box_ids:
            return set()
        now = now_ms()
        async with self.db.tx() as conn:
            result = await conn.execute(
                update(boxes)
                .where(
                    boxes.c.box_id.in_(sorted(box_ids)),
                    or_(
                        boxes.c.lease_owner.is_(None),
                        boxes.c.lease_owner == owner,
                        boxes.c.lease_until_ms <= now,
                    ),
                )
                .values(lease_owner=owner, lease_until_ms=now + lease_ms)
                .returning(boxes.c.box_id)
            )
            return {r[0] for r in result.all()}

    async def release_boxes(self, owner: str) -> None:
        """A clean stop: another process may dispatch these boxes at once."""
        async with self.db.tx() as conn:
            await conn.execute(
                update(boxes)
                .where(boxes.c.lease_owner == owner)
                .values(lease_owner=None, lease_until_ms=None)
            )


async def _upsert_route(conn: AsyncConnection, route: Route) -> None:
    changed = await conn.execute(
        update(routes)
        .where(routes.c.connector == route.connector, routes.c.key == route.key)
        .values(box_id=route.box_id)
    )
    if not changed.rowcount:
        await conn.execute(
            routes.insert().values(
                connector=route.connector, key=route.key, box_id=route.box_id, created_ms=now_ms()
            )
        )
