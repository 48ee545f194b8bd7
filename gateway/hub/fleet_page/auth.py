"""Login, logout and the language choice, as on the box's status page: an scrypt password,
a session cookie, a CSRF token per session, a double-submit token on the login form, and the
same login rate limit."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import hdrs, web

from gateway.hub.errors import HubError
from gateway.hub.fleet_page.render import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    error_page,
    redirect,
    render,
    session_of,
)
from gateway.hub.fleet_page.state import PAGE
from gateway.web.client import peer
from gateway.web.errors import LoginRateLimited
from gateway.web.i18n import supported
from gateway.web.passwords import verify_password
from gateway.web.redirects import safe_next
from gateway.web.sessions import SESSION_TTL_S, Session, csrf_ok, tokens_match

_LOGGER = logging.getLogger(__name__)

FORM_MAX_BYTES: Final = 16 * 1024
FORM_TIMEOUT_S: Final = 15.0
VERIFY_TIMEOUT_S: Final = 30.0
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")


class Refused(HubError):
    """Stop a handler with a ready response (login needed, bad CSRF)."""

    code = "page_refused"

    def __init__(self, response: web.Response) -> None:
        super().__init__(f"refused with {response.status}")
        self.response = response


async def read_form(request: web.Request) -> Mapping[str, Any]:
    if request.content_length is not None and request.content_length > FORM_MAX_BYTES:
        raise Refused(web.Response(status=413, text="form too large"))
    try:
        async with asyncio.timeout(FORM_TIMEOUT_S):
            return await request.post()
    except (ValueError, LookupError):
        raise Refused(error_page(request, 400, "err_bad_input", field="form")) from None


def field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def require_session(request: web.Request) -> Session:
    session = session_of(request)
    if session is not None:
        return session
    if request.method == hdrs.METH_GET:
        raise Refused(redirect(f"/login?next={request.rel_url.raw_path_qs}"))
    raise Refused(error_page(request, 403, "err_csrf"))


async def require_action(request: web.Request) -> Session:
    session = require_session(request)
    form = await read_form(request)
    if not csrf_ok(session, field(form, "csrf")):
        _LOGGER.warning("Fleet page: refused %s from %s: bad CSRF", request.path, peer(request))
        raise Refused(error_page(request, 403, "err_csrf"))
    return session


def _form_token(request: web.Request) -> str:
    kept = request.cookies.get(LOGIN_COOKIE, "")
    return kept if _TOKEN.fullmatch(kept) else secrets.token_urlsafe(24)


def _login_form(
    request: web.Request, status: int = 200, error: str | None = None, **params: object
) -> web.Response:
    token = _form_token(request)
    response = render(
        request,
        "login.html",
        status,
        login_token=token,
        next=safe_next(request.query.get("next")),
        unset=request.app[PAGE].password is None,
        error=error,
        error_params=params,
    )
    response.set_cookie(LOGIN_COOKIE, token, path="/", samesite="Strict", httponly=True)
    return response


async def login_get(request: web.Request) -> web.Response:
    return _login_form(request)


async def login_post(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    address = peer(request)
    form = await read_form(request)
    sent, kept = field(form, "login_token"), request.cookies.get(LOGIN_COOKIE, "")
    if not sent or not tokens_match(kept, sent):
        _LOGGER.warning("Fleet page: refused a login from %s: bad form token", address)
        return error_page(request, 403, "err_csrf")
    stored = page.password
    if stored is None:
        return _login_form(request, 401, "login_unset")
    try:
        with page.limiter.attempt(address) as attempt:
            # scrypt costs ~32 MiB and a fraction of a second: off the event loop.
            async with asyncio.timeout(VERIFY_TIMEOUT_S):
                right = await asyncio.to_thread(verify_password, field(form, "password"), stored)
            (page.limiter.succeeded if right else page.limiter.failed)(attempt)
    except LoginRateLimited as err:
        wait = math.ceil(err.retry_after_s)
        response = _login_form(request, 429, "login_rate", seconds=wait)
        response.headers[hdrs.RETRY_AFTER] = str(wait)
        return response
    if not right:
        _LOGGER.warning("Fleet page: wrong password from %s", address)
        return _login_form(request, 401, "login_wrong")
    session = page.sessions.create()
    _LOGGER.info("Fleet page login from %s", address)
    response = redirect(safe_next(field(form, "next")))
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        path="/",
        httponly=True,
        samesite="Strict",
        max_age=int(SESSION_TTL_S),
    )
    response.del_cookie(LOGIN_COOKIE, path="/")
    return response


async def logout(request: web.Request) -> web.Response:
    session = await require_action(request)
    request.app[PAGE].sessions.drop(session.token)
    response = redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def set_language(request: web.Request) -> web.Response:
    lang = supported(request.match_info["code"])
    response = redirect(safe_next(request.query.get("next")))
    if lang is not None:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, path="/", samesite="Strict", httponly=True
        )
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/lang/{code}", set_language)
    router.add_get("/login", login_get)
    router.add_post("/login", login_post)
    router.add_post("/logout", logout)
