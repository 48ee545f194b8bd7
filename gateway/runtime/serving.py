"""Serving one aiohttp application on one address, for the HTTP API and the status page.

Bind with a time limit, clean up a half-started runner, and turn a bind failure into an
error that names the config key; stop with a time limit for requests in flight.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.config.values import Listen
from gateway.domain.errors import escape_controls
from gateway.runtime.sockets import START_TIMEOUT_S, bind_failed

_LOGGER = logging.getLogger(__name__)


class _BadMessageFilter(logging.Filter):
    """Turn aiohttp's report of a malformed HTTP message (answered 4xx) into one warning line.

    A client's bad bytes are not the box's error: no ERROR, no traceback. Anything else
    (a 500) passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        if isinstance(err, HttpProcessingError) and 400 <= (err.code or 400) < 500:
            # the message may quote the client's bytes: no raw control characters in the log
            detail = str(err.message or type(err).__name__)[:200]
            record.msg = "bad HTTP message from %s refused: %s"
            record.args = (
                *(record.args if isinstance(record.args, tuple) else ()),
                escape_controls(detail),
            )
            record.levelno = min(record.levelno, logging.WARNING)
            record.levelname = logging.getLevelName(record.levelno)
            record.exc_info, record.exc_text = None, None
        return True


# every server of the box reports through this logger (aiohttp's `logger` option)
_SERVER_LOGGER = logging.getLogger(__name__ + ".http")
_SERVER_LOGGER.addFilter(_BadMessageFilter())


def runner(app: web.Application, stop_timeout_s: float) -> web.AppRunner:
    """The box's runner for `app`: no access log, errors through the box's server logger."""
    return web.AppRunner(
        app, access_log=None, logger=_SERVER_LOGGER, shutdown_timeout=stop_timeout_s
    )


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
    served = runner(app, stop_timeout_s)
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            await served.setup()
            site = web.TCPSite(served, address.host, address.port, ssl_context=ssl_context)
            await site.start()
    except BaseException as err:
        async with asyncio.timeout(stop_timeout_s):
            await served.cleanup()
        if isinstance(err, OSError):
            raise bind_failed(err, key, code, address) from err
        raise
    return served, int(served.addresses[0][1])


async def stop(runner: web.AppRunner, what: str, stop_timeout_s: float) -> None:
    """Stop serving; requests in flight get `stop_timeout_s` to finish."""
    try:
        async with asyncio.timeout(stop_timeout_s * 2):
            await runner.cleanup()
    except TimeoutError:
        _LOGGER.error("%s did not stop within %.0f s", what, stop_timeout_s * 2)
