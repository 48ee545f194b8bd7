"""What a request must bring before a handler acts: a session, a readable form, the CSRF token.

A refusal is raised as `Refused` and turned into its response by the app's middleware.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import hdrs, web

from gateway.web import pages
from gateway.web.client import peer, session_of
from gateway.web.errors import BadInput, WebError
from gateway.web.page_state import PAGE
from gateway.web.render import error_page, redirect
from gateway.web.sessions import Session, csrf_ok

_LOGGER = logging.getLogger(__name__)

FORM_MAX_BYTES: Final = 16 * 1024
FORM_TIMEOUT_S: Final = 15.0
FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")


class Refused(WebError):
    """Stop the handler with this response (login needed, bad CSRF)."""

    code = "web_refused"

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__(f"refused with {response.status}")
        self.response = response


async def read_form(request: web.Request) -> Mapping[str, Any]:
    """The posted form; BadInput("form") when it is not a form the page can read."""
    if request.content_length is not None and request.content_length > FORM_MAX_BYTES:
        raise Refused(web.Response(status=413, text="form too large"))
    if not request.body_exists:
        return {}
    if request.content_type not in FORM_TYPES:
        raise BadInput("form", f"expected an HTML form, got {request.content_type!r}")
    try:
        async with asyncio.timeout(FORM_TIMEOUT_S):
            return await request.post()
    except (ValueError, LookupError) as err:  # undecodable bytes, unknown charset, bad multipart
        raise BadInput("form", f"cannot be read: {type(err).__name__}") from None


def field(form: Mapping[str, Any], name: str) -> str:
    """A text field of the form; "" when missing or a file."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def require_session(request: web.Request, *, public_ok: bool = False) -> Session | None:
    """The session; without one: the login page for a GET, 403 for anything else."""
    page = request.app[PAGE]
    session = session_of(request)
    if session is not None:
        return session
    if public_ok and page.config.public_overview:
        return None
    if not await pages.journal_call(page.passwords.is_set()):
        raise Refused(redirect("/setup"))
    if request.method == hdrs.METH_GET:
        back = urllib.parse.quote(request.rel_url.raw_path_qs, safe="/")
        raise Refused(redirect(f"/login?next={back}"))
    raise Refused(error_page(request, 403, "login_required"))


async def require_action(request: web.Request) -> tuple[Session, Mapping[str, Any]]:
    """A POST from a logged-in browser with its session's CSRF token: the session and form."""
    session = await require_session(request)
    assert session is not None  # public_ok is off: no session raised Refused
    form = await read_form(request)
    if not csrf_ok(session, field(form, "csrf")):
        where = request.rel_url.raw_path  # percent-encoded: no control characters in the log
        _LOGGER.warning("Refused %s from %s: bad CSRF token", where, peer(request))
        raise Refused(error_page(request, 403, "err_csrf"))
    return session, form
