"""Orders: accepted once per CRM key, dispatched in order per box, finished by box results."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.hub.errors import OrderNotFound, StoreError, UnknownRoute
from gateway.hub.model import (
    PENDING_STATES,
    Accepted,
    Dispatch,
    NewOrder,
    Order,
    OrderState,
    WritebackSpec,
    WritebackState,
    job_uuid,
)
from gateway.hub.store import rows
from gateway.hub.store.database import Database, now_ms
from gateway.hub.store.schema import boxes, orders, routes, writebacks

_LOGGER = logging.getLogger(__name__)

# Published to the box: PENDING until acked; ACKED ones are asked again when no result came.
DISPATCH_STATES = (*PENDING_STATES, OrderState.ACKED)
# A box refused the command for a reason a fresh signature cures: send it again.
RESIGN_CODES = frozenset({"expired", "expiry_too_far", "stale_sequence"})

WritebackBuilder = Callable[[Order], WritebackSpec | None]


@dataclass(frozen=True, slots=True)
class Answer:
    """An ack or a result from a box, as it came."""

    kind: str  # "ack" | "result"
    box_id: str
    uuid: str
    body: dict[str, Any]


class OrderStore:
    """Every write to `orders` goes through here."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- intake -----------------------------------------------------------------------------

    async def accept(self, new: NewOrder) -> Accepted:
        """Commit a new order, or return the stored one for the same CRM key.

        The box is taken from the route table in the same transaction; an unknown route
        raises UnknownRoute and stores nothing.
        """
        for _attempt in range(3):
            try:
                return await self._accept_once(new)
            except StoreError as err:
                if not isinstance(err.__cause__, IntegrityError):
                    raise
                # Another process inserted the same key (or box) first: read theirs.
        raise StoreError(f"order {new.crm_key!r}: kept conflicting with concurrent inserts")

    async def _accept_once(self, new: NewOrder) -> Accepted:
        uuid = job_uuid(new.connector, new.account, new.crm_key)
        async with self.db.tx() as conn:
            found = (
                await conn.execute(select(orders).where(orders.c.job_uuid == uuid))
            ).one_or_none()
            if found is not None:
                return Accepted(rows.order(found), created=False)
            box_id = (
                await conn.execute(
                    select(routes.c.box_id).where(
                        routes.c.connector == new.connector, routes.c.key == new.route_key
                    )
                )
            ).scalar_one_or_none()
            if box_id is None:
                raise UnknownRoute(new.connector, new.route_key)
            await _ensure_box(conn, box_id)
            now = now_ms()
            await conn.execute(
                orders.insert().values(
                    connector=new.connector,
                    account=new.account,
                    crm_key=new.crm_key,
                    box_id=box_id,
                    job_uuid=uuid,
                    request_json=rows.dumps(new.request),
                    meta_json=rows.dumps(new.meta),
                    state=OrderState.ACCEPTED.value,
                    writeback=WritebackState.NONE.value,
                    sends=0,
                    next_send_ms=now,
                    created_ms=now,
                    updated_ms=now,
                )
            )
            row = (await conn.execute(select(orders).where(orders.c.job_uuid == uuid))).one()
            return Accepted(rows.order(row), created=True)

    # --- reading ----------------------------------------------------------------------------

    async def get(self, uuid: str) -> Order:
        async with self.db.tx() as conn:
            row = (
                await conn.execute(select(orders).where(orders.c.job_uuid == uuid))
            ).one_or_none()
        if row is None:
            raise OrderNotFound(uuid)
        return rows.order(row)

    async def by_key(self, connector: str, account: str, crm_key: str) -> Order | None:
        return await self._one(job_uuid(connector, account, crm_key))

    async def _one(self, uuid: str) -> Order | None:
        try:
            return await self.get(uuid)
        except OrderNotFound:
            return None

    async def counts(self) -> dict[str, int]:
        """Orders per state (for the fleet page and the bench)."""
        async with self.db.tx() as conn:
            result = await conn.execute(
                select(orders.c.state, func.count()).group_by(orders.c.state)
            )
            return {state: int(n) for state, n in result.all()}

    async def recent(self, *, box_id: str | None = None, limit: int = 100) -> list[Order]:
        """The newest orders, newest first."""
        query = select(orders).order_by(orders.c.id.desc()).limit(limit)
        if box_id is not None:
            query = query.where(orders.c.box_id == box_id)
        async with self.db.tx() as conn:
            return [rows.order(r) for r in (await conn.execute(query)).all()]

    # --- dispatch ---------------------------------------------------------------------------

    async def due_boxes(self, now: int, limit: int = 1000) -> list[str]:
        """Boxes with an order to publish now."""
        query = (
            select(orders.c.box_id)
            .where(
                orders.c.state.in_([s.value for s in DISPATCH_STATES]),
                orders.c.next_send_ms <= now,
            )
            .group_by(orders.c.box_id)
            .limit(limit)
        )
        async with self.db.tx() as conn:
            return [r[0] for r in (await conn.execute(query)).all()]

    async def take_dispatch(
        self, box_id: str, owner: str, *, limit: int, resend_ms: int, reask_ms: int
    ) -> list[Dispatch]:
        """The box's due orders, oldest first, each with a fresh sequence number.

        Only the holder of the box's dispatch lease may take them, so one process publishes
        a box's orders and they reach it in order. Sequence numbers are allocated in the same
        transaction: never below the clock in milliseconds (so they stay above the numbers
        `fiscal-gateway send` uses) and always above the last one allocated.
        """
        taken = await self.take_dispatch_many(
            [box_id], owner, limit=limit, resend_ms=resend_ms, reask_ms=reask_ms
        )
        return taken.get(box_id, [])

    async def take_dispatch_many(
        self, box_ids: list[str], owner: str, *, limit: int, resend_ms: int, reask_ms: int
    ) -> dict[str, list[Dispatch]]:
        """`take_dispatch` for several boxes in one transaction (one commit per round)."""
        now = now_ms()
        out: dict[str, list[Dispatch]] = {}
        async with self.db.tx() as conn:
            for box_id in sorted(box_ids):  # a fixed lock order across processes
                batch = await _take(conn, box_id, owner, now, limit, resend_ms, reask_ms)
                if batch:
                    out[box_id] = batch
        return out

    async def send_now(self, box_id: str) -> None:
        """A box came back online: its pending orders are due at once."""
        async with self.db.tx() as conn:
            await conn.execute(
                update(orders)
                .where(
                    orders.c.box_id == box_id,
                    orders.c.state.in_([s.value for s in DISPATCH_STATES]),
                )
                .values(next_send_ms=0)
            )

    # --- results ----------------------------------------------------------------------------

    async def record_ack(
        self,
        box_id: str,
        uuid: str,
        body: dict[str, Any],
        builder: WritebackBuilder,
        *,
        reask_ms: int,
    ) -> Order | None:
        """Apply a box's ack; None when the uuid is no order of this box."""
        answer = Answer("ack", box_id, uuid, body)
        return (await self.record_answers([answer], builder, reask_ms=reask_ms))[0]

    async def record_result(
        self, box_id: str, uuid: str, body: dict[str, Any], builder: WritebackBuilder
    ) -> Order | None:
        """Apply a box's result; a repeated result changes nothing and writes back nothing."""
        answer = Answer("result", box_id, uuid, body)
        return (await self.record_answers([answer], builder, reask_ms=0))[0]

    async def record_answers(
        self, answers: list[Answer], builder: WritebackBuilder, *, reask_ms: int
    ) -> list[Order | None]:
        """Apply acks and results in one transaction (one commit for a batch of messages);
        for each, the order after it, or None when the uuid is no order of that box."""
        now = now_ms()
        out: list[Order | None] = [None] * len(answers)
        # Rows are locked in uuid order (a stable sort keeps an ack before its result), so
        # two processes' batches cannot deadlock on each other.
        order_of = sorted(range(len(answers)), key=lambda i: answers[i].uuid)
        async with self.db.tx() as conn:
            for i in order_of:
                answer = answers[i]
                row = await _locked_order(conn, answer.box_id, answer.uuid)
                if row is None:
                    continue
                if answer.kind == "ack":
                    await self._ack(conn, row, answer.body, now, builder, reask_ms)
                else:
                    await self._result(conn, row, answer.body, now, builder)
                out[i] = await _reread(conn, row.id)
        return out

    async def _ack(
        self,
        conn: AsyncConnection,
        row: Any,
        body: dict[str, Any],
        now: int,
        builder: WritebackBuilder,
        reask_ms: int,
    ) -> None:
        status = body.get("status")
        current = OrderState(row._mapping["state"])
        if current not in PENDING_STATES:
            return
        if status in ("accepted", "duplicate"):
            await _set(
                conn,
                row.id,
                state=OrderState.ACKED.value,
                next_send_ms=now + reask_ms,
                updated_ms=now,
            )
        elif status == "rejected":
            raw = body.get("error")
            error: dict[str, Any] = raw if isinstance(raw, dict) else {}
            if error.get("code") in RESIGN_CODES:
                await _set(conn, row.id, next_send_ms=now, updated_ms=now)
            else:
                await self._finish(conn, row, OrderState.FAILED, {"error": error}, now, builder)

    async def _result(
        self,
        conn: AsyncConnection,
        row: Any,
        body: dict[str, Any],
        now: int,
        builder: WritebackBuilder,
    ) -> None:
        current = OrderState(row._mapping["state"])
        if current in (OrderState.DONE, OrderState.FAILED):
            return
        await self._finish(conn, row, result_state(body), body, now, builder)

    @staticmethod
    async def _finish(
        conn: AsyncConnection,
        row: Any,
        state: OrderState,
        result: dict[str, Any],
        now: int,
        builder: WritebackBuilder,
    ) -> None:
        values: dict[str, Any] = {
            "state": state.value,
            "result_json": rows.dumps(result),
            "updated_ms": now,
            "finished_ms": now,
        }
        if state in (OrderState.DONE, OrderState.FAILED):
            # The CRM hears of a final outcome only; a blocked job may still print.
            done = rows.order(row)
            spec = builder(
                Order(**{**_fields(done), "state": state, "result": result, "finished_ms": now})
            )
            if spec is not None:
                await conn.execute(
                    writebacks.insert().values(
                        order_id=row.id,
                        connector=done.connector,
                        target=spec.target,
                        body_json=rows.dumps(spec.body),
                        state=WritebackState.PENDING.value,
                        attempts=0,
                        next_ms=now,
                        created_ms=now,
                    )
                )
                values["writeback"] = WritebackState.PENDING.value
        await _set(conn, row.id, **values)

    # --- expiry -----------------------------------------------------------------------------

    async def expire(self, before_ms: int) -> int:
        """Delete orders finished before `before_ms` whose write-back is not pending."""
        async with self.db.tx() as conn:
            result = await conn.execute(
                delete(orders).where(
                    and_(
                        orders.c.finished_ms < before_ms,
                        orders.c.writeback != WritebackState.PENDING.value,
                        orders.c.state.in_([OrderState.DONE.value, OrderState.FAILED.value]),
                    )
                )
            )
            return int(result.rowcount)


