"""The МойСклад client, install and attach against the fake, and the config section."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.hub.config import parse_config
from gateway.hub.connectors.moysklad.client import Backoff, Client
from gateway.hub.connectors.moysklad.errors import MoyskladError, OrderRefused, RateLimited
from gateway.hub.connectors.moysklad.install import attach, install
from gateway.hub.connectors.moysklad.pos import operation_rows as pos_rows
from gateway.hub.errors import HubConfigError
from tests.fakes.moysklad import ADMIN, ORG_ID, SOLUTION_TOKEN, STORE_ID, USER_TOKEN, Fake


@pytest.fixture
async def fake() -> AsyncIterator[tuple[Fake, aiohttp.ClientSession]]:
    async with Fake() as fake, aiohttp.ClientSession() as session:
        fake.add_state("Фискализировать")
        yield fake, session


def client(fake: Fake, session: aiohttp.ClientSession, token: str, backoff: Backoff) -> Client:
    headers = {"Authorization": f"Bearer {token}"}
    return Client(lambda: session, fake.api_url, headers, key=token, backoff=backoff, timeout_s=5)


async def test_a_429_backs_the_token_off_until_retry_after(
    fake: tuple[Fake, aiohttp.ClientSession],
) -> None:
    ms, session = fake
    backoff = Backoff()
    user = client(ms, session, USER_TOKEN, backoff)  # a user token costs 4 of the 45 units
    for _ in range(11):
        await user.call("GET", "/entity/customerorder/metadata")
    with pytest.raises(RateLimited) as first:
        await user.call("GET", "/entity/customerorder/metadata")
    assert first.value.retry_after_s > 0
    with pytest.raises(RateLimited):  # refused here, not sent: МойСклад counts every 429
        await user.call("GET", "/entity/customerorder/metadata")
    assert ms.answered_429 == 1
    # Another token is not held back by this one's limit.
    await client(ms, session, SOLUTION_TOKEN, backoff).call("GET", "/entity/customerorder/metadata")
    await asyncio.sleep(backoff.wait_s(USER_TOKEN) + 0.05)
    status, _ = await user.call("GET", "/entity/customerorder/metadata")
    assert status == 200


async def test_install_finds_the_state_makes_attributes_and_one_webhook(
    fake: tuple[Fake, aiohttp.ClientSession],
) -> None:
    ms, session = fake
    solution = client(ms, session, SOLUTION_TOKEN, Backoff())
    args = {"account": "shop", "entity": "customerorder", "public_url": "https://hub.example.org"}
    with pytest.raises(MoyskladError, match="'Фискализировать'"):
        await install(solution, state_name="Оплачен", **args)
    first = await install(solution, state_name="Фискализировать", **args)
    second = await install(solution, state_name="Фискализировать", **args)  # a re-install
    assert first["attributes"] == second["attributes"]  # found again, not made twice
    assert len(ms.attributes) == 2
    (hook,) = ms.webhooks.values()  # a solution may hold one per entity type and action
    assert hook["url"] == f"https://hub.example.org/moysklad/shop/{second['webhook_secret']}"
    assert (hook["action"], hook["diffType"]) == ("UPDATE", "FIELDS")


async def test_attach_revokes_the_stores_older_token(
    fake: tuple[Fake, aiohttp.ClientSession],
) -> None:
    ms, session = fake
    old, uid = await attach(session, ms.pos_url, STORE_ID, *ADMIN)
    new, _ = await attach(session, ms.pos_url, STORE_ID, *ADMIN)
    headers = {"Lognex-Pos-Auth-Token": old, "Lognex-Pos-Auth-Cashier-Uid": uid}
    pos = Client(lambda: session, ms.pos_url, headers, key=old, backoff=Backoff(), timeout_s=5)
    with pytest.raises(MoyskladError) as revoked:
        await pos.call("GET", f"/cheque/rpc/master/poll/{ORG_ID}")
    assert revoked.value.status == 401
    headers["Lognex-Pos-Auth-Token"] = new
    pos = Client(lambda: session, ms.pos_url, headers, key=new, backoff=Backoff(), timeout_s=5)
    status, _ = await pos.call("GET", f"/cheque/rpc/master/poll/{ORG_ID}")
    assert status == 204  # an empty queue
    with pytest.raises(MoyskladError, match="wrong login or password"):
        await attach(session, ms.pos_url, STORE_ID, "admin@shop", "wrong")


def test_the_config_section_names_each_problem(tmp_path: Path) -> None:
    token = tmp_path / "t"
    token.write_text("s3cr3t-ms\n", encoding="utf-8")
    good = {
        "moysklad": {
            "accounts": [
                {
                    "name": "shop",
                    "token_file": str(token),
                    "state": "s1",
                    "webhook_secret": "x" * 32,
                    "attributes": {"fiscal": "a1"},
                },
                {"name": "pos", "mode": "pos", "token": "p", "pos_uid": "u", "organization": "o"},
            ]
        }
    }
    cfg = parse_config(good)
    shop, pos = cfg.moysklad.accounts
    assert shop.token.reveal() == "s3cr3t-ms"
    assert "s3cr3t-ms" not in repr(shop)
    assert (shop.fiscal_attr, pos.mode, pos.poll_s) == ("a1", "pos", 1.0)
    bad = {
        "moysklad": {
            "accounts": [
                {"name": "shop", "token": "t", "taxation": "envd", "poll_s": 0},
                {"name": "shop", "token": "t", "mode": "pos", "organization": "o", "x": 1},
            ]
        }
    }
    with pytest.raises(HubConfigError) as caught:
        parse_config(bad)
    issues = "\n".join(caught.value.issues)
    for expected in (
        "moysklad.accounts[0].taxation",
        "moysklad.accounts[0].poll_s",
        "moysklad.accounts[0].webhook_secret: required",
        "moysklad.accounts[0].attributes.fiscal: required",
        "moysklad.accounts[1].pos_uid: required",
        "moysklad.accounts[1].x: unknown key",
        "moysklad.accounts: a name is given twice",
    ):
        assert expected in issues


def test_a_pos_operation_carrying_part_of_its_positions_is_refused() -> None:
    with pytest.raises(OrderRefused) as caught:
        pos_rows({"meta": {"size": 3}, "rows": [{}]})
    assert caught.value.field == "positions"
    assert pos_rows({"meta": {"size": 1}, "rows": [{"quantity": 1}]}) == [{"quantity": 1}]
