"""The Uspacy connector against the fake portal: the hub's real store (SQLite on disk), the
real write-back sender, the webhook on aiohttp's real server. The box's answers are recorded
through the store as the hub's answer handler records them; tests/hub/test_uspacy_boxes.py
runs the same flow with real boxes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.hub.config import WritebackSettings
from gateway.hub.connectors.uspacy.client import UspacyClient
from gateway.hub.connectors.uspacy.errors import UspacyApiError
from gateway.hub.connectors.uspacy.install import config_lines, install
from gateway.hub.connectors.uspacy.mapping import Rules
from gateway.hub.connectors.uspacy.settings import DEFAULT_TAXES, Portal, UspacySettings
from gateway.hub.connectors.uspacy.webhook import UspacyConnector
from gateway.hub.model import Order, OrderState, WritebackState
from gateway.hub.store import Store
from gateway.hub.writeback.sender import WritebackSender
from tests.fakes.uspacy import FakeUspacy
from tests.support.broker import free_port

pytestmark = pytest.mark.timeout(120)

SECRET = "hook-secret-0123456789"
TRIGGER, DONE = 12, 13


def tea(price: float = 45.5, **extra: Any) -> dict[str, Any]:
    return {"id": 1, "title": "Чай зелений", "price": price, "quantity": 2, "tax_rate": 20,
            "is_tax_included": 1, **extra}  # fmt: skip


@dataclass
class Rig:
    store: Store
    fake: FakeUspacy
    connector: UspacyConnector
    sender: WritebackSender
    hook_url: str
    accepted: list[Order]

    async def until(self, check: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            await asyncio.sleep(0.05)

    async def print_receipt(self, order: Order, number: str = "TEST-42") -> Order:
        """The box's result, recorded as the hub's answer handler records it."""
        body = {
            "uuid": order.job_uuid,
            "results": [
                {
                    "status": "ready",
                    "result": {
                        "fiscalParams": {
                            "fiscalCode": number,
                            "receiptUrl": f"https://check.example.org/{number}",
                        }
                    },
                }
            ],
        }
        done = await self.store.orders.record_result(
            order.box_id, order.job_uuid, body, self.connector.build_writeback
        )
        assert done is not None
        assert done.state is OrderState.DONE
        self.sender.wake.set()
        return done


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = await Store.open(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    port = free_port()
    accepted: list[Order] = []
    async with FakeUspacy(token_ttl_s=3600) as fake:
        portal = Portal(
            key="acme",
            url=fake.url,
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            webhook_secret=SECRET,
            rules=Rules(TRIGGER, "fiscal_receipt_url", DEFAULT_TAXES),
            done_stage=DONE,
        )
        connector = UspacyConnector(
            store,
            UspacySettings((portal,)),
            timeout_s=5,
            on_accepted=accepted.append,
            retry_s=0.1,
        )
        sender = WritebackSender(
            store,
            {"uspacy": connector},
            WritebackSettings(timeout_s=5, retry_min_s=0.1, retry_max_s=0.5, lease_s=5),
            owner="test",
        )
        app = web.Application()
        connector.add_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        hook_url = f"http://127.0.0.1:{port}/uspacy/acme/{SECRET}"
        try:
            async with asyncio.TaskGroup() as tg:
                work = tg.create_task(connector.run(), name="test-uspacy")
                send = tg.create_task(sender.run(), name="test-writeback")
                client = UspacyClient(fake.url, fake.client_id, fake.client_secret)
                try:
                    done = await install(
                        client, store, key="acme", box="box-1", webhook_url=hook_url,
                        trigger="Оплачено", done="чек видано", receipt_field="fiscal_receipt_url",
                        confirm_s=10,
                    )  # fmt: skip
                finally:
                    await client.close()
                assert (done.trigger_stage, done.done_stage, done.confirmed) == (
                    TRIGGER,
                    DONE,
                    True,
                )
                assert config_lines(done) == (
                    "trigger_stage: 12\ndone_stage: 13\nreceipt_field: fiscal_receipt_url"
                )
                yield Rig(store, fake, connector, sender, hook_url, accepted)
                work.cancel()
                send.cancel()
        except* asyncio.CancelledError:
            pass
        finally:
            await runner.cleanup()
            await connector.close()
            await store.close()


async def test_install_registers_the_field_the_route_and_a_confirmed_webhook(rig: Rig) -> None:
    assert [f["code"] for f in rig.fake.fields] == ["title", "fiscal_receipt_url"]
    assert [(r.connector, r.key, r.box_id) for r in await rig.store.fleet.routes("uspacy")] == [
        ("uspacy", "acme", "box-1")
    ]
    (hook,) = rig.fake.hooks.values()
    assert hook.confirmed
    assert hook.url == rig.hook_url


async def test_a_deal_in_the_stage_becomes_one_receipt_written_back_once(rig: Rig) -> None:
    rig.fake.add_deal(501, 11, [tea(), tea(120, id=2, title="Кава", quantity=1, tax_rate=7)])
    await rig.fake.move(501, TRIGGER)
    await rig.fake.move(501, 11)  # the hint comes late: the deal has moved on meanwhile...
    await rig.fake.move(501, TRIGGER)  # ...and back, and the event is repeated
    await rig.fake.move(501, TRIGGER)
    await rig.until(lambda: len(rig.accepted) == 1, "the order")
    order = rig.accepted[0]
    assert (order.connector, order.account, order.crm_key, order.box_id) == (
        "uspacy", "acme", "501", "box-1",
    )  # fmt: skip
    (task,) = order.request
    assert [(i["name"], i["amount"], i["tax"]["type"]) for i in task["items"]] == [
        ("Чай зелений", 91.0, "vat20"),
        ("Кава", 120.0, "vat7"),
    ]
    assert task["payments"] == [{"type": "electronically", "sum": 211.0}]

    await rig.print_receipt(order)
    await rig.until(lambda: rig.fake.comments_on(501) != [], "the comment")
    assert rig.fake.deals[501]["fiscal_receipt_url"] == "https://check.example.org/TEST-42"
    assert rig.fake.comments_on(501) == [
        "Фіскальний чек № TEST-42 видано. https://check.example.org/TEST-42"
    ]
    assert rig.fake.moves == [(501, DONE)]
    # The move to "receipt done" fires a webhook too, and a repeated old one comes: no second.
    await rig.fake.move(501, TRIGGER)
    await asyncio.sleep(1.0)
    assert len(rig.accepted) == 1
    assert (await rig.store.orders.by_key("uspacy", "acme", "501")).writeback is (  # type: ignore[union-attr]
        WritebackState.DELIVERED
    )


async def test_a_deal_without_products_gets_a_comment_and_no_order(rig: Rig) -> None:
    rig.fake.add_deal(502, 11, [])
    await rig.fake.move(502, TRIGGER)
    await rig.until(lambda: rig.fake.comments_on(502) != [], "the refusal")
    await rig.fake.move(502, TRIGGER)  # a repeated event: no second comment
    await asyncio.sleep(0.5)
    assert rig.fake.comments_on(502) == [
        "Чек не видано, виправте угоду і поверніть її на етап фіскалізації:\n"
        "- the deal has no products"
    ]
    assert rig.accepted == []
    assert await rig.store.orders.by_key("uspacy", "acme", "502") is None


async def test_an_unmapped_tax_gets_a_comment_naming_it_and_no_order(rig: Rig) -> None:
    rig.fake.add_deal(503, 11, [tea(tax_rate=14)])
    await rig.fake.move(503, TRIGGER)
    await rig.until(lambda: rig.fake.comments_on(503) != [], "the refusal")
    assert (
        "product line 1 (Чай зелений): tax rate 14 % is not mapped" in rig.fake.comments_on(503)[0]
    )
    assert rig.accepted == []
    # The manager fixes the tax and moves the deal back: now it prints.
    rig.fake.products[503] = [tea()]
    await rig.fake.move(503, 11)
    await rig.fake.move(503, TRIGGER)
    await rig.until(lambda: len(rig.accepted) == 1, "the order after the fix")


async def test_write_back_throttled_and_unavailable_is_retried_and_written_once(rig: Rig) -> None:
    rig.fake.add_deal(504, 11, [tea()])
    await rig.fake.move(504, TRIGGER)
    await rig.until(lambda: len(rig.accepted) == 1, "the order")
    rig.fake.fail("/crm/v1/entities/deals/504", 429, times=5, retry_after="0")
    rig.fake.fail("/comments/v1/comments", 503, times=2)
    await rig.print_receipt(rig.accepted[0], "TEST-77")
    await rig.until(lambda: rig.fake.comments_on(504) != [], "the comment", timeout_s=30)
    await asyncio.sleep(0.5)
    assert rig.fake.comments_on(504) == [
        "Фіскальний чек № TEST-77 видано. https://check.example.org/TEST-77"
    ]
    assert [p for p in rig.fake.patches if p[0] == 504] == [
        (504, {"fiscal_receipt_url": "https://check.example.org/TEST-77"})
    ]
    statuses = [s for _m, p, s in rig.fake.calls if p.startswith("/comments/")]
    assert statuses == [503, 503, 201]
    assert [s for m, p, s in rig.fake.calls if m == "PATCH"] == [429, 429, 429, 429, 200]
    (row,) = await rig.store.outbox.for_order(rig.accepted[0].id)
    assert row.attempts >= 1


async def test_an_expired_token_is_refreshed_once_and_the_call_goes_through(rig: Rig) -> None:
    rig.fake.add_deal(505, 11, [tea()])
    await rig.fake.move(505, TRIGGER)
    await rig.until(lambda: len(rig.accepted) == 1, "the first order")
    (client,) = rig.connector.clients.values()
    before = client.sign_ins + client.refreshes
    rig.fake.expire_tokens()
    rig.fake.add_deal(506, 11, [tea()])
    await rig.fake.move(506, TRIGGER)
    await rig.until(lambda: len(rig.accepted) == 2, "the order after expiry")
    assert client.sign_ins + client.refreshes == before + 1
    assert ("GET", "/crm/v1/entities/deals/506", 401) in rig.fake.calls


async def test_a_box_refusal_becomes_a_comment_and_no_link(rig: Rig) -> None:
    rig.fake.add_deal(507, 11, [tea()])
    await rig.fake.move(507, TRIGGER)
    await rig.until(lambda: len(rig.accepted) == 1, "the order")
    order = rig.accepted[0]
    body = {"error": {"code": "tax_group", "description": "no tax group for vat20"}}
    await rig.store.orders.record_result(
        order.box_id,
        order.job_uuid,
        {"uuid": order.job_uuid, "results": [{"status": "error", **body}]},
        rig.connector.build_writeback,
    )
    rig.sender.wake.set()
    await rig.until(lambda: rig.fake.comments_on(507) != [], "the comment")
    assert rig.fake.comments_on(507) == [
        "Чек не видано, виправте угоду і поверніть її на етап фіскалізації:\n"
        "- no tax group for vat20"
    ]
    assert "fiscal_receipt_url" not in rig.fake.deals[507]
    assert rig.fake.moves == []


async def test_a_confirmation_link_to_another_host_is_not_followed(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    import aiohttp

    evil = {"Type": "SubscriptionConfirmation", "SubscribeURL": "http://198.51.100.1/x"}
    async with aiohttp.ClientSession() as session, session.post(rig.hook_url, json=evil) as resp:
        assert resp.status == 200
    await rig.until(
        lambda: "confirmation link to 198.51.100.1 refused" in caplog.text, "the refusal"
    )


async def test_a_wrong_webhook_secret_is_not_found_and_queues_nothing(rig: Rig) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        bad = rig.hook_url.replace(SECRET, "x" * len(SECRET))
        async with session.post(bad, json={"data": {"entity": {"id": 1}}}) as resp:
            assert resp.status == 404
    await asyncio.sleep(0.3)
    assert rig.fake.calls[-1][1] == "/company/v1/webhooks/1"  # nothing read since install


async def test_the_jwt_is_refreshed_before_it_expires_and_403_is_not_retried() -> None:
    # A JWT living 2 s is renewed after half its life, before Uspacy would answer 401.
    async with FakeUspacy(token_ttl_s=2, permissions=("crm.deals.view",)) as fake:
        fake.add_deal(601, 12, [tea()])
        client = UspacyClient(fake.url, fake.client_id, fake.client_secret)
        try:
            assert (await client.deal(601))["kanban_stage_id"] == 12
            await asyncio.sleep(1.2)
            assert len(await client.products(601)) == 1
            assert (fake.sign_ins, fake.refreshes) == (1, 1)
            assert all(status != 401 for _m, _p, status in fake.calls)
            with pytest.raises(UspacyApiError) as caught:
                await client.comment(601, "no permission to comment")
            assert caught.value.status == 403
            assert not caught.value.transient
            assert fake.comments == []
        finally:
            await client.close()
