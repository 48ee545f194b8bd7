"""МойСклад end to end: a real hub process (SQLite), real Mosquitto, a real box (the daemon on
its emulator) and the fake МойСклад; set up with the connector's own install and attach."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.hub.connectors.moysklad.client import Backoff, Client
from gateway.hub.connectors.moysklad.install import attach, install, render
from tests.fakes.moysklad import ADMIN, API, ORG_ID, SOLUTION_TOKEN, STORE_ID, Fake, product
from tests.hub.support import HubProcess, OfficeKey, printed_names, signed_box
from tests.support.broker import Broker, Pki
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(300)

HUB = [sys.executable, "-m", "gateway", "hub"]
LINK = "https://ofd.example.org/rec?fn={fn}&i={fd}&fp={fp}"


@dataclass
class Rig:
    hub: HubProcess
    box: DaemonProcess
    fake: Fake
    block: dict[str, Any]  # what install printed
    state: str

    def fiscal(self, order_id: str) -> str | None:
        value = self.fake.orders[order_id]["attributes"].get(self.block["attributes"]["fiscal"])
        return None if value is None else str(value)

    def link(self, order_id: str) -> str | None:
        attr = self.block["attributes"]["receipt_url"]
        value = self.fake.orders[order_id]["attributes"].get(attr)
        return None if value is None else str(value)


@pytest.fixture
async def rig(tmp_path: Path, broker: Broker, pki: Pki) -> AsyncIterator[Rig]:
    key = OfficeKey.make(tmp_path / "office-ed25519.pem")
    box = signed_box(tmp_path / "boxes", "box-a", broker, pki, key)
    await asyncio.to_thread(box.start)
    db = f"sqlite:///{tmp_path / 'hub' / 'hub.sqlite3'}"
    hub = HubProcess(tmp_path / "hub", "hub-1", db, broker, pki, key, {"shop-a": "box-a"})
    token_file = tmp_path / "ms.token"
    token_file.write_text(SOLUTION_TOKEN + "\n", encoding="utf-8")
    async with Fake() as fake, aiohttp.ClientSession() as session:
        state = fake.add_state("Фискализировать")
        fake.add_state("Новый")
        client = Client(
            lambda: session,
            fake.api_url,
            {"Authorization": f"Bearer {SOLUTION_TOKEN}"},
            key="t",
            backoff=Backoff(),
            timeout_s=10,
        )
        block = await install(
            client,
            account="shop-ms",
            entity="customerorder",
            state_name="Фискализировать",
            public_url=hub.url,
        )
        pos_token, uid = await attach(session, fake.pos_url, STORE_ID, *ADMIN)
        printed = render({**block, "token_file": str(token_file)})
        hub.extra = (
            f"moysklad:\n  api_url: {fake.api_url}\n  pos_url: {fake.pos_url}\n  accounts:\n"
            + "".join(f"    {line}\n" for line in printed.splitlines())
            + f'      receipt_url: "{LINK}"\n      taxation: osn\n      sweep_s: 1\n'
            f"    - {{name: shop-pos, mode: pos, token: {pos_token}, pos_uid: {uid},"
            f" organization: {ORG_ID}, retail_store: {STORE_ID}, poll_s: 0.2, taxation: osn}}\n"
        )
        cfg = hub.write_config()
        for account in ("shop-ms", "shop-pos"):
            subprocess.run(
                [*HUB, "route", "--config", str(cfg), "add", "moysklad", account, "box-a"],
                check=True,
                capture_output=True,
                timeout=60,
            )
        await asyncio.to_thread(hub.start)
        try:
            yield Rig(hub, box, fake, block, state)
        finally:
            hub.stop()
            box.stop()
            assert hub.tracebacks() == []


async def test_webhook_order_prints_once_and_writes_back_once(rig: Rig) -> None:
    lines = [
        product("Чай зелёный", 25000.0, 2, 20, discount=10),  # 2 × 250.00 less 10% = 450.00
        product("Мёд", 45990.0, 1, 10),
    ]
    order_id = rig.fake.add_order(lines, taxSystem="GENERAL_TAX_SYSTEM")
    started = time.monotonic()
    (delivery,) = await rig.fake.set_state(order_id, rig.state)
    assert delivery.status == 204
    assert time.monotonic() - started < 1.5  # within МойСклад's window, at the first try

    await _until(lambda: rig.fiscal(order_id) is not None)
    receipts = [d for d in rig.box.tape() if d["type"] == "sell"]
    assert printed_names(rig.box) == ["Чай зелёный", "Мёд"]
    assert receipts[0]["total"] == 90990  # kopecks: 450.00 after the discount + 459.90
    tea, honey = receipts[0]["items"]
    assert (tea["sum"], tea["vat"], honey["sum"], honey["vat"]) == (45000, "vat20", 45990, "vat10")
    fiscal = rig.fiscal(order_id)
    assert fiscal is not None
    assert f"ФД {receipts[0]['number']}" in fiscal
    assert f"ФП {receipts[0]['fiscal_sign']}" in fiscal
    link = rig.link(order_id)
    assert link is not None
    assert f"i={receipts[0]['number']}&fp={receipts[0]['fiscal_sign']}" in link

    # Our own write carried the anti-echo header: no webhook fired for it.
    await asyncio.sleep(1)
    assert len(rig.fake.deliveries) == 1
    assert len(rig.fake.puts) == 1

    # МойСклад repeats the delivery (same requestId), then a new one for the same order.
    again = await rig.fake.deliver(delivery.url, delivery.body, delivery.request_id)
    fresh = await rig.fake.deliver(delivery.url, delivery.body, "another-request-id")
    assert (again.status, fresh.status) == (204, 204)
    await asyncio.sleep(3)
    assert printed_names(rig.box) == ["Чай зелёный", "Мёд"]
    assert len(rig.fake.puts) == 1


async def test_a_marked_position_prints_one_checked_line_per_code(rig: Rig) -> None:
    codes = [f"010460065310599021{serial}\x1d93Gk3{n}" for n, serial in enumerate("AB")]
    milk = product("Молоко 3,2%", 9500.0, 2, 10)
    milk["assortment"]["trackingType"] = "MILK"
    milk["trackingCodes"] = [{"cis": code, "type": "trackingcode"} for code in codes]
    order_id = rig.fake.add_order([milk], taxSystem="GENERAL_TAX_SYSTEM")
    (delivery,) = await rig.fake.set_state(order_id, rig.state)
    assert delivery.status == 204
    await _until(lambda: rig.fiscal(order_id) is not None, 60)
    assert "ФД" in (rig.fiscal(order_id) or ""), rig.fiscal(order_id)
    [receipt] = [d for d in rig.box.tape() if d["type"] == "sell"]
    lines = receipt["items"]
    assert [(i["name"], i["sum"]) for i in lines] == [("Молоко 3,2%", 9500)] * 2
    # Each line carries its own code, checked by the marking system (2106 = 0Fh).
    assert [i["tags"].get("2106") for i in lines] == [0x0F, 0x0F]
    assert [i["tags"].get("2000") for i in lines] == [code.encode().hex() for code in codes]


async def test_refused_orders_print_nothing_and_say_why_on_the_order(rig: Rig) -> None:
    empty = rig.fake.add_order([])
    (delivery,) = await rig.fake.set_state(empty, rig.state)
    assert delivery.status == 204
    assert (rig.fiscal(empty) or "").startswith("Чек не пробит: positions:")

    odd_vat = rig.fake.add_order([product("Сыр", 30000.0, 1, 18)], taxSystem="GENERAL_TAX_SYSTEM")
    (delivery,) = await rig.fake.set_state(odd_vat, rig.state)
    assert delivery.status == 204
    assert (rig.fiscal(odd_vat) or "").startswith("Чек не пробит: positions[0].vat:")

    # A delivery naming an order elsewhere: the token is not sent there, nothing is taken.
    forged = {
        "events": [
            {
                "meta": {
                    "href": "http://127.0.0.1:9/entity/customerorder/x",
                    "type": "customerorder",
                },
                "action": "UPDATE",
                "accountId": "a",
            }
        ]
    }
    answer = await rig.fake.deliver(delivery.url, forged, "forged-1")
    assert answer.status == 204

    other_state = rig.fake.add_order([product("Хлеб", 5000.0)], taxSystem="GENERAL_TAX_SYSTEM")
    await rig.fake.set_state(other_state, next(s for s in rig.fake.states if s != rig.state))
    await asyncio.sleep(3)
    assert rig.box.tape() == []
    assert rig.fiscal(other_state) is None


async def test_write_back_through_429_and_503_is_retried_and_written_once(rig: Rig) -> None:
    rig.fake.fail_next[("PUT", API + "/entity/customerorder/")].extend([429, 503, 429])
    order_id = rig.fake.add_order([product("Кофе", 39900.0)], taxSystem="GENERAL_TAX_SYSTEM")
    (delivery,) = await rig.fake.set_state(order_id, rig.state)
    assert delivery.status == 204
    await _until(lambda: rig.fiscal(order_id) is not None, 60)
    assert not rig.fake.fail_next[("PUT", API + "/entity/customerorder/")]  # all three met
    assert rig.fake.answered_429 >= 2
    await asyncio.sleep(2)
    assert len(rig.fake.puts) == 1
    assert printed_names(rig.box) == ["Кофе"]


async def test_a_webhook_lost_after_four_tries_is_taken_by_the_sweep(rig: Rig) -> None:
    order_id = rig.fake.add_order([product("Печенье", 15000.0)], taxSystem="GENERAL_TAX_SYSTEM")
    rig.fake.fail_next[("GET", f"{API}/entity/customerorder/{order_id}")].extend([503] * 4)
    (delivery,) = await rig.fake.set_state(order_id, rig.state)
    assert delivery.status == 503  # every try failed: МойСклад drops the event
    assert [d.status for d in rig.fake.deliveries] == [503] * 4
    await _until(lambda: rig.fiscal(order_id) is not None, 30)
    assert "ФД" in (rig.fiscal(order_id) or "")
    await asyncio.sleep(3)  # later sweeps see the fiscal value and leave it
    assert printed_names(rig.box) == ["Печенье"]
    assert len(rig.fake.puts) == 1


async def test_pos_master_prints_a_redelivered_operation_once_and_approves_it(rig: Rig) -> None:
    await asyncio.to_thread(rig.box.stop)  # the box is away: the queue hands the cheque out again
    op = rig.fake.operation([product("Вода", 8000.0, 3, 20)])
    await _until(lambda: rig.fake.handed[op] >= 5, 30)
    assert rig.box.tape() == []
    await asyncio.to_thread(rig.box.start)
    await _until(lambda: bool(rig.fake.approved.get(op)), 60)
    await asyncio.sleep(2)
    assert printed_names(rig.box) == ["Вода"]
    (approve,) = rig.fake.approved[op]
    receipt = next(d for d in rig.box.tape() if d["type"] == "sell")
    assert approve["cheque"]["fiscalDocNumber"] == str(receipt["number"])
    assert approve["cheque"]["fiscalDocSign"] == str(receipt["fiscal_sign"])
    assert approve["cheque"]["sum"] == 24000
    assert approve["taxSystem"] == "GENERAL_TAX_SYSTEM"
    assert approve["retailShift"]["meta"]["href"] in rig.fake.shifts

    refused = rig.fake.operation([product("Пиво", 12000.0)], kind="prepayment")
    await _until(lambda: bool(rig.fake.rejected.get(refused)), 30)
    assert rig.fake.rejected[refused][0].startswith("meta.type:")
    assert printed_names(rig.box) == ["Вода"]


async def _until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.05)
