"""Who is asking: the client's address, its session and language cookies."""

from __future__ import annotations

from typing import Final

from aiohttp import hdrs, web

from gateway.web.i18n import choose
from gateway.web.page_state import PAGE
from gateway.web.sessions import Session

SESSION_COOKIE: Final = "fgw_session"
LOGIN_COOKIE: Final = "fgw_login"  # double-submit token of the login form (login CSRF)
LANG_COOKIE: Final = "fgw_lang"


def peer(request: web.Request) -> str:
    """The client's IP address as the socket sees it, or "?"."""
    transport = request.transport
    name = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(name, tuple | list) and name:
        return str(name[0])
    return "?"


def session_of(request: web.Request) -> Session | None:
    """The live session the request's cookie names, or None."""
    return request.app[PAGE].sessions.get(request.cookies.get(SESSION_COOKIE))


def lang_of(request: web.Request) -> str:
    """The page language: the remembered choice, the browser's wish, the box's default."""
    return choose(
        request.cookies.get(LANG_COOKIE),
        request.headers.get(hdrs.ACCEPT_LANGUAGE),
        request.app[PAGE].config.language.value,
    )
