"""A server whose aiohttp application is built when its first client connects.

The status page is for a technician who comes now and then; its templates, routes and their
imports cost start-up time and memory that a box otherwise never uses. The port is bound at
start, so a taken port still stops the box with the config key named; a client that connects
before the application exists waits in the listen backlog (the kernel completes its TCP
handshake) and is served as soon as it is built.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from gateway.config.values import Listen
from gateway.runtime.sockets import START_TIMEOUT_S, bind

if TYPE_CHECKING:
    from aiohttp import web

_LOGGER = logging.getLogger(__name__)


class AppSource(Protocol):
    """What builds the application (e.g. the status page)."""

    def build_app(self) -> web.Application: ...


class OnDemandServer:
    """`start` binds; `serve` (a task) builds the application once a client connects, then
    serves it; `stop` closes the port and the connections."""

    def __init__(
        self,
        build: Callable[[], AppSource],
        address: Listen,
        *,
        key: str,
        code: str,
        what: str,
        stop_timeout_s: float,
    ) -> None:
        self._build = build
        self._address = address
        self._key = key
        self._code = code
        self._what = what
        self._stop_timeout_s = stop_timeout_s
        self._server: asyncio.Server | None = None
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def built(self) -> bool:
        """True once a client came and the application exists."""
        return self._runner is not None

    async def start(self) -> None:
        """Bind the address without accepting yet; the port is known when this returns."""
        if self._server is not None:
            raise RuntimeError(f"{self._what} is started already")
        self._server = await bind(self._protocol, self._address, key=self._key, code=self._code)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def serve(self) -> None:
        """Wait for the first connection, build the application, serve it until cancelled."""
        server = self._server
        if server is None:
            raise RuntimeError(f"{self._what} is not started")
        if self._runner is None:
            await _first_connection(server.sockets)
            from gateway.runtime import serving  # aiohttp: loaded with the application

            runner = serving.runner(self._build().build_app(), self._stop_timeout_s)
            async with asyncio.timeout(START_TIMEOUT_S):
                await runner.setup()
            self._runner = runner
            await server.start_serving()
            _LOGGER.info("%s built for its first client", self._what)
        await asyncio.Event().wait()  # serving happens in the loop; this task only owns it

    async def stop(self) -> None:
        """Stop accepting, then give requests in flight the stop timeout."""
        server, self._server = self._server, None
        runner, self._runner = self._runner, None
        if server is not None:
            server.close()
        if runner is not None:
            from gateway.runtime import serving

            await serving.stop(runner, self._what, self._stop_timeout_s)
        self.port = None

    def _protocol(self) -> asyncio.Protocol:
        # asyncio accepts only once `serve` has started serving, and by then the runner is set
        runner = self._runner
        if runner is None or runner.server is None:
            raise RuntimeError(f"{self._what} accepted a connection before it was built")
        return runner.server()


async def _first_connection(sockets: tuple[socket.socket, ...]) -> None:
    """Return once a connection waits on any of the listening sockets (not accepted here)."""
    loop = asyncio.get_running_loop()
    waiting = loop.create_future()
    fds = [sock.fileno() for sock in sockets]

    def readable() -> None:
        if not waiting.done():
            waiting.set_result(None)

    for fd in fds:
        loop.add_reader(fd, readable)
    try:
        await waiting
    finally:
        for fd in fds:
            loop.remove_reader(fd)
