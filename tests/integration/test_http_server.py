"""The box's small HTTP/1.1 server on real sockets: raw bytes in, raw bytes out, so each
rule of the protocol it keeps is seen on the wire (RFC 9112 message framing, RFC 9110
`Expect: 100-continue` and HEAD)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator

import pytest

from gateway.config.values import Listen
from gateway.runtime import http_server
from gateway.runtime.http_server import HttpServer, Request, Response

MAX_BODY = 1000


def _refusal(status: int, text: str) -> Response:
    return Response(status, json.dumps({"error": text}).encode())


class Echo:
    """Answers each request with what it saw; `delay_s` makes it slow, `fail` makes it raise."""

    def __init__(self) -> None:
        self.delay_s = 0.0
        self.fail = False
        self.seen: list[Request] = []

    async def __call__(self, request: Request) -> Response:
        self.seen.append(request)
        if self.fail:
            raise KeyError("secret detail")
        await asyncio.sleep(self.delay_s)
        body = {"method": request.method, "path": request.path, "query": dict(request.query)}
        body["body"] = request.body.decode()
        return Response(200, json.dumps(body).encode(), headers={"X-Seen": str(len(self.seen))})


@pytest.fixture
async def echo() -> Echo:
    return Echo()


@pytest.fixture
async def server(echo: Echo) -> AsyncIterator[tuple[HttpServer, int]]:
    srv = HttpServer(echo, _refusal, max_body_bytes=MAX_BODY, body_timeout_s=0.5, name="test")
    port = await srv.start(Listen("127.0.0.1", 0), key="http.listen", code="http_listen")
    yield srv, port
    await srv.stop(2.0)


async def _exchange(port: int, data: bytes, *, read_until_close: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read() if read_until_close else await reader.read(65536)
    finally:
        writer.close()


def _answers(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split raw bytes into (status, headers, body) by Content-Length."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        out.append((int(lines[0].split(" ")[1]), headers, rest[:length]))
        raw = rest[length:]
    return out


async def test_pipelined_requests_are_answered_in_order_on_one_connection(
    server: tuple[HttpServer, int],
) -> None:
    _, port = server
    raw = await _exchange(
        port,
        b"GET /a?x=1&x=2&y= HTTP/1.1\r\nHost: box\r\n\r\n"
        b"POST /b%20c HTTP/1.1\r\nHost: box\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /last HTTP/1.1\r\nHost: box\r\nConnection: close\r\n\r\n",
    )
    answers = _answers(raw)
    assert [status for status, _, _ in answers] == [200, 200, 200]
    bodies = [json.loads(body) for _, _, body in answers]
    assert bodies[0] == {"method": "GET", "path": "/a", "query": {"x": "1", "y": ""}, "body": ""}
    assert bodies[1] == {"method": "POST", "path": "/b c", "query": {}, "body": "hello"}
    assert [headers["x-seen"] for _, headers, _ in answers] == ["1", "2", "3"]


async def test_an_absolute_form_target_counts_by_its_path_and_query(
    server: tuple[HttpServer, int],
) -> None:
    _, port = server
    raw = await _exchange(
        port,
        b"GET http://box:8080/api/v2/requests?limit=5 HTTP/1.1\r\nHost: box\r\n"
        b"Connection: close\r\n\r\n",
    )
    [(status, _, body)] = _answers(raw)
    assert status == 200
    assert json.loads(body)["path"] == "/api/v2/requests"
    assert json.loads(body)["query"] == {"limit": "5"}


async def test_head_is_answered_as_get_without_the_body(server: tuple[HttpServer, int]) -> None:
    _, port = server
    raw = await _exchange(port, b"HEAD /x HTTP/1.1\r\nHost: box\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"content-length: " in head
    assert body == b""


async def test_expect_100_continue_gets_100_then_the_answer(
    server: tuple[HttpServer, int],
) -> None:
    _, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /up HTTP/1.1\r\nHost: box\r\nContent-Length: 2\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        async with asyncio.timeout(10):
            interim = await reader.readuntil(b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100 ")
        writer.write(b"ok")
        async with asyncio.timeout(10):
            rest = await reader.read()
    finally:
        writer.close()
    [(status, _, body)] = _answers(rest)
    assert (status, json.loads(body)["body"]) == (200, "ok")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /big HTTP/1.1\r\nHost: box\r\nContent-Length: 1001\r\n\r\n" + b"x" * 1001,
        b"POST /big HTTP/1.1\r\nHost: box\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"1f4\r\n"
        + b"x" * 500
        + b"\r\n"
        + b"1f4\r\n"
        + b"x" * 500
        + b"\r\n"
        + b"1f4\r\n"
        + b"x" * 500
        + b"\r\n0\r\n\r\n",
    ],
    ids=["content-length", "chunked"],
)
async def test_a_body_over_the_limit_is_413_and_the_handler_never_sees_it(
    server: tuple[HttpServer, int], echo: Echo, request_bytes: bytes
) -> None:
    _, port = server
    [(status, headers, body)] = _answers(await _exchange(port, request_bytes))
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body) == {"error": f"request body is larger than {MAX_BODY} bytes"}
    assert echo.seen == []


async def test_a_body_that_stalls_is_408(server: tuple[HttpServer, int], echo: Echo) -> None:
    _, port = server
    raw = await _exchange(port, b"POST /slow HTTP/1.1\r\nHost: box\r\nContent-Length: 10\r\n\r\nab")
    [(status, _, body)] = _answers(raw)
    assert status == 408
    assert "did not arrive within 0.5 s" in json.loads(body)["error"]
    assert echo.seen == []


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: box\r\nX: a\x00b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: box\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: box\r\n\r\n", 431),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    ],
    ids=["nul-in-header", "two-lengths", "head-too-large", "tls-hello"],
)
async def test_a_malformed_message_is_refused_with_one_warning_line(
    server: tuple[HttpServer, int],
    echo: Echo,
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
    status: int,
) -> None:
    _, port = server
    caplog.set_level(logging.DEBUG, logger="gateway.runtime.http_server")
    [(answered, _, _)] = _answers(await _exchange(port, request_bytes))
    assert answered == status
    assert echo.seen == []
    lines = [r for r in caplog.records if r.name == "gateway.runtime.http_server"]
    assert [r.levelno for r in lines] == [logging.WARNING]
    assert not any(ord(c) < 0x20 for c in lines[0].getMessage())


async def test_a_handler_that_raises_is_500_and_the_connection_goes_on(
    server: tuple[HttpServer, int], echo: Echo
) -> None:
    _, port = server
    echo.fail = True
    raw = await _exchange(
        port,
        b"GET /boom HTTP/1.1\r\nHost: box\r\n\r\n"
        b"GET /boom HTTP/1.1\r\nHost: box\r\nConnection: close\r\n\r\n",
    )
    answers = _answers(raw)
    assert [status for status, _, _ in answers] == [500, 500]
    assert b"secret detail" not in raw


async def test_stop_lets_a_request_in_flight_finish_and_closes_idle_connections(
    server: tuple[HttpServer, int], echo: Echo
) -> None:
    srv, port = server
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    echo.delay_s = 0.3
    busy = asyncio.create_task(
        _exchange(port, b"GET /slow HTTP/1.1\r\nHost: box\r\n\r\n"), name="busy-client"
    )
    while not echo.seen:
        await asyncio.sleep(0.01)
    await srv.stop(5.0)
    [(status, headers, _)] = _answers(await busy)
    assert (status, headers["connection"]) == (200, "close")
    async with asyncio.timeout(5):
        assert await idle_reader.read() == b""
    idle_writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_a_client_that_drops_mid_body_costs_one_warning_line(
    server: tuple[HttpServer, int], echo: Echo, caplog: pytest.LogCaptureFixture
) -> None:
    _, port = server
    caplog.set_level(logging.DEBUG, logger="gateway.runtime.http_server")
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b'POST /x HTTP/1.1\r\nHost: box\r\nContent-Length: 50\r\n\r\n{"uuid":')
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.3)
    lines = [r for r in caplog.records if r.name == "gateway.runtime.http_server"]
    assert [r.levelno for r in lines] == [logging.WARNING]
    assert echo.seen == []


async def test_a_client_that_never_reads_its_answer_is_dropped(
    echo: Echo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_server, "WRITE_TIMEOUT_S", 0.3)
    big = Response(200, b"x" * (8 << 20))

    async def huge(_request: Request) -> Response:
        return big

    srv = HttpServer(huge, _refusal, max_body_bytes=MAX_BODY, body_timeout_s=1.0, name="test")
    port = await srv.start(Listen("127.0.0.1", 0), key="http.listen", code="http_listen")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"GET /big HTTP/1.1\r\nHost: box\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(3.0)  # the write times out after 0.3 s; the socket is dropped
    received = 0
    with contextlib.suppress(ConnectionError):
        async with asyncio.timeout(10):
            while data := await reader.read(1 << 16):
                received += len(data)
    writer.close()
    assert received < len(big.body)  # cut off, not delivered late
    await srv.stop(1.0)


async def test_a_refused_head_request_still_gets_its_answer(
    server: tuple[HttpServer, int],
) -> None:
    _, port = server
    raw = await _exchange(port, b"HEAD /h HTTP/1.1\r\nHost: box\r\nContent-Length: 5000\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 413 ")


async def test_header_values_are_utf8_and_a_fragment_is_not_the_query(
    server: tuple[HttpServer, int], echo: Echo
) -> None:
    _, port = server
    await _exchange(
        port,
        b"GET /q?limit=5#top HTTP/1.1\r\nHost: box\r\nAuthorization: Bearer "
        + "пароль".encode()
        + b"\r\nX-Raw: \xff\r\nConnection: close\r\n\r\n",
    )
    [request] = echo.seen
    assert request.query == {"limit": "5"}
    assert request.headers["authorization"] == "Bearer пароль"
    assert request.headers["x-raw"] == "\udcff"  # not UTF-8: kept apart, as aiohttp did
