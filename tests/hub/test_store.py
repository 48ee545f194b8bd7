"""The hub's store on SQLite and on a real PostgreSQL: the same operations, the same answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.hub.errors import UnknownRoute
from gateway.hub.model import NewOrder, Order, OrderState, Route, WritebackSpec, job_uuid
from gateway.hub.store import Store
from gateway.hub.store.database import now_ms
from tests.hub.support import Postgres


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, postgres: Postgres
) -> AsyncIterator[Store]:
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}" if request.param == "sqlite" else postgres.url
    opened = await Store.open(url)
    if request.param == "postgresql":  # one cluster for the module: start each test empty
        async with opened.db.tx() as conn:
            await conn.exec_driver_sql(
                "TRUNCATE orders, writebacks, routes, boxes, leases, tokens RESTART IDENTITY"
            )
    await opened.fleet.set_route(Route("atol_online", "shop-1", "box-1"))
    try:
        yield opened
    finally:
        await opened.close()


def order(key: str, route: str = "shop-1", callback: str = "http://crm/cb") -> NewOrder:
    request: list[dict[str, Any]] = [{"type": "sell", "items": [], "payments": [], "total": 0}]
    return NewOrder("atol_online", "shop-1", key, route, request, {"callback_url": callback})


def callback(o: Order) -> WritebackSpec | None:
    url = o.meta.get("callback_url")
    return WritebackSpec(url, {"uuid": o.job_uuid, "state": o.state.value}) if url else None


async def test_an_order_is_stored_once_per_crm_key(store: Store) -> None:
    first = await store.orders.accept(order("ext-1"))
    again = await store.orders.accept(order("ext-1"))
    assert first.created
    assert not again.created
    assert again.order.id == first.order.id
    assert first.order.job_uuid == job_uuid("atol_online", "shop-1", "ext-1")
    assert first.order.box_id == "box-1"
    assert first.order.state is OrderState.ACCEPTED
    racing = await asyncio.gather(*(store.orders.accept(order("ext-2")) for _ in range(8)))
    assert sum(a.created for a in racing) == 1
    assert len({a.order.id for a in racing}) == 1


async def test_an_unknown_route_is_refused_and_nothing_is_stored(store: Store) -> None:
    with pytest.raises(UnknownRoute) as err:
        await store.orders.accept(order("ext-3", route="nowhere"))
    assert err.value.key == "nowhere"
    assert await store.orders.counts() == {}


async def test_only_the_lease_holder_dispatches_with_increasing_sequences(store: Store) -> None:
    for n in range(5):
        await store.orders.accept(order(f"d-{n}"))
    before = now_ms()
    assert await store.fleet.claim_box("box-1", "p1", 5000)
    assert not await store.fleet.claim_box("box-1", "p2", 5000)
    assert (
        await store.orders.take_dispatch("box-1", "p2", limit=10, resend_ms=1000, reask_ms=1) == []
    )
    batch = await store.orders.take_dispatch("box-1", "p1", limit=3, resend_ms=60_000, reask_ms=1)
    assert [d.job_uuid for d in batch] == [
        job_uuid("atol_online", "shop-1", f"d-{n}") for n in range(3)
    ]
    seqs = [d.seq for d in batch]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 3
    assert seqs[0] >= before  # never below the clock: above `fiscal-gateway send`'s numbers
    rest = await store.orders.take_dispatch("box-1", "p1", limit=10, resend_ms=60_000, reask_ms=1)
    assert rest[0].seq > seqs[-1]
    assert rest[1].seq == rest[0].seq + 1
    # Published ones are not due again until their resend time.
    assert await store.orders.take_dispatch("box-1", "p1", limit=10, resend_ms=1, reask_ms=1) == []


async def test_results_finish_once_and_queue_one_writeback(store: Store) -> None:
    accepted = await store.orders.accept(order("r-1"))
    uuid = accepted.order.job_uuid
    acked = await store.orders.record_ack(
        "box-1", uuid, {"status": "accepted"}, callback, reask_ms=1
    )
    assert acked is not None
    assert acked.state is OrderState.ACKED
    body = {"uuid": uuid, "results": [{"status": "ready", "result": {"fiscalParams": {}}}]}
    done = await store.orders.record_result("box-1", uuid, body, callback)
    again = await store.orders.record_result("box-1", uuid, body, callback)
    assert done is not None
    assert again is not None
    assert done.state is OrderState.DONE
    assert again.state is OrderState.DONE
    assert [w.body["state"] for w in await store.outbox.for_order(done.id)] == ["done"]
    assert await store.orders.record_result("box-2", uuid, body, callback) is None  # not its box


async def test_a_stale_signature_is_sent_again_and_a_refusal_fails_the_order(store: Store) -> None:
    a = (await store.orders.accept(order("s-1"))).order
    b = (await store.orders.accept(order("s-2"))).order
    stale = {"status": "rejected", "error": {"code": "expired", "field": "exp"}}
    refused = {"status": "rejected", "error": {"code": "invalid_request", "field": "total"}}
    assert (
        await store.orders.record_ack("box-1", a.job_uuid, stale, callback, reask_ms=1)
    ).state is (  # type: ignore[union-attr]
        OrderState.ACCEPTED
    )
    failed = await store.orders.record_ack("box-1", b.job_uuid, refused, callback, reask_ms=1)
    assert failed is not None
    assert failed.state is OrderState.FAILED
    assert failed.result == {"error": refused["error"]}


async def test_writebacks_are_leased_to_one_process(store: Store) -> None:
    for n in range(30):
        accepted = await store.orders.accept(order(f"w-{n}"))
        body = {"uuid": accepted.order.job_uuid, "results": [{"status": "ready"}]}
        await store.orders.record_result("box-1", accepted.order.job_uuid, body, callback)
    claims = await asyncio.gather(
        *(store.outbox.claim(f"p{n}", lease_ms=60_000, limit=10) for n in range(4))
    )
    ids = [w.id for claim in claims for w in claim]
    assert len(ids) == 30
    assert len(set(ids)) == 30
    row = claims[0][0]
    assert not await store.outbox.delivered(row, "someone-else")
    assert await store.outbox.delivered(row, "p0")
    other = claims[1][0] if claims[1] else claims[2][0]
    owner = "p1" if claims[1] else "p2"
    overdue = await store.outbox.failed(
        other, owner, error="HTTP 500", retry_in_ms=0, alert_after_ms=0
    )
    assert overdue
    assert [w.id for w in await store.outbox.overdue()] == [other.id]


async def test_a_named_lease_has_one_holder(store: Store) -> None:
    got = await asyncio.gather(
        *(store.access.take_lease("expiry", f"p{n}", 60_000) for n in range(5))
    )
    assert sum(got) == 1
    holder = f"p{got.index(True)}"
    assert await store.access.take_lease("expiry", holder, 60_000)


async def test_finished_orders_expire_and_pending_writebacks_keep_them(store: Store) -> None:
    kept = (await store.orders.accept(order("e-1"))).order
    gone = (await store.orders.accept(order("e-2", callback=""))).order
    body = {"results": [{"status": "ready"}]}
    await store.orders.record_result(
        "box-1", kept.job_uuid, {**body, "uuid": kept.job_uuid}, callback
    )
    await store.orders.record_result(
        "box-1", gone.job_uuid, {**body, "uuid": gone.job_uuid}, callback
    )
    assert await store.orders.expire(now_ms() + 1) == 1
    assert (await store.orders.get(kept.job_uuid)).state is OrderState.DONE
    assert await store.orders.by_key("atol_online", "shop-1", "e-2") is None
