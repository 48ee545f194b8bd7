"""The status page's aiohttp application: routes, the refusal and error middleware, and the
security headers every answer carries."""

from __future__ import annotations

import logging
from importlib import resources
from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from gateway.web import action_routes, auth_routes, page_routes, pages
from gateway.web.client import peer
from gateway.web.errors import BadInput
from gateway.web.guards import FORM_MAX_BYTES, Refused
from gateway.web.page_state import PAGE, PageState
from gateway.web.render import error_page

_LOGGER = logging.getLogger(__name__)

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's response; a refusal, bad input or failure as its own page."""
    where = request.rel_url.raw_path  # percent-encoded: no control characters in the log
    try:
        return await handler(request)
    except Refused as refused:
        return refused.response
    except BadInput as err:
        # The client's mistake, not the box's: a warning, no traceback.
        _LOGGER.warning("Status page: %s %s from %s: %s", request.method, where, peer(request), err)
        return error_page(request, 400, "err_bad_input", field=err.field, reason=err.reason)
    except pages.JournalUnavailable as err:
        _LOGGER.error("Status page: journal unavailable on %s: %s", where, err)
        return error_page(request, 503, "err_unavailable")
    except web.HTTPException as exc:
        if exc.status == 404:
            return error_page(request, 404, "err_not_found")
        raise
    except Exception:
        _LOGGER.exception("Status page: unexpected error on %s %s", request.method, where)
        return web.Response(status=500, text="internal error; see the box log")


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer: refusals and failures as pages, security headers on all."""
    response = await _answer(request, handler)
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        response.headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
    return response


def _static_dir() -> str:
    return str(resources.files("gateway.web").joinpath("static"))


def build_app(state: PageState) -> web.Application:
    """The aiohttp application with every route."""
    app = web.Application(client_max_size=FORM_MAX_BYTES, middlewares=(_guard,))
    app[PAGE] = state
    page_routes.add_routes(app.router)
    auth_routes.add_routes(app.router)
    action_routes.add_routes(app.router)
    app.router.add_static("/static/", _static_dir(), append_version=False)
    return app
