"""Bitrix24 end to end: the fake portal, a real hub process (SQLite), real Mosquitto and a real
box (the daemon on its emulator) that takes only the office's signed commands. The install
runs through the real command line."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.hub.store import Store
from tests.fakes.bitrix24 import FakePortal, PortalCheck
from tests.hub.support import HubProcess, OfficeKey, signed_box
from tests.support.broker import Broker, Pki
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(300)


@dataclass
class Rig:
    hub: HubProcess
    box: DaemonProcess
    portal: FakePortal
    cashbox_id: int

    def sell(
        self, check_type: str = "sell", name: str = "Кофе в зёрнах", method: str = "full_payment"
    ) -> PortalCheck:
        items = [
            {
                "name": name,
                "base_price": 1500,
                "price": 1400,
                "sum": 350,
                "quantity": 0.25,
                "measure_code": 166,
                "vat": 3,
                "vat_sum": 31.82,
                "payment_object": "commodity",
                "payment_method": method,
            },
            {
                "name": "Доставка",
                "price": 250,
                "sum": 250,
                "quantity": 1,
                "vat": 4,
                "vat_sum": 41.67,
                "payment_object": "service",
                "payment_method": method,
            },
        ]
        payments = [{"type": "cashless", "is_cash": "N", "sum": 600}]
        return self.portal.new_check(self.cashbox_id, check_type, items, payments)

    async def status(self, check: PortalCheck) -> dict[str, Any]:
        """CHECK_URL's answer, read without letting the fake core act on it."""
        handler = next(iter(self.portal.handlers.values()))
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                handler["SETTINGS"]["CHECK_URL"], data={"uuid": str(check.external_uuid)}
            ) as response,
        ):
            assert response.status == 200
            return dict(await response.json())


