"""Serving one aiohttp application on one address, for the HTTP API and the status page.

Bind with a time limit, clean up a half-started runner, and turn a bind failure into an
error that names the config key; stop with a time limit for requests in flight.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiohttp import web

from gateway.config.values import Listen
from gateway.domain.errors import GatewayError

_LOGGER = logging.getLogger(__name__)

START_TIMEOUT_S = 15.0


async def listen(
    app: web.Application,
    address: Listen,
    *,
    key: str,
    code: str,
    stop_timeout_s: float,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[web.AppRunner, int]:
    """Serve `app` on `address`; the runner and the bound port (port 0 allowed).

    A bind failure raises GatewayError(code) naming `key` (e.g. "http.listen")."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=stop_timeout_s)
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            await runner.setup()
            site = web.TCPSite(runner, address.host, address.port, ssl_context=ssl_context)
            await site.start()
    except BaseException as err:
        async with asyncio.timeout(stop_timeout_s):
            await runner.cleanup()
        if isinstance(err, OSError):
            raise GatewayError(
                f"{key}: cannot listen on {address}: {err.strerror or err}",
                code=code,
                hint="another program may hold the port, or the address is not this box's",
            ) from err
        raise
    return runner, int(runner.addresses[0][1])


async def stop(runner: web.AppRunner, what: str, stop_timeout_s: float) -> None:
    """Stop serving; requests in flight get `stop_timeout_s` to finish."""
    try:
        async with asyncio.timeout(stop_timeout_s * 2):
            await runner.cleanup()
    except TimeoutError:
        _LOGGER.error("%s did not stop within %.0f s", what, stop_timeout_s * 2)
