"""The status page under hostile input, on the real server: parallel password guesses,
redirects off the site, and malformed cookies, forms and query values."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yarl

from gateway.web.login_limit import LOGIN_FAILURES_PER_PEER, is_loopback
from tests.integration.test_web_box import PASSWORD, hidden_fields, login, new_client, web_box
from tests.integration.test_web_units import HOSTILE_NEXT

GUESSES = 120


def troubles(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every ERROR record or traceback logged during the test."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@contextlib.asynccontextmanager
async def parallel_client() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser-like client without a connection limit, so every request is in flight."""
    connector = aiohttp.TCPConnector(limit=0)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as client:
        yield client


async def guess_in_parallel(client: aiohttp.ClientSession, url: str, count: int) -> list[int]:
    """`count` wrong passwords sent at once with a valid login form token: the statuses."""
    async with client.get(f"{url}/login") as resp:
        token = hidden_fields(await resp.text())["login_token"]

    async def guess(n: int) -> int:
        data = {"login_token": token, "next": "/", "password": f"guess-{n:04d}"}
        async with client.post(f"{url}/login", data=data, allow_redirects=False) as resp:
            await resp.read()
            if resp.status == 429:
                assert int(resp.headers["Retry-After"]) > 0
            return resp.status

    return list(await asyncio.gather(*(guess(n) for n in range(count))))