def result_state(body: dict[str, Any]) -> OrderState:
    """A box result body -> the order's state (the first task's status decides)."""
    results = body.get("results")
    status = results[0].get("status") if isinstance(results, list) and results else None
    statuses = [r.get("status") for r in results] if isinstance(results, list) else []
    if statuses and all(s == "ready" for s in statuses):
        return OrderState.DONE
    if "blocked" in statuses or status == "blocked":
        return OrderState.BLOCKED
    return OrderState.FAILED


async def _take(
    conn: AsyncConnection,
    box_id: str,
    owner: str,
    now: int,
    limit: int,
    resend_ms: int,
    reask_ms: int,
) -> list[Dispatch]:
    held = (
        await conn.execute(
            select(boxes.c.lease_owner).where(
                boxes.c.box_id == box_id,
                boxes.c.lease_owner == owner,
                boxes.c.lease_until_ms > now,
            )
        )
    ).one_or_none()
    if held is None:
        return []
    query = (
        select(orders.c.id, orders.c.job_uuid, orders.c.request_json)
        .where(
            orders.c.box_id == box_id,
            orders.c.state.in_([s.value for s in DISPATCH_STATES]),
            orders.c.next_send_ms <= now,
        )
        .order_by(orders.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        # An order an answer is being committed for was sent already: skip it this round
        # rather than wait (waiting on each other's rows is how two processes deadlock).
        query = query.with_for_update(skip_locked=True)
    due = (await conn.execute(query)).all()
    if not due:
        return []
    n = len(due)
    last = (
        await conn.execute(
            update(boxes)
            .where(boxes.c.box_id == box_id)
            .values(seq=case((boxes.c.seq + 1 > now, boxes.c.seq + n), else_=now + n - 1))
            .returning(boxes.c.seq)
        )
    ).scalar_one()
    first = int(last) - n + 1
    ids = [r.id for r in due]
    await conn.execute(
        update(orders)
        .where(orders.c.id.in_(ids))
        .values(
            state=case(
                (orders.c.state == OrderState.ACCEPTED.value, OrderState.SENT.value),
                else_=orders.c.state,
            ),
            sends=orders.c.sends + 1,
            next_send_ms=case(
                (orders.c.state == OrderState.ACKED.value, now + reask_ms),
                else_=now + resend_ms,
            ),
            updated_ms=now,
        )
    )
    return [
        Dispatch(r.id, box_id, r.job_uuid, rows.loads_obj(r.request_json), first + i)
        for i, r in enumerate(due)
    ]


def _fields(order: Order) -> dict[str, Any]:
    return {name: getattr(order, name) for name in Order.__slots__}


async def _ensure_box(conn: AsyncConnection, box_id: str) -> None:
    exists = (
        await conn.execute(select(boxes.c.box_id).where(boxes.c.box_id == box_id))
    ).one_or_none()
    if exists is None:
        await conn.execute(boxes.insert().values(box_id=box_id, seq=0, online=False))


async def _locked_order(conn: AsyncConnection, box_id: str, uuid: str) -> Any:
    query = select(orders).where(orders.c.job_uuid == uuid, orders.c.box_id == box_id)
    return (await conn.execute(query.with_for_update())).one_or_none()


async def _reread(conn: AsyncConnection, order_id: int) -> Order:
    return rows.order((await conn.execute(select(orders).where(orders.c.id == order_id))).one())


async def _set(conn: AsyncConnection, order_id: int, **values: Any) -> None:
    await conn.execute(update(orders).where(orders.c.id == order_id).values(**values))
