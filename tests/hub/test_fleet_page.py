"""The fleet page over HTTP (aiohttp's real server, the hub's store on SQLite on disk):
login, CSRF, the login limit, the order filters and an order's way, headers."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.hub.alerts.model import BoxState
from gateway.hub.alerts.records import FleetRecords, IncidentRecords
from gateway.hub.alerts.tables import ensure_tables
from gateway.hub.fleet_page.app import build_app
from gateway.hub.fleet_page.settings import PageSettings
from gateway.hub.fleet_page.state import PageState
from gateway.hub.fleet_page.texts import TEXTS
from gateway.hub.fleet_page.view import box_row
from gateway.hub.model import Route
from gateway.hub.store import Store
from gateway.web.passwords import ScryptHash
from tests.hub.fleet_support import PASSWORD, PASSWORD_HASH, open_store, printed_order
from tests.support.broker import free_port


@dataclass
class Site:
    url: str
    store: Store
    http: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.get(self.url + path, allow_redirects=False) as resp:
            return resp.status, await resp.text(), resp

    async def post(
        self, path: str, form: dict[str, str]
    ) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.post(self.url + path, data=form, allow_redirects=False) as resp:
            return resp.status, await resp.text(), resp

    async def login_token(self) -> str:
        _status, body, _resp = await self.get("/login")
        found = re.search(r'name="login_token" value="([^"]+)"', body)
        assert found is not None
        return found[1]

    async def login(self, password: str = PASSWORD) -> int:
        token = await self.login_token()
        status, _body, _resp = await self.post(
            "/login", {"login_token": token, "password": password, "next": "/orders"}
        )
        return status


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    store = await open_store(tmp_path)
    await ensure_tables(store.db)
    port = free_port()
    state = PageState(
        PageSettings(listen=("127.0.0.1", port), password_hash=PASSWORD_HASH, language="en"),
        store,
        FleetRecords(store.db),
        IncidentRecords(store.db),
        ScryptHash.parse(PASSWORD_HASH),
    )
    runner = web.AppRunner(build_app(state), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    # unsafe: keep cookies for an IP address host, as a browser does.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        try:
            yield Site(f"http://127.0.0.1:{port}", store, http)
        finally:
            await runner.cleanup()
            await store.close()


async def test_every_page_needs_a_login_and_the_login_needs_its_form_token(site: Site) -> None:
    for path in ("/", "/orders", "/alerts", "/orders/nothing"):
        status, _body, resp = await site.get(path)
        assert status == 303
        assert resp.headers["Location"] == f"/login?next={path}"
    status, _body, _resp = await site.post("/login", {"password": PASSWORD})
    assert status == 403  # no login form token: a forged cross-site login
    assert await site.login("not the password") == 401
    assert await site.login() == 303
    status, body, resp = await site.get("/")
    assert status == 200
    assert "fleet-empty" in body
    # A box routed but never heard from is listed, its state unknown.
    await site.store.fleet.set_route(Route("atol_online", "shop-9", "shop-0099"))
    _status, body, _resp = await site.get("/")
    assert 'id="box-shop-0099" class="state-unknown"' in body
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"


async def test_wrong_passwords_are_limited(site: Site) -> None:
    statuses = [await site.login(f"wrong-{n}") for n in range(6)]
    assert statuses == [401] * 5 + [429]
    token = await site.login_token()
    status, body, resp = await site.post("/login", {"login_token": token, "password": PASSWORD})
    assert status == 429  # even the right one waits out the window
    assert int(resp.headers["Retry-After"]) > 0
    assert "Too many wrong passwords" in body


async def test_logout_needs_the_session_csrf_token(site: Site) -> None:
    assert await site.login() == 303
    status, _body, _resp = await site.post("/logout", {"csrf": "forged"})
    assert status == 403
    _status, body, _resp = await site.get("/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', body)
    assert csrf is not None
    status, _body, resp = await site.post("/logout", {"csrf": csrf[1]})
    assert (status, resp.headers["Location"]) == (303, "/login")
    status, _body, _resp = await site.get("/")
    assert status == 303


async def test_orders_filter_and_an_order_shows_its_way(site: Site) -> None:
    one = await printed_order(site.store, "shop-0001", "deal-1", "https://crm.example/cb")
    await printed_order(site.store, "shop-0002", "deal-2", "https://crm.example/cb")
    assert await site.login() == 303

    _status, body, _resp = await site.get("/orders")
    assert "deal-1" in body
    assert "deal-2" in body
    _status, body, _resp = await site.get("/orders?box=shop-0002")
    assert "deal-2" in body
    assert "deal-1" not in body
    _status, body, _resp = await site.get("/orders?state=failed")
    assert "orders-empty" in body
    _status, body, _resp = await site.get("/orders?connector=atol_online&state=done")
    assert "deal-1" in body
    assert "deal-2" in body
    today = dt.datetime.now(dt.UTC).date()
    _status, body, _resp = await site.get(f"/orders?date={today.isoformat()}")
    assert "deal-1" in body
    _status, body, _resp = await site.get(f"/orders?date={today - dt.timedelta(days=1)}")
    assert "orders-empty" in body
    status, body, _resp = await site.get("/orders?date=not-a-date&state=bogus")
    assert status == 200
    assert "deal-1" in body

    status, body, _resp = await site.get(f"/orders/{one.job_uuid}")
    assert status == 200
    assert "atol_online / shop / deal-1" in body
    assert one.job_uuid in body
    assert "1234567890" in body  # the fiscal sign
    assert "https://crm.example/cb" in body  # the write-back row
    status, _body, _resp = await site.get("/orders/no-such-uuid")
    assert status == 404


async def test_language_choice_stays_on_this_site(site: Site) -> None:
    assert await site.login() == 303
    status, _body, resp = await site.get("/lang/uk?next=//evil.example/")
    assert (status, resp.headers["Location"]) == (303, "/")
    status, _body, resp = await site.get("/lang/uk?next=/alerts")
    assert (status, resp.headers["Location"]) == (303, "/alerts")
    _status, body, _resp = await site.get("/alerts")
    assert "Сповіщень немає." in body


def test_every_text_has_three_languages_with_the_same_placeholders() -> None:
    for key, row in TEXTS.items():
        assert len(row) == 3, key
        assert all(row), key
        fields = [sorted(re.findall(r"{(\w+)}", text)) for text in row]
        assert fields[0] == fields[1] == fields[2], key


def test_a_box_online_without_telemetry_for_long_is_shown_silent() -> None:
    state = BoxState("shop-1", True, 0, {"state": "online"}, {}, 1_000, None, None)
    assert box_row(state, None, 1_000 + 179_000, 180_000).state == "online"
    assert box_row(state, None, 1_000 + 181_000, 180_000).state == "silent"
    gone = BoxState("shop-1", False, 5_000, {"state": "offline"}, {}, 1_000, None, None)
    row = box_row(gone, None, 10**9, 180_000)
    assert row.state == "offline"
    assert row.since == "1970-01-01 00:00:05 UTC"