async def metric(client: aiohttp.ClientSession, url: str, name: str) -> float:
    async with client.get(f"{url}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith(f"fiscal_gateway_{name} "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


async def test_parallel_guesses_reach_the_password_check_five_times(tmp_path: Path) -> None:
    async with web_box(tmp_path, start_worker=False) as box, parallel_client() as client:
        statuses = await guess_in_parallel(client, box.url, GUESSES)
        # Every wrong password that reached scrypt answered 401; the rest were refused first.
        assert statuses.count(401) == LOGIN_FAILURES_PER_PEER
        assert statuses.count(429) == GUESSES - LOGIN_FAILURES_PER_PEER
        assert await metric(client, box.url, "web_login_failures_total") == 5
        assert await metric(client, box.url, "web_login_refused_total") == GUESSES - 5
        # The right password from this address waits for the window too.
        assert (await login(client, box.url)).status == 429
        box.clock.now += 301
        assert (await login(client, box.url)).status == 303


def lan_address() -> str | None:
    """An IPv4 address of this machine that is not loopback, or None."""
    for target in ("192.0.2.1", "10.255.255.255", "198.51.100.1"):
        with (
            contextlib.suppress(OSError),
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe,
        ):
            probe.connect((target, 9))  # UDP: nothing is sent, the kernel picks the source
            address = str(probe.getsockname()[0])
            if not is_loopback(address) and address != "0.0.0.0":
                return address
    return None


async def test_guesses_from_the_lan_do_not_lock_out_the_box_itself(tmp_path: Path) -> None:
    lan = lan_address()
    if lan is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    # One LAN address is all a test machine has: the shared limit is set to the per-address
    # one so that address alone fills it.
    async with (
        web_box(tmp_path, start_worker=False, listen_host="0.0.0.0", login_limits=(5, 5)) as box,
        parallel_client() as from_lan,
        new_client() as at_box,
    ):
        lan_url = f"http://{lan}:{box.page.port}"
        statuses = await guess_in_parallel(from_lan, lan_url, GUESSES)
        assert statuses.count(401) == 5
        assert (await login(from_lan, lan_url)).status == 429  # the LAN waits…
        assert (await login(at_box, box.url)).status == 303  # …the box itself does not
        box.clock.now += 301
        # Wrong passwords on the box's own loopback lock out only the loopback.
        for _ in range(5):
            assert (await login(at_box, box.url, "wrong at the box")).status == 401
        assert (await login(at_box, box.url)).status == 429
        assert (await login(from_lan, lan_url)).status == 303


async def test_language_link_and_login_redirect_only_to_this_site(tmp_path: Path) -> None:
    async with web_box(tmp_path, start_worker=False) as box, new_client() as client:
        # The finding as reported: a tab after the first slash.
        url = yarl.URL(f"{box.url}/lang/en?next=/%09/evil.example/", encoded=True)
        async with client.get(url, allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "/"
        for raw in HOSTILE_NEXT:
            url = yarl.URL(
                f"{box.url}/lang/en?next={urllib.parse.quote(raw, safe='')}", encoded=True
            )
            async with client.get(url, allow_redirects=False) as resp:
                assert (resp.status, resp.headers["Location"]) == (303, "/"), raw
            url = yarl.URL(f"{box.url}/login?next={urllib.parse.quote(raw, safe='')}", encoded=True)
            async with client.get(url) as resp:
                assert hidden_fields(await resp.text())["next"] == "/", raw
        for raw in HOSTILE_NEXT:
            async with client.get(f"{box.url}/login") as resp:
                token = hidden_fields(await resp.text())["login_token"]
            data = {"login_token": token, "next": raw, "password": PASSWORD}
            async with client.post(f"{box.url}/login", data=data, allow_redirects=False) as resp:
                assert (resp.status, resp.headers["Location"]) == (303, "/"), raw


async def test_login_comes_back_to_the_page_asked_for(tmp_path: Path) -> None:
    async with web_box(tmp_path, start_worker=False) as box, new_client() as client:
        async with client.get(f"{box.url}/jobs?state=done&before=7", allow_redirects=False) as r:
            assert r.headers["Location"] == "/login?next=/jobs%3Fstate%3Ddone%26before%3D7"
        async with client.get(f"{box.url}{r.headers['Location']}") as resp:
            fields = hidden_fields(await resp.text())
        assert fields["next"] == "/jobs?state=done&amp;before=7"  # as the HTML carries it
        data = {"login_token": fields["login_token"], "next": "/jobs?state=done&before=7"}
        data["password"] = PASSWORD
        async with client.post(f"{box.url}/login", data=data, allow_redirects=False) as resp:
            assert resp.headers["Location"] == "/jobs?state=done&before=7"


async def raw_status(port: int, request: bytes) -> int:
    """Send `request` as bytes on a fresh connection; the answer's status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        async with asyncio.timeout(10):
            await writer.drain()
            status_line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return int(status_line.split()[1])


def raw_login(cookie: bytes, body: bytes, content_type: bytes) -> bytes:
    return (
        b"POST /login HTTP/1.1\r\nHost: box\r\nConnection: close\r\n"
        b"Cookie: " + cookie + b"\r\n"
        b"Content-Type: " + content_type + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


FORM = b"application/x-www-form-urlencoded"
MALFORMED_LOGINS = [
    # (why, cookie, body, content type)
    ("non-UTF-8 token cookie", b"fgw_login=\xff\xfe", b"login_token=abc&password=x", FORM),
    ("non-UTF-8 cookie tail", b"fgw_login=abcdefabcdefabcdef\xff", b"login_token=a", FORM),
    ("unbalanced quote", b'fgw_login="abc', b"login_token=abc&password=x", FORM),
    ("non-UTF-8 session", b"fgw_session=\xc3\x28; fgw_login=abc", b"password=x", FORM),
    ("non-UTF-8 language", b"fgw_lang=\xff", b"login_token=&password=x", FORM),
    ("huge cookie", b"fgw_login=" + b"A" * 6000, b"login_token=" + b"B" * 6000, FORM),
    (
        "JSON body",
        b"fgw_login=abc",
        b'{"login_token": "abc", "password": "x"}',
        b"application/json",
    ),
    ("text body", b"fgw_login=abc", b"login_token=abc&password=x", b"text/plain"),
    ("missing fields", b"fgw_login=abc", b"", FORM),
    ("raw non-UTF-8 body", b"fgw_login=abc", b"login_token=abc&password=\xff\xfe", FORM),
    ("encoded non-UTF-8 body", b"fgw_login=abc", b"login_token=%ff%fe&password=x", FORM),
    ("unknown charset", b"fgw_login=abc", b"login_token=abc", FORM + b"; charset=x-bogus"),
    (
        "multipart, wrong boundary",
        b"fgw_login=abc",
        b"garbage",
        b"multipart/form-data; boundary=zz",
    ),
    ("multipart, no boundary", b"fgw_login=abc", b"garbage", b"multipart/form-data"),
]


async def test_malformed_login_answers_4xx_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with web_box(tmp_path, start_worker=False) as box, new_client() as client:
        port = box.page.port
        assert port is not None
        for why, cookie, body, content_type in MALFORMED_LOGINS:
            status = await raw_status(port, raw_login(cookie, body, content_type))
            assert 400 <= status < 500, why
        # A file where the password belongs: a form, but no password in it.
        async with client.get(f"{box.url}/login") as resp:
            token = hidden_fields(await resp.text())["login_token"]
        form = aiohttp.FormData()
        form.add_field("login_token", token)
        form.add_field("password", b"\xff\xfe", filename="p.bin")
        async with client.post(f"{box.url}/login", data=form, allow_redirects=False) as resp:
            assert resp.status == 401
        assert await metric(client, box.url, "web_login_failures_total") == 1
    assert troubles(caplog) == []
    refused = [r.getMessage() for r in caplog.records if "POST /login" in r.getMessage()]
    assert any("form: expected an HTML form" in m for m in refused)
    assert any("form: cannot be read" in m for m in refused)


BAD_QUERIES = [
    ("before=99999999999999999999", "before"),
    ("before=9223372036854775808", "before"),
    ("before=abc", "before"),
    ("before=-1", "before"),
    ("before=%ff", "before"),
    ("before=1%00", "before"),
    ("state=zzz", "state"),
    ("state=done&before=1e9", "before"),
]


async def test_bad_list_parameters_answer_400_naming_the_field(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with web_box(tmp_path, start_worker=False) as box, new_client() as client:
        for query, name in BAD_QUERIES:  # without a session
            url = yarl.URL(f"{box.url}/jobs?{query}", encoded=True)
            async with client.get(url, allow_redirects=False) as resp:
                assert resp.status == 400, query
                assert f"“{name}”" in await resp.text(), query
        await login(client, box.url)
        for query, name in BAD_QUERIES:  # and with one
            url = yarl.URL(f"{box.url}/jobs?{query}", encoded=True)
            async with client.get(url, allow_redirects=False) as resp:
                assert resp.status == 400, query
                assert f"“{name}”" in await resp.text(), query
        async with client.get(f"{box.url}/jobs?state=done&before=9223372036854775807") as resp:
            assert resp.status == 200
    assert troubles(caplog) == []


async def test_a_forged_login_token_cookie_is_replaced_not_echoed(tmp_path: Path) -> None:
    async with web_box(tmp_path, start_worker=False) as box:
        for forged in ("short", "x" * 65, "abc.def/ghi+jkl=mnopq"):
            async with (
                aiohttp.ClientSession(cookies={"fgw_login": forged}) as client,
                client.get(f"{box.url}/login") as resp,
            ):
                token = hidden_fields(await resp.text())["login_token"]
                assert token != forged
                assert resp.cookies["fgw_login"].value == token
