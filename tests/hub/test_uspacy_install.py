"""Marketplace install: the portal's tokens come to the hub's install callback, are kept in
the store, refreshed before expiry, and used instead of app_sign_in, by any hub process.
Real parts: the hub store (SQLite on disk), the callback and webhook on aiohttp's real
server, the fake Uspacy calling them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from gateway.hub.connectors.uspacy.mapping import Rules
from gateway.hub.connectors.uspacy.marketplace import INSTALLS, expiry_ms, verified_domain
from gateway.hub.connectors.uspacy.settings import (
    DEFAULT_TAXES,
    MarketplaceApp,
    Portal,
    UspacySettings,
    parse_uspacy,
)
from gateway.hub.connectors.uspacy.webhook import UspacyConnector
from gateway.hub.model import Order, Route
from gateway.hub.store import Store
from tests.fakes.uspacy import FakeUspacy
from tests.support.broker import free_port

pytestmark = pytest.mark.timeout(120)

HOOK = "hook-secret-0123456789"
INSTALL = "install-secret-abcdefghijklmnop"
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
    db: Path, fake: FakeUspacy, port: int
) -> AsyncIterator[tuple[Store, UspacyConnector, list[Order]]]:
    """One hub process's Uspacy part, the portal known only by its marketplace install."""
    store = await Store.open(f"sqlite:///{db}")
    portal = Portal(
        key="acme",
        url=fake.url,
        client_id="",
        client_secret="",
        webhook_secret=HOOK,
        rules=Rules(TRIGGER, "fiscal_receipt_url", DEFAULT_TAXES),
    )
    app_settings = MarketplaceApp(fake.app_id, fake.app_secret, INSTALL)
    accepted: list[Order] = []
    connector = UspacyConnector(
        store,
        UspacySettings((portal,), app_settings),
        timeout_s=5,
        on_accepted=accepted.append,
        poll_s=0.1,
        sweep_s=0.2,
        refresh_before_s=1.5,
    )
    await store.fleet.set_route(Route("uspacy", "acme", "box-1"))
    app = web.Application()
    connector.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    worker = asyncio.create_task(connector.run(), name="test-uspacy-install")
    try:
        yield store, connector, accepted
    finally:
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
        await runner.cleanup()
        await connector.close()
        await store.close()


async def test_installed_tokens_are_stored_refreshed_and_used_by_a_second_hub(
    tmp_path: Path,
) -> None:
    db, port = tmp_path / "hub.sqlite3", free_port()
    callback = f"http://127.0.0.1:{port}/uspacy/app/{INSTALL}"
    async with FakeUspacy(token_ttl_s=3) as fake:
        fake.subscribe(f"http://127.0.0.1:{port}/uspacy/acme/{HOOK}")
        fake.add_deal(801, 11, [TEA])
        fake.add_deal(802, 11, [TEA])
        async with hub(db, fake, port) as (store, _connector, accepted):
            # A wrong install secret, or a JWT not signed by the app's secret: nothing kept.
            assert await fake.install_app(callback.replace(INSTALL, "x" * len(INSTALL))) == 404
            real, fake.app_secret = fake.app_secret, "not-the-app-secret"
            assert await fake.install_app(callback) == 404
            fake.app_secret = real
            assert await store.records.all(INSTALLS) == []

            assert await fake.install_app(callback) == 200
            first = await store.records.get(INSTALLS, fake.domain)
            assert first is not None
            assert first.value["expires_ms"] > time.time() * 1000
            await fake.move(801, TRIGGER)
            await until(lambda: len(accepted) == 1, "the order with the installed token")
            # The token lives 3 s: it is refreshed before expiry, used or not.
            await until(lambda: fake.refreshes >= 1, "the refresh", timeout_s=10)
            refreshed = await store.records.get(INSTALLS, fake.domain)
            assert refreshed is not None
            assert refreshed.version > first.version
            assert refreshed.value["token"] != first.value["token"]
        # A second hub process reads the stored tokens (the first one's are stale by now).
        await asyncio.sleep(1.0)
        async with hub(db, fake, port) as (store, _connector, accepted):
            await fake.move(802, TRIGGER)
            await until(lambda: len(accepted) == 1, "the order from the second hub")
            assert accepted[0].crm_key == "802"
            assert fake.sign_ins == 0  # never app_sign_in: only the install's tokens
            assert not [c for c in fake.calls if c[1].startswith("/crm/") and c[2] == 401]
            assert await fake.uninstall_app(callback) == 200
            assert await store.records.get(INSTALLS, fake.domain) is None


def test_the_install_jwt_and_expiry_forms() -> None:
    assert verified_domain("a.b.c", "secret") is None
    assert verified_domain("not a jwt", "secret") is None
    assert expiry_ms(1_900_000_000) == 1_900_000_000_000  # epoch seconds
    assert expiry_ms("1900000000000") == 1_900_000_000_000  # epoch ms, as text
    assert expiry_ms("2030-03-17T17:46:40+00:00") == 1_900_000_000_000  # ISO 8601
    assert abs(expiry_ms(None) - (time.time() + 86400) * 1000) < 5000  # missing: a day


def test_a_portal_without_an_external_connector_needs_the_app_section() -> None:
    problems: list[tuple[str, str]] = []
    portal = {"key": "acme", "url": "https://acme.uspacy.ua", "webhook_secret": HOOK,
              "receipt_field": "fiscal_receipt_url"}  # fmt: skip
    app = {"client_id": "market-1", "client_secret": "s" * 32, "install_secret": INSTALL}
    settings = parse_uspacy({"app": app, "portals": [portal]}, lambda *p: problems.append(p))
    assert problems == []
    assert settings.app is not None
    assert settings.portals[0].marketplace
    assert settings.portals[0].domain == "acme.uspacy.ua"
    parse_uspacy({"portals": [portal]}, lambda *p: problems.append(p))
    assert ("uspacy.portals[0].client_id", "required: a non-empty string") in problems
