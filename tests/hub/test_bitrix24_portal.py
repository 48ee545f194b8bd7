"""The Bitrix24 connector against the fake portal: install / reinstall / uninstall, PRINT_URL
and CHECK_URL on aiohttp's real server over the hub's real store (SQLite on disk)."""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.hub.config import HubConfig
from gateway.hub.connectors.bitrix24 import install as b24
from gateway.hub.connectors.bitrix24.commands import add_arguments
from gateway.hub.connectors.bitrix24.installs import CONNECTOR, Install
from gateway.hub.connectors.bitrix24.writeback import Bitrix24Connector
from gateway.hub.model import Order
from gateway.hub.store import Store
from tests.fakes.bitrix24 import FakePortal, PortalCheck
from tests.support.broker import free_port

pytestmark = pytest.mark.timeout(120)


@dataclass
class Rig:
    store: Store
    portal: FakePortal
    connector: Bitrix24Connector
    cfg: HubConfig
    accepted: list[Order]

    def args(self, *extra: str, app: bool = False) -> argparse.Namespace:
        auth = (
            ["--app", self.portal.client_id, self.portal.client_secret, self.portal.refresh_token]
            if app
            else ["--webhook", self.portal.webhook]
        )
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return parser.parse_args(
            [
                "install",
                "--portal",
                self.portal.url,
                *auth,
                "--oauth-server",
                self.portal.url,
                "--box",
                "box-a",
                "--email",
                "shop@example.org",
                "--name",
                "shop",
                "--setting",
                "TAXATION=osn",
                *extra,
            ]
        )

    async def install(self, *extra: str, app: bool = False) -> Install:
        return await b24.install(self.cfg, self.store, self.args(*extra, app=app))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = await Store.open(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    accepted: list[Order] = []
    connector = Bitrix24Connector(store, timeout_s=5, on_accepted=accepted.append)
    app = web.Application()
    connector.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    cfg = HubConfig(public_url=f"http://127.0.0.1:{port}")
    try:
        async with FakePortal() as portal:
            yield Rig(store, portal, connector, cfg, accepted)
    finally:
        await connector.close()
        await runner.cleanup()
        await store.close()


def sell_items() -> list[dict[str, Any]]:
    return [
        {
            "name": "Кофе в зёрнах, кг",
            "base_price": 1500,
            "price": 1400,
            "sum": 350,
            "quantity": 0.25,
            "measure_code": 166,
            "vat": 3,
            "vat_sum": 31.82,
            "payment_object": "commodity",
            "payment_method": "full_payment",
        },
        {
            "name": "Доставка",
            "price": 250,
            "sum": 250,
            "quantity": 1,
            "vat": 4,
            "vat_sum": 41.67,
            "payment_object": "service",
            "payment_method": "full_payment",
        },
    ]


def new_sell(rig: Rig, installed: Install) -> PortalCheck:
    assert installed.cashbox_id is not None
    return rig.portal.new_check(
        installed.cashbox_id,
        "sell",
        sell_items(),
        [{"type": "cashless", "is_cash": "N", "sum": 600}],
    )


async def test_install_registers_a_handler_and_an_active_cashbox_and_reinstall_updates(
    rig: Rig,
) -> None:
    first = await rig.install()
    [handler] = rig.portal.handlers.values()
    settings = handler["SETTINGS"]
    assert handler["SUPPORTS_FFD105"] == "Y"
    assert settings["HTTP_VERSION"] == "1.1"
    assert settings["PRINT_URL"] == f"{rig.cfg.public_url}/bitrix24/{first.secret}/print"
    assert settings["CHECK_URL"] == f"{rig.cfg.public_url}/bitrix24/{first.secret}/check"
    assert set(settings["CONFIG"]["FISCAL"]["ITEMS"]) >= {"TAXATION", "PAYMENTS_PLACE"}
    [cashbox] = rig.portal.cashboxes.values()
    assert cashbox["ACTIVE"] == "Y"
    assert cashbox["REST_CODE"] == handler["CODE"]
    assert cashbox["SETTINGS"] == {"FISCAL": {"TAXATION": "osn"}}
    assert first.vat == {"0": "none", "1": "none", "2": "vat0", "3": "vat10", "4": "vat20"}
    routes = await rig.store.fleet.routes(CONNECTOR)
    assert [(r.key, r.box_id) for r in routes] == [("shop", "box-a")]

    again = await rig.install("--vat", "2=vat0")
    assert again.secret == first.secret
    assert (again.handler_id, again.cashbox_id) == (first.handler_id, first.cashbox_id)
    assert len(rig.portal.handlers) == 1
    assert len(rig.portal.cashboxes) == 1
    assert rig.portal.calls["sale.cashbox.handler.update"] == 1
    assert rig.portal.calls["sale.cashbox.update"] == 1

    # The hub's record lost (a new database): the portal's handler and cashbox are reused.
    assert await rig.connector.installs.delete("shop")
    third = await rig.install()
    assert len(rig.portal.handlers) == 1
    assert len(rig.portal.cashboxes) == 1
    assert third.cashbox_id == first.cashbox_id
    assert third.secret != first.secret
    assert rig.portal.handlers[third.handler_code]["SETTINGS"]["PRINT_URL"].endswith(
        f"/{third.secret}/print"
    )

    assert await b24.uninstall(rig.store, "shop")
    assert rig.portal.handlers == {}
    assert rig.portal.cashboxes == {}
    assert await rig.store.fleet.routes(CONNECTOR) == []
    assert await rig.connector.installs.get("shop") is None
    assert not await b24.uninstall(rig.store, "shop")


async def test_an_app_install_refreshes_its_oauth_token_before_and_after_expiry(rig: Rig) -> None:
    installed = await rig.install(app=True)
    assert installed.auth["kind"] == "oauth"
    assert rig.portal.calls["oauth/token"] == 1
    stored = await rig.connector.installs.get("shop")
    assert stored is not None
    assert stored.auth["refresh_token"] == rig.portal.refresh_token  # the new one was kept
    rig.portal.access_tokens.clear()  # revoked early: the next call refreshes and goes on
    assert await rig.connector.call(stored, "catalog.vat.list", {})
    stored = await rig.connector.installs.get("shop")
    assert stored is not None
    assert rig.portal.calls["oauth/token"] == 2
    assert stored.auth["refresh_token"] == rig.portal.refresh_token
    # Four minutes left: renewed before the call, which then goes through at once.
    soon = int(time.time() * 1000) + 240_000
    await rig.connector.installs.update("shop", auth={**stored.auth, "expires_ms": soon})
    refused_before = rig.portal.refused
    assert await rig.connector.call(stored, "catalog.vat.list", {})
    assert rig.portal.calls["oauth/token"] == 3
    assert rig.portal.refused == refused_before  # no call was made with the old token


async def test_print_url_stores_one_order_per_check_and_check_url_waits(rig: Rig) -> None:
    installed = await rig.install()
    check = new_sell(rig, installed)
    await rig.portal.print_check(check)
    assert check.status == "P"
    assert check.external_uuid
    order = await rig.store.orders.get(check.external_uuid)
    assert order.connector == CONNECTOR
    assert order.crm_key == f"check|127.0.0.1|{check.id}"
    assert order.box_id == "box-a"
    assert order.meta["check_id"] == str(check.id)
    assert order.meta["portal"] == rig.portal.url
    [task] = order.request
    assert task["type"] == "sell"
    assert task["taxationType"] == "osn"
    assert task["items"][0]["quantity"] == 0.25
    assert [i["tax"]["type"] for i in task["items"]] == ["vat10", "vat20"]
    assert task["payments"] == [{"type": "electronically", "sum": 600}]
    assert [o.job_uuid for o in rig.accepted] == [order.job_uuid]

    # The core never repeats a call, but a person or a proxy may: the same UUID, no new order.
    await rig.portal.print_check(check)
    assert check.external_uuid == order.job_uuid
    assert len(rig.accepted) == 1
    assert len(await rig.store.orders.recent()) == 1

    assert await rig.portal.refresh(check) == "WAIT"
    assert check.status == "P"


async def test_a_marked_check_is_stored_with_each_code_for_the_box_to_check(rig: Rig) -> None:
    installed = await rig.install()
    assert installed.cashbox_id is not None
    code = "0104600439931256215Nkw9q\x1d93dGVz"
    items = sell_items()
    items.insert(
        1,
        {
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
        },
    )
    check = rig.portal.new_check(
        installed.cashbox_id, "sell", items, [{"type": "cashless", "is_cash": "N", "sum": 695}]
    )
    await rig.portal.print_check(check)
    assert check.status == "P", check.errors
    [task] = (await rig.store.orders.get(check.external_uuid)).request
    milk = task["items"][1]
    assert milk["paymentObject"] == 33
    assert base64.b64decode(milk["imcParams"]["imc"]) == code.encode()
    assert milk["imcParams"]["itemEstimatedStatus"] == "itemPieceSold"
    assert "imcParams" not in task["items"][0]


async def test_a_check_that_cannot_print_is_an_error_on_the_portal_naming_the_field(
    rig: Rig,
) -> None:
    installed = await rig.install()
    assert installed.cashbox_id is not None
    items = sell_items()
    items[0]["marking_code"] = "0104600439931256215Nkw9q"  # on a line not marked as such
    check = rig.portal.new_check(
        installed.cashbox_id, "sell", items, [{"type": "cash", "is_cash": "Y", "sum": 600}]
    )
    await rig.portal.print_check(check)
    assert check.status == "E"
    assert check.errors == [
        "Fiscal hub: items[0][payment_object]: a line with a marking code must be "
        "commodity_marking or commodity_marking_excise: set the product's marking type on "
        "the portal"
    ]
    assert await rig.store.orders.recent() == []

    # A VAT id added on the portal later is read again (at most once a minute: the table
    # was read a minute ago, as far as the hub knows).
    await rig.connector.installs.update("shop", vat_read_ms=0)
    rig.portal.vats.append({"id": "5", "name": "НДС 5%", "rate": "5.00"})
    items = sell_items()
    items[1]["vat"] = 5
    items[1]["vat_sum"] = 11.90
    check = rig.portal.new_check(
        installed.cashbox_id, "sell", items, [{"type": "cash", "is_cash": "Y", "sum": 600}]
    )
    before = rig.portal.calls["catalog.vat.list"]
    await rig.portal.print_check(check)
    assert check.status == "P", check.errors
    assert rig.portal.calls["catalog.vat.list"] == before + 1
    order = await rig.store.orders.get(str(check.external_uuid))
    assert order.request[0]["items"][1]["tax"]["type"] == "vat5"


async def test_a_wrong_secret_is_404_and_prints_nothing(rig: Rig) -> None:
    installed = await rig.install()
    check = new_sell(rig, installed)
    url = f"{rig.cfg.public_url}/bitrix24/{'x' * len(installed.secret)}/print"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data={"uuid": check.query["uuid"]}) as response:
            assert response.status == 404
        status_url = url.replace("/print", "/check")
        async with session.post(status_url, data={"uuid": "anything"}) as response:
            assert response.status == 404
    await rig.portal.print_check(check, url=url)
    assert check.status == "P"
    assert check.external_uuid is None  # stuck, as the core leaves it: nothing was accepted
    assert await rig.store.orders.recent() == []


async def test_check_url_answers_error_for_a_check_it_never_took(rig: Rig) -> None:
    installed = await rig.install()
    check = new_sell(rig, installed)
    check.external_uuid = "0b5c6a52-0000-5000-8000-000000000000"
    assert await rig.portal.refresh(check) == "ERROR"
    assert check.status == "E"
    assert "no check" in check.errors[0]


async def test_print_url_takes_a_json_body_too(rig: Rig) -> None:
    installed = await rig.install()
    check = new_sell(rig, installed)
    url = f"{rig.cfg.public_url}/bitrix24/{installed.secret}/print"
    async with aiohttp.ClientSession() as session, session.post(url, json=check.query) as response:
        assert response.status == 200
        answer = await response.json()
    order = await rig.store.orders.get(answer["UUID"])
    assert order.crm_key == check.query["uuid"]
    assert order.request[0]["items"][0]["quantity"] == 0.25
