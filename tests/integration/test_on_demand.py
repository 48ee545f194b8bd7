"""A server built on its first client (the box's status page), on aiohttp's real server and
real sockets: nothing is built until a client connects, that first client is served, a
taken port is an error naming the config key, and stopping closes the port."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web

from gateway.config.values import Listen
from gateway.domain.errors import GatewayError
from gateway.runtime.on_demand import OnDemandServer

TIMEOUT = aiohttp.ClientTimeout(total=10)


class Page:
    """Counts how often the application was built."""

    def __init__(self) -> None:
        self.built = 0

    def build_app(self) -> web.Application:
        self.built += 1

        async def hello(_request: web.Request) -> web.Response:
            return web.Response(text="hello")

        app = web.Application()
        app.router.add_get("/", hello)
        return app


def _server(page: Page, port: int = 0) -> OnDemandServer:
    return OnDemandServer(
        lambda: page,
        Listen("127.0.0.1", port),
        key="web.listen",
        code="web_listen",
        what="The test page",
        stop_timeout_s=2.0,
    )


async def _get(port: int) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.get(f"http://127.0.0.1:{port}/") as answer,
    ):
        return answer.status, await answer.text()


async def test_nothing_is_built_until_a_client_comes_then_it_is_served() -> None:
    page = Page()
    server = _server(page)
    await server.start()
    assert server.port
    async with asyncio.TaskGroup() as tg:
        serving = tg.create_task(server.serve(), name="page")
        await asyncio.sleep(0.2)
        assert page.built == 0
        assert not server.built
        assert await _get(server.port) == (200, "hello")
        assert await _get(server.port) == (200, "hello")
        assert page.built == 1
        serving.cancel()
    await server.stop()


async def test_a_client_that_connects_before_serving_waits_and_is_answered() -> None:
    page = Page()
    server = _server(page)
    await server.start()
    assert server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: box\r\nConnection: close\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    assert page.built == 0  # connected (the kernel queued it), nothing built yet
    async with asyncio.TaskGroup() as tg:
        serving = tg.create_task(server.serve(), name="page")
        answer = await asyncio.wait_for(reader.read(), 10)
        serving.cancel()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b"hello")
    await server.stop()


async def test_a_taken_port_names_the_config_key() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = _server(Page(), taken.getsockname()[1])
        with pytest.raises(GatewayError) as caught:
            await server.start()
    assert caught.value.code == "web_listen"
    assert "web.listen" in str(caught.value)


async def test_stop_closes_the_port() -> None:
    page = Page()
    server = _server(page)
    await server.start()
    port = server.port
    assert port
    async with asyncio.TaskGroup() as tg:
        serving = tg.create_task(server.serve(), name="page")
        assert await _get(port) == (200, "hello")
        serving.cancel()
    await server.stop()
    assert server.port is None
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
