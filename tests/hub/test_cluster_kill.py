"""Two hub processes sharing PostgreSQL, 200 orders, one process SIGKILLed three times.

Counted at the receiving ends (the boxes' paper tapes, the CRM's callback endpoint): every
order is printed exactly once on its own box, and every order is called back. A callback
is delivered exactly once except when the process is killed between the CRM's answer and the
commit that records it: then, and only then, it comes a second time (no HTTP sender can do
better; the body carries the uuid to key it by). The test proves every repeat straddles a
kill, and reports how many there were."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.hub.support import (
    AtolClient,
    CallbackReceiver,
    HubProcess,
    OfficeKey,
    Postgres,
    atol_sell,
    printed_names,
    signed_box,
)
from tests.support.broker import Broker, Pki

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

ORDERS = 200
KILLS = 3
GROUPS = {"shop-a": "box-a", "shop-b": "box-b"}


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


async def test_two_hubs_on_postgres_survive_three_kills(
    tmp_path: Path, broker: Broker, pki: Pki, postgres: Postgres
) -> None:
    key = OfficeKey.make(tmp_path / "office-ed25519.pem")
    boxes = {b: signed_box(tmp_path / "boxes", b, broker, pki, key) for b in GROUPS.values()}
    await asyncio.gather(*(asyncio.to_thread(b.start) for b in boxes.values()))
    hubs = [
        HubProcess(tmp_path / "hubs", f"hub-{n}", postgres.url, broker, pki, key, GROUPS)
        for n in (1, 2)
    ]
    for hub in hubs:
        await asyncio.to_thread(hub.start)
    victim, survivor = hubs
    try:
        async with aiohttp.ClientSession() as session, CallbackReceiver() as callbacks:
            clients = [AtolClient(session, h.url) for h in hubs]
            status, body = await clients[1].login()
            assert status == 200, body
            clients[0].token = clients[1].token  # tokens live in the shared database
            accepted: dict[str, tuple[str, str]] = {}  # external id -> (group, uuid)
            kill_at = sorted(random.sample(range(20, ORDERS - 20), KILLS))
            killed_at: list[float] = []

            async def place(n: int) -> None:
                group = "shop-a" if n % 2 else "shop-b"
                external_id = f"k-{n:04d}"
                doc = atol_sell(external_id, f"Товар {external_id}", callback=callbacks.url)
                first = n % 2
                while True:
                    for client in (clients[first], clients[1 - first]):
                        try:
                            status, body = await client.sell(group, doc)
                        except (aiohttp.ClientError, TimeoutError):
                            continue  # that process is dead right now: the other one takes it
                        if status == 200 or (status == 409 and body["error"]["code"] == 33):
                            accepted[external_id] = (group, body["uuid"])
                            return
                        raise AssertionError(f"{external_id}: {status} {body}")
                    await asyncio.sleep(0.2)

            async def killer() -> None:
                for at in kill_at:
                    while len(accepted) < at:
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(random.uniform(0.0, 0.5))
                    killed_at.append(time.monotonic())
                    victim.kill()
                    await asyncio.sleep(random.uniform(0.5, 2.0))
                    await asyncio.to_thread(victim.start)

            kill_task = asyncio.create_task(killer(), name="killer")
            for start in range(0, ORDERS, 10):
                await asyncio.gather(*(place(n) for n in range(start, start + 10)))
                await asyncio.sleep(0.05)
            await kill_task
            assert len(accepted) == ORDERS

            for external_id, (group, uuid) in accepted.items():
                report = await clients[1].wait_done(group, uuid, timeout_s=240)
                assert report["status"] == "done", (external_id, report)
            uuids = {uuid for _group, uuid in accepted.values()}
            async with asyncio.timeout(120):
                while set(callbacks.counts) != uuids:
                    await asyncio.sleep(0.1)
            await asyncio.sleep(5)  # any second delivery would arrive within the retry delay

            assert set(callbacks.counts) == uuids
            repeats = {u for u, n in callbacks.counts.items() if n > 1}
            assert all(callbacks.counts[u] == 2 for u in repeats)
            for uuid in repeats:
                first, second = (t for t, u in callbacks.arrivals if u == uuid)
                assert any(first <= k <= second for k in killed_at), uuid
            print(f"callbacks: {ORDERS} orders, {len(repeats)} repeated across {KILLS} kills")
            assert all(body["status"] == "done" for body in callbacks.bodies)
            for group, box_id in GROUPS.items():
                names = Counter(printed_names(boxes[box_id]))
                expected = {f"Товар {e}" for e, (g, _uuid) in accepted.items() if g == group}
                assert set(names) == expected
                assert set(names.values()) == {1}
    finally:
        for hub in hubs:
            hub.stop()
        for box in boxes.values():
            box.stop()
    assert survivor.tracebacks() == []
    assert victim.log.read_text(errors="replace").count("API on http") == 1 + KILLS
