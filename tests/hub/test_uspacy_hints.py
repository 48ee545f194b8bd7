"""Durable hints: an accepted stage-change event is a row in the store before the webhook
answers 200, so a hub stopped between the 200 and the deal's re-read prints the deal after
its restart, exactly once. Real parts: the hub store (SQLite on disk), the webhook on
aiohttp's real server, the fake Uspacy posting the events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.hub.connectors.uspacy.mapping import Rules
from gateway.hub.connectors.uspacy.settings import DEFAULT_TAXES, Portal, UspacySettings
from gateway.hub.connectors.uspacy.webhook import HINTS, UspacyConnector
from gateway.hub.model import Order, Route
from gateway.hub.store import Store
from tests.fakes.uspacy import FakeUspacy
from tests.support.broker import free_port

pytestmark = pytest.mark.timeout(120)

SECRET = "hook-secret-0123456789"
TRIGGER = 12
TEA = {"id": 1, "title": "Чай", "price": 45.5, "quantity": 2, "tax_rate": 20, "is_tax_included": 1}


async def until(check: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


@asynccontextmanager
async def hub(
    db: Path, fake: FakeUspacy, port: int, *, work: bool, **tuning: Any
) -> AsyncIterator[tuple[Store, UspacyConnector, list[Order]]]:
    """One hub process's Uspacy part; `work=False` answers webhooks and never re-reads."""
    store = await Store.open(f"sqlite:///{db}")
    portal = Portal(
        key="acme",
        url=fake.url,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        webhook_secret=SECRET,
        rules=Rules(TRIGGER, "fiscal_receipt_url", DEFAULT_TAXES),
    )
    accepted: list[Order] = []
    connector = UspacyConnector(
        store, UspacySettings((portal,)), timeout_s=5, on_accepted=accepted.append, **tuning
    )
    await store.fleet.set_route(Route("uspacy", "acme", "box-1"))
    app = web.Application()
    connector.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    worker = asyncio.create_task(connector.run(), name="test-uspacy-hints") if work else None
    try:
        yield store, connector, accepted
    finally:
        if worker is not None:
            worker.cancel()
            with pytest.raises(asyncio.CancelledError):
                await worker
        await runner.cleanup()
        await connector.close()
        await store.close()


async def test_a_hint_answered_but_not_read_is_printed_once_after_a_restart(
    tmp_path: Path,
) -> None:
    db, port = tmp_path / "hub.sqlite3", free_port()
    async with FakeUspacy() as fake:
        fake.subscribe(f"http://127.0.0.1:{port}/uspacy/acme/{SECRET}")
        fake.add_deal(701, 11, [TEA])
        async with hub(db, fake, port, work=False) as (store, _connector, accepted):
            await fake.move(701, TRIGGER)  # the webhook answered 200...
            assert [r.value["value"] for r in await store.records.all(HINTS)] == [701]
        # ...and the hub stopped before it read the deal.
        assert not any(p.startswith("/crm/") for _m, p, _s in fake.calls)
        async with hub(db, fake, port, work=True, poll_s=0.1) as (store, _connector, accepted):
            await until(lambda: len(accepted) == 1, "the order after the restart")
            await fake.move(701, TRIGGER)  # a repeated event prints nothing more
            for _ in range(100):
                if not await store.records.all(HINTS):
                    break
                await asyncio.sleep(0.05)
            assert await store.records.all(HINTS) == []
            assert len(accepted) == 1
            order = await store.orders.by_key("uspacy", "acme", "701")
            assert order is not None
            assert order.job_uuid == accepted[0].job_uuid


async def test_a_hub_dead_while_holding_a_hint_leaves_it_to_the_next_after_its_lease(
    tmp_path: Path,
) -> None:
    db, port = tmp_path / "hub.sqlite3", free_port()
    async with FakeUspacy() as fake:
        fake.subscribe(f"http://127.0.0.1:{port}/uspacy/acme/{SECRET}")
        fake.add_deal(702, 11, [TEA])
        fake.fail("/crm/v1/entities/deals/702", 503, times=1000)  # Uspacy down for a while
        first = hub(db, fake, port, work=True, retry_s=30, lease_s=1.0, poll_s=0.1)
        async with first as (store, connector, accepted):
            await fake.move(702, TRIGGER)
            await until(lambda: ("GET", "/crm/v1/entities/deals/702", 503) in fake.calls, "a try")
            (row,) = await store.records.all(HINTS)
            assert row.value["owner"] == connector.owner  # leased, and now the hub dies
        assert accepted == []
        fake.faults.clear()  # Uspacy is back
        async with hub(db, fake, port, work=True, poll_s=0.1) as (store, connector, accepted):
            await until(lambda: len(accepted) == 1, "the order from the second hub")
            await asyncio.sleep(0.5)
            assert len(accepted) == 1
            assert await store.records.all(HINTS) == []
            reads = [s for m, p, s in fake.calls if (m, p) == ("GET", "/crm/v1/entities/deals/702")]
            assert reads.count(200) == 1


async def test_two_hubs_working_one_store_read_each_hinted_deal_once(tmp_path: Path) -> None:
    db, port_a, port_b = tmp_path / "hub.sqlite3", free_port(), free_port()
    async with FakeUspacy() as fake:
        fake.subscribe(f"http://127.0.0.1:{port_a}/uspacy/acme/{SECRET}")
        fake.subscribe(f"http://127.0.0.1:{port_b}/uspacy/acme/{SECRET}")
        deals = range(711, 721)
        for deal_id in deals:
            fake.add_deal(deal_id, 11, [TEA])
        async with (
            hub(db, fake, port_a, work=True, poll_s=0.05) as (store, _a, accepted_a),
            hub(db, fake, port_b, work=True, poll_s=0.05) as (_store_b, _b, accepted_b),
        ):
            for deal_id in deals:
                await fake.move(deal_id, TRIGGER)  # each event reaches both hubs: two hints
            await until(lambda: len(accepted_a) + len(accepted_b) == len(deals), "the orders")
            for _ in range(200):
                if not await store.records.all(HINTS):
                    break
                await asyncio.sleep(0.05)
            assert await store.records.all(HINTS) == []
            orders = sorted(int(o.crm_key) for o in accepted_a + accepted_b)
            assert orders == list(deals)
            reads = [p for m, p, s in fake.calls if m == "GET" and "/deals/7" in p and s == 200]
            # Two hints per deal, each leased by one hub: at most two reads, never more.
            assert all(1 <= reads.count(f"/crm/v1/entities/deals/{d}") <= 2 for d in deals)