async def _cli(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "hub",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


@contextlib.asynccontextmanager
async def bitrix24_rig(
    tmp_path: Path, broker: Broker, pki: Pki, *, hub_extra: str = ""
) -> AsyncIterator[Rig]:
    """A box, a hub (`hub_extra` appended to its config) and a portal with the install done."""
    key = OfficeKey.make(tmp_path / "office-ed25519.pem")
    box = signed_box(tmp_path / "boxes", "box-a", broker, pki, key)
    await asyncio.to_thread(box.start)
    hub = HubProcess(
        tmp_path / "hub",
        "hub-1",
        f"sqlite:///{tmp_path / 'hub' / 'hub.sqlite3'}",
        broker,
        pki,
        key,
        {"shop-a": "box-a"},
        extra=hub_extra,
    )
    await asyncio.to_thread(hub.start)
    try:
        async with FakePortal() as portal:
            out = await _cli(
                "bitrix24",
                "--config",
                str(hub.home / f"{hub.name}.yaml"),
                "install",
                "--portal",
                portal.url,
                "--webhook",
                portal.webhook,
                "--box",
                "box-a",
                "--email",
                "shop@example.org",
                "--name",
                "shop",
                "--setting",
                "TAXATION=osn",
            )
            assert "shop: handler" in out
            [cashbox_id] = portal.cashboxes
            yield Rig(hub, box, portal, cashbox_id)
    finally:
        hub.stop()
        box.stop()
        assert hub.tracebacks() == []


@pytest.fixture
async def rig(tmp_path: Path, broker: Broker, pki: Pki) -> AsyncIterator[Rig]:
    async with bitrix24_rig(tmp_path, broker, pki) as made:
        yield made


async def _until(predicate: Callable[[], bool], timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.05)


def receipts(box: DaemonProcess) -> list[dict[str, Any]]:
    return [d for d in box.tape() if d["type"] in ("sell", "sell_return", "sellReturn")]


async def test_a_sell_prints_once_and_check_apply_survives_two_503s(rig: Rig) -> None:
    rig.portal.fail("sale.cashbox.check.apply", 503, "QUERY_LIMIT_EXCEEDED", times=2)
    check = rig.sell()
    await rig.portal.print_check(check)
    assert check.status == "P"
    assert check.external_uuid

    await _until(lambda: check.status == "Y")
    assert check.applied == 1
    assert rig.portal.calls["sale.cashbox.check.apply"] == 3
    [printed] = receipts(rig.box)
    assert [i["name"] for i in printed["items"]] == ["Кофе в зёрнах", "Доставка"]
    coffee, delivery = (item["tags"] for item in printed["items"])
    assert coffee["1023"] == 0.25  # the fractional quantity, as the ФН holds it
    assert (coffee["2108"], coffee["1212"], coffee["1214"]) == (11, 1, 4)  # kg, goods, full
    assert (delivery["1212"], delivery["1214"]) == (4, 4)  # a service, full payment
    assert [i["vat"] for i in printed["items"]] == ["vat10", "vat20"]  # VAT ids 3 and 4
    assert (coffee["1199"], delivery["1199"]) == (2, 1)  # [FFD] 10 % and 20 %
    assert check.link_params["FISCAL_DOC_NUMBER"] == str(printed["number"])
    assert check.link_params["FISCAL_DOC_ATTR"] == str(printed["fiscal_sign"])
    assert check.link_params["FN_NUMBER"]
    assert check.link_params["REG_NUMBER_KKT"]
    assert abs(int(check.link_params["PRINT_END_TIME"]) - time.time()) < 86400 * 2

    answer = await rig.status(check)
    assert answer["STATUS"] == "DONE"
    assert answer["FISCAL_DOC_NUMBER"] == check.link_params["FISCAL_DOC_NUMBER"]

    # A return of the same sale: a sellReturn on the register.
    back = rig.sell("sellreturn")
    await rig.portal.print_check(back)
    await _until(lambda: back.status == "Y")
    assert len(receipts(rig.box)) == 2
    # A prepayment (100 %) before delivery: its lines carry the prepayment method, tag 1214.
    prepaid = rig.sell("fullprepayment", name="Предоплата за кофе", method="full_prepayment")
    await rig.portal.print_check(prepaid)
    await _until(lambda: prepaid.status == "Y")
    assert len(receipts(rig.box)) == 3
    assert {item["tags"]["1214"] for item in receipts(rig.box)[2]["items"]} == {1}
    await asyncio.sleep(2)  # a repeated apply would come within the retry delays
    assert (check.apply_answers, back.apply_answers, prepaid.apply_answers) == (1, 1, 1)


async def test_a_marked_check_prints_with_its_checked_code_and_its_return_returns_it(
    rig: Rig,
) -> None:
    code = "0104600439931256215Nkw9q\x1d93dGVz"  # as scanned, GS kept
    milk = {
        "name": "Молоко 3,2%",
        "price": 95,
        "sum": 95,
        "quantity": 1,
        "measure_code": 796,
        "vat": 3,
        "vat_sum": 8.64,
        "payment_object": "commodity_marking",
        "payment_method": "full_payment",
        "marking_code": code,
    }
    payments = [{"type": "cashless", "is_cash": "N", "sum": 95}]
    check = rig.portal.new_check(rig.cashbox_id, "sell", [milk], payments)
    await rig.portal.print_check(check)
    await _until(lambda: check.status == "Y")
    [printed] = receipts(rig.box)
    tags = printed["items"][0]["tags"]
    assert (tags["1212"], tags["2000"], tags["2106"]) == (33, code.encode().hex(), 0x0F)
    back = rig.portal.new_check(rig.cashbox_id, "sellreturn", [milk], payments)
    await rig.portal.print_check(back)
    await _until(lambda: back.status == "Y")
    assert receipts(rig.box)[1]["items"][0]["tags"]["2000"] == code.encode().hex()


async def test_a_check_waits_while_the_box_is_offline(rig: Rig) -> None:
    await asyncio.to_thread(rig.box.stop)
    check = rig.sell(name="Чай, пока касса выключена")
    await rig.portal.print_check(check)
    assert check.external_uuid
    await asyncio.sleep(3)
    assert await rig.portal.refresh(check) == "WAIT"
    assert check.status == "P"
    await asyncio.to_thread(rig.box.start)
    await _until(lambda: check.status == "Y")
    assert check.applied == 1
    assert [r["items"][0]["name"] for r in receipts(rig.box)] == ["Чай, пока касса выключена"]


async def test_a_hub_killed_between_the_result_and_check_apply_applies_once(rig: Rig) -> None:
    rig.portal.fail("sale.cashbox.check.apply", 503, "QUERY_LIMIT_EXCEEDED", times=10_000)
    check = rig.sell(name="Сахар")
    await rig.portal.print_check(check)
    async with asyncio.timeout(60):
        while (await rig.status(check))["STATUS"] != "DONE":
            await asyncio.sleep(0.1)
    assert check.status == "P"  # the result is in; the portal has not taken it
    await asyncio.to_thread(rig.hub.kill)
    rig.portal.faults.clear()
    await asyncio.to_thread(rig.hub.start)
    await _until(lambda: check.status == "Y", timeout_s=90)
    await asyncio.sleep(2)
    assert (check.applied, check.apply_answers) == (1, 1)
    assert len(receipts(rig.box)) == 1


async def test_a_check_deleted_on_the_portal_is_an_alert_not_a_retry_loop(rig: Rig) -> None:
    await asyncio.to_thread(rig.box.stop)
    check = rig.sell(name="Мёд")
    await rig.portal.print_check(check)
    del rig.portal.checks[check.id]  # deleted by a manager while the box was away
    await asyncio.to_thread(rig.box.start)
    await _until(lambda: rig.portal.calls["sale.cashbox.check.apply"] >= 1)
    await asyncio.sleep(3)  # retry_min_s is 0.5 here: a retry loop would have called again
    assert rig.portal.calls["sale.cashbox.check.apply"] == 1
    store = await Store.open(rig.hub.database)
    try:
        [overdue] = await store.outbox.overdue()
    finally:
        await store.close()
    assert overdue.connector == "bitrix24"
    assert overdue.last_error is not None
    assert "ERROR_CHECK_NOT_FOUND" in overdue.last_error
    assert len(receipts(rig.box)) == 1
