"""The fleet page's aiohttp application and its server on `web.listen` (127.0.0.1:8701)."""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from gateway.hub.errors import StoreError
from gateway.hub.fleet_page import auth, routes
from gateway.hub.fleet_page.auth import FORM_MAX_BYTES, Refused
from gateway.hub.fleet_page.render import error_page
from gateway.hub.fleet_page.state import PAGE, PageState, static_dir

_LOGGER = logging.getLogger(__name__)

CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as refused:
        return refused.response
    except StoreError as err:
        _LOGGER.error("Fleet page: database unavailable on %s: %s", request.rel_url.raw_path, err)
        return error_page(request, 503, "err_unavailable")
    except web.HTTPException as exc:
        if exc.status == 404:
            return error_page(request, 404, "err_not_found")
        raise
    except Exception:
        _LOGGER.exception("Fleet page: unexpected error on %s", request.rel_url.raw_path)
        return web.Response(status=500, text="internal error; see the hub log")


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await _answer(request, handler)
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        response.headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
    return response


def build_app(state: PageState) -> web.Application:
    app = web.Application(client_max_size=FORM_MAX_BYTES, middlewares=(_guard,))
    app[PAGE] = state
    auth.add_routes(app.router)
    routes.add_routes(app.router)
    app.router.add_static("/static/", static_dir(), append_version=False)
    return app


async def start(state: PageState) -> web.AppRunner:
    """Listen on the configured address; the caller cleans the runner up."""
    runner = web.AppRunner(build_app(state), access_log=None)
    await runner.setup()
    host, port = state.settings.listen
    await web.TCPSite(runner, host, port).start()
    _LOGGER.info("Fleet page on http://%s:%d", host, port)
    return runner
