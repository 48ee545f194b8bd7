"""Login, logout, the first-run password and the language choice.

The login form carries its own double-submit token (login CSRF). Each password check is
reserved with the rate limit before scrypt runs, so parallel guesses are counted up front.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Mapping
from typing import Final

from aiohttp import hdrs, web

from gateway.web import pages
from gateway.web.client import LANG_COOKIE, LOGIN_COOKIE, SESSION_COOKIE, peer
from gateway.web.errors import LoginRateLimited, PasswordTooWeak
from gateway.web.guards import field, read_form, require_action
from gateway.web.i18n import supported
from gateway.web.login_limit import is_loopback
from gateway.web.page_state import PAGE
from gateway.web.redirects import safe_next
from gateway.web.render import error_page, redirect, render
from gateway.web.sessions import SESSION_TTL_S, tokens_match

_LOGGER = logging.getLogger(__name__)

LANG_COOKIE_MAX_AGE_S: Final = 365 * 86400
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")  # what secrets.token_urlsafe makes


def _set_token_cookie(response: web.Response, token: str) -> None:
    response.set_cookie(LOGIN_COOKIE, token, path="/", samesite="Strict", httponly=True)


def _form_token(request: web.Request) -> str:
    """The login form's token: the browser's cookie when it is one of ours, else a new one."""
    kept = request.cookies.get(LOGIN_COOKIE, "")
    # A forged or damaged cookie is replaced, never echoed into the page.
    if _TOKEN.fullmatch(kept):
        return kept
    return secrets.token_urlsafe(24)


def _token_sent(request: web.Request, form: Mapping[str, object]) -> bool:
    sent = form.get("login_token")
    kept = request.cookies.get(LOGIN_COOKIE, "")
    return isinstance(sent, str) and bool(sent) and tokens_match(kept, sent)


async def _login_form(
    request: web.Request,
    *,
    status: int = 200,
    error: str | None = None,
    error_params: Mapping[str, object] | None = None,
    next_path: str | None = None,
) -> web.Response:
    page = request.app[PAGE]
    if not await pages.journal_call(page.passwords.is_set()):
        return redirect("/setup")
    token = _form_token(request)
    response = render(
        request,
        "login.html",
        status,
        login_token=token,
        next=next_path if next_path is not None else safe_next(request.query.get("next")),
        error=error,
        error_params=dict(error_params or {}),
    )
    _set_token_cookie(response, token)
    return response


async def login_get(request: web.Request) -> web.Response:
    """GET /login?next=."""
    return await _login_form(request)


async def login_post(request: web.Request) -> web.Response:
    """POST /login: form token, rate limit, then the password."""
    page = request.app[PAGE]
    address = peer(request)
    form = await read_form(request)
    if not _token_sent(request, form):
        _LOGGER.warning("Refused a login from %s: bad login form token", address)
        return error_page(request, 403, "err_csrf")
    next_path = safe_next(field(form, "next"))
    try:
        with page.limiter.attempt(address) as attempt:
            right = await page.passwords.verify(field(form, "password"))
            if right:
                page.limiter.succeeded(attempt)
            else:
                page.limiter.failed(attempt)
    except LoginRateLimited as err:
        wait = math.ceil(err.retry_after_s)
        _LOGGER.warning("Refused a login from %s: too many wrong passwords", address)
        response = await _login_form(
            request,
            status=429,
            error="login_rate",
            error_params={"seconds": wait},
            next_path=next_path,
        )
        response.headers[hdrs.RETRY_AFTER] = str(wait)
        return response
    if not right:
        _LOGGER.warning("Wrong status page password from %s", address)
        return await _login_form(request, status=401, error="login_wrong", next_path=next_path)
    session = page.sessions.create()
    _LOGGER.info("Status page login from %s", address)
    response = redirect(next_path)
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
    """POST /logout (session + CSRF)."""
    page = request.app[PAGE]
    session, _form = await require_action(request)
    page.sessions.drop(session.token)
    _LOGGER.info("Status page logout from %s", peer(request))
    response = redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def _setup_allowed(request: web.Request) -> bool:
    page = request.app[PAGE]
    return not await pages.journal_call(page.passwords.is_set())


async def setup_get(request: web.Request) -> web.Response:
    """GET /setup: the first-run password form (only before a password exists)."""
    if not await _setup_allowed(request):
        return redirect("/login")
    local = is_loopback(peer(request))
    token = _form_token(request)
    response = render(request, "setup.html", local=local, login_token=token, error=None)
    _set_token_cookie(response, token)
    return response


async def setup_post(request: web.Request) -> web.Response:
    """POST /setup: store the first password; only from the box itself."""
    page = request.app[PAGE]
    if not await _setup_allowed(request):
        return redirect("/login")
    address = peer(request)
    if not is_loopback(address):
        # The first password decides who controls the box: only someone at the box sets it.
        _LOGGER.warning("Refused first-run password from %s (not this box)", address)
        return error_page(request, 403, "setup_local_only")
    form = await read_form(request)
    if not _token_sent(request, form):
        return error_page(request, 403, "err_csrf")
    password, again = field(form, "password"), field(form, "password_repeat")
    error: str | None = None
    if password != again:
        error = "password_mismatch"
    else:
        try:
            await page.passwords.set_first(password)
        except PasswordTooWeak as err:
            error = err.reason
    if error is not None:
        token = field(form, "login_token")
        return render(request, "setup.html", 400, local=True, login_token=token, error=error)
    return redirect("/login")


async def set_language(request: web.Request) -> web.Response:
    """GET /lang/{code}?next=: remember the choice in a cookie (not a secret, no login)."""
    lang = supported(request.match_info["code"])
    response = redirect(safe_next(request.query.get("next")))
    if lang is not None:
        response.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=LANG_COOKIE_MAX_AGE_S,
            path="/",
            samesite="Strict",
            httponly=True,
        )
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    """Register login, logout, first run and the language choice."""
    router.add_get("/lang/{code}", set_language)
    router.add_get("/login", login_get)
    router.add_post("/login", login_post)
    router.add_post("/logout", logout)
    router.add_get("/setup", setup_get)
    router.add_post("/setup", setup_post)
