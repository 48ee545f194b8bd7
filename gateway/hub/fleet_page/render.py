"""Templates in the client's language, error pages, redirects."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import hdrs, web

from gateway.hub.fleet_page.state import PAGE
from gateway.hub.fleet_page.texts import LANGUAGE_NAMES, LANGUAGES, TEXTS
from gateway.web.i18n import from_accept_language, supported
from gateway.web.sessions import Session

SESSION_COOKIE: Final = "hub_session"
LOGIN_COOKIE: Final = "hub_login"  # the login form's double-submit token
LANG_COOKIE: Final = "hub_lang"


def lang_of(request: web.Request) -> str:
    """The person's choice, then the browser's, then the configured language."""
    chosen = supported(request.cookies.get(LANG_COOKIE)) or from_accept_language(
        request.headers.get(hdrs.ACCEPT_LANGUAGE)
    )
    return chosen or request.app[PAGE].settings.language


def translate(lang: str, key: str, **params: object) -> str:
    row = TEXTS.get(key)
    if row is None:
        return key
    text = row[LANGUAGES.index(lang)]
    try:
        return text.format(**params) if params else text
    except (KeyError, IndexError, ValueError):
        return text


def session_of(request: web.Request) -> Session | None:
    return request.app[PAGE].sessions.get(request.cookies.get(SESSION_COOKIE))


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={hdrs.LOCATION: location})


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    page = request.app[PAGE]
    lang = lang_of(request)
    session = session_of(request)

    def t(key: str, **params: object) -> str:
        return translate(lang, key, **params)

    body = page.env.get_template(template).render(
        t=t,
        lang=lang,
        languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        session=session,
        csrf=session.csrf if session else "",
        path=request.rel_url.raw_path_qs,
        refresh_s=page.settings.refresh_s,
        **context,
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def error_page(request: web.Request, status: int, key: str, **params: object) -> web.Response:
    return render(request, "error.html", status, message_key=key, params=params)
