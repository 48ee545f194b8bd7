"""The ATOL Online API end to end: a real hub process (SQLite), real Mosquitto under the ACL,
two real boxes (the daemon on its emulator) that accept only the office's signed commands."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.hub.support import (
    AtolClient,
    CallbackReceiver,
    HubProcess,
    OfficeKey,
    atol_sell,
    printed_names,
    signed_box,
)
from tests.support.broker import Broker, Pki
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(300)


@dataclass
class Rig:
    hub: HubProcess
    boxes: dict[str, DaemonProcess]
    client: AtolClient
    callbacks: CallbackReceiver


@pytest.fixture
async def rig(tmp_path: Path, broker: Broker, pki: Pki) -> AsyncIterator[Rig]:
    key = OfficeKey.make(tmp_path / "office-ed25519.pem")
    boxes = {b: signed_box(tmp_path / "boxes", b, broker, pki, key) for b in ("box-a", "box-b")}
    await asyncio.gather(*(asyncio.to_thread(b.start) for b in boxes.values()))
    hub = HubProcess(
        tmp_path / "hub",
        "hub-1",
        f"sqlite:///{tmp_path / 'hub' / 'hub.sqlite3'}",
        broker,
        pki,
        key,
        {"shop-a": "box-a", "shop-b": "box-b"},
    )
    await asyncio.to_thread(hub.start)
    try:
        async with aiohttp.ClientSession() as session, CallbackReceiver() as callbacks:
            client = AtolClient(session, hub.url)
            status, body = await client.login()
            assert status == 200, body
            yield Rig(hub, boxes, client, callbacks)
    finally:
        hub.stop()
        for box in boxes.values():
            box.stop()
        assert hub.tracebacks() == []


async def test_an_order_prints_once_on_its_box_reports_done_and_calls_back_once(rig: Rig) -> None:
    doc = atol_sell("order-1001", "Чай зелёный order-1001", callback=rig.callbacks.url)
    status, body = await rig.client.sell("shop-b", doc)
    assert status == 200, body
    assert body["status"] == "wait"
    assert body["error"] is None
    uuid = body["uuid"]

    report = await rig.client.wait_done("shop-b", uuid)
    assert report["status"] == "done", report
    assert report["external_id"] == "order-1001"
    assert report["device_code"] == "box-b"
    receipts = [d for d in rig.boxes["box-b"].tape() if d["type"] == "sell"]
    assert printed_names(rig.boxes["box-b"]) == ["Чай зелёный order-1001"]
    assert rig.boxes["box-a"].tape() == []
    payload = report["payload"]
    assert payload["fiscal_document_number"] == receipts[0]["number"]
    assert payload["fiscal_document_attribute"] == receipts[0]["fiscal_sign"]
    assert payload["total"] == 45.5
    assert payload["fn_number"]
    assert payload["fiscal_document_attribute"]

    await _until(lambda: rig.callbacks.counts[uuid] >= 1)
    await asyncio.sleep(2)  # a second callback would come within the retry delays
    assert rig.callbacks.counts[uuid] == 1
    assert rig.callbacks.bodies[0]["status"] == "done"
    assert rig.callbacks.bodies[0]["payload"] == payload

    # The same external_id again: the first document's uuid, code 33, nothing printed.
    status, again = await rig.client.sell("shop-b", doc)
    assert status == 409
    assert again["error"]["code"] == 33
    assert again["uuid"] == uuid
    await asyncio.sleep(2)
    assert printed_names(rig.boxes["box-b"]) == ["Чай зелёный order-1001"]
    assert rig.callbacks.counts[uuid] == 1


async def test_a_marked_order_is_checked_and_bound_on_its_box(rig: Rig) -> None:
    code = b"0104600653105990215" + b"2CUnq\x1d93Gk30"  # as scanned, GS kept
    doc = atol_sell("order-mark-ok", "Молоко 3,2%", price=95)
    doc["receipt"]["items"][0].update(
        payment_object=33,
        mark_code={"gs1m": base64.b64encode(code).decode()},
        mark_processing_mode="0",
    )
    status, body = await rig.client.sell("shop-a", doc)
    assert status == 200, body
    report = await rig.client.wait_done("shop-a", body["uuid"])
    assert report["status"] == "done", report
    [line] = [i for d in rig.boxes["box-a"].tape() for i in d.get("items", [])]
    assert line["tags"]["1212"] == 33
    assert line["tags"]["2000"] == code.hex()
    assert line["tags"]["2106"] == 0x0F  # the marking system confirmed it


async def test_bad_bodies_unknown_routes_and_tokens_are_refused_by_name(rig: Rig) -> None:
    bad = atol_sell("order-bad", "Хлеб")
    bad["receipt"]["items"][0]["price"] = -1
    status, body = await rig.client.sell("shop-a", bad)
    assert status == 400, body
    assert body["error"]["code"] == 32
    assert body["error"]["field"] == "receipt.items[0].price"

    marked = atol_sell("order-mark", "Сыр")
    marked["receipt"]["items"][0]["mark_code"] = {"ean13": "4600000000000"}  # no marking code
    status, body = await rig.client.sell("shop-a", marked)
    assert (status, body["error"]["field"]) == (400, "receipt.items[0].mark_code.ean13")

    status, body = await rig.client.sell("unrouted", atol_sell("order-x", "Хлеб"))
    assert status == 400
    assert body["error"]["code"] == 22

    status, body = await rig.client.sell("not-mine", atol_sell("order-y", "Хлеб"))
    assert status == 403
    assert body["error"]["code"] == 21

    thief = AtolClient(rig.client.session, rig.hub.url)
    status, body = await thief.sell("shop-a", atol_sell("order-z", "Хлеб"))
    assert status == 401
    assert body["error"]["code"] == 4
    thief.token = "forged"
    status, body = await thief.sell("shop-a", atol_sell("order-z", "Хлеб"))
    assert status == 401
    assert body["error"]["code"] == 5
    status, body = await thief.login("shop", "wrong")
    assert status == 401
    assert body["error"]["code"] == 12

    await asyncio.sleep(2)
    assert rig.boxes["box-a"].tape() == []
    assert rig.boxes["box-b"].tape() == []


async def test_a_box_offline_during_the_order_prints_it_when_it_returns(rig: Rig) -> None:
    box = rig.boxes["box-a"]
    await asyncio.to_thread(box.stop)
    uuids = []
    for n in range(3):
        doc = atol_sell(f"late-{n}", f"Кофе late-{n}", callback=rig.callbacks.url)
        status, body = await rig.client.sell("shop-a", doc)
        assert status == 200, body
        uuids.append(body["uuid"])
    await asyncio.sleep(4)
    for uuid in uuids:
        status, report = await rig.client.report("shop-a", uuid)
        assert report["status"] == "wait"

    await asyncio.to_thread(box.start)
    for uuid in uuids:
        assert (await rig.client.wait_done("shop-a", uuid))["status"] == "done"
    assert printed_names(box) == [f"Кофе late-{n}" for n in range(3)]  # once each, in order
    await _until(lambda: all(rig.callbacks.counts[u] == 1 for u in uuids))


async def _until(predicate: object, timeout_s: float = 30.0) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.05)
