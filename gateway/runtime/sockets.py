"""Binding a listening address, and its failure as the box's error naming the config key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.config.values import Listen
from gateway.domain.errors import GatewayError

START_TIMEOUT_S = 15.0
BACKLOG = 100  # asyncio's own default


def bind_failed(err: OSError, key: str, code: str, address: Listen) -> GatewayError:
    """The error for `key` (e.g. "http.listen") failing to bind `address`."""
    return GatewayError(
        f"{key}: cannot listen on {address}: {err.strerror or err}",
        code=code,
        hint="another program may hold the port, or the address is not this box's",
    )


async def bind(
    protocol: Callable[[], asyncio.Protocol], address: Listen, *, key: str, code: str
) -> asyncio.Server:
    """Listen on `address` for `protocol` without accepting yet (`start_serving` begins).

    A bind failure raises GatewayError(code) naming `key`."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            server = await loop.create_server(
                protocol, address.host, address.port, start_serving=False, backlog=BACKLOG
            )
    except OSError as err:
        raise bind_failed(err, key, code, address) from err
    # asyncio would listen only in start_serving; listening now lets the kernel queue the
    # first clients (their connect succeeds) until the application accepts them.
    for bound in server.sockets:
        with bound.dup() as sock:
            sock.listen(BACKLOG)
    return server
