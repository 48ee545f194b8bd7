"""Page rendering: a template in the client's language, error pages, redirects."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import hdrs, web

from gateway.web.client import lang_of, session_of
from gateway.web.i18n import LANGUAGE_NAMES, LANGUAGES, translator
from gateway.web.page_state import PAGE
from gateway.web.sessions import Session
from gateway.web.texts import TEXTS

LIVE_REFRESH_S: Final = 5


def redirect(location: str) -> web.Response:
    """303 to `location` (a path on this site)."""
    return web.Response(status=303, headers={hdrs.LOCATION: location})


def render(
    request: web.Request,
    template: str,
    status: int = 200,
    *,
    session: Session | None = None,
    **context: Any,
) -> web.Response:
    """`template` in the client's language, with the session's notices and CSRF token."""
    page = request.app[PAGE]
    lang = lang_of(request)
    t = translator(lang)

    def tw(value: str | None) -> str | None:
        """A state word (connected, opened…) in the page language; unknown words as sent."""
        if value is None:
            return None
        return t(f"v_{value}") if f"v_{value}" in TEXTS else value

    body = page.env.get_template(template).render(
        t=t,
        tw=tw,
        lang=lang,
        languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        session=session,
        csrf=session.csrf if session else "",
        notices=page.sessions.take_notices(session),
        # Percent-encoded as sent: the language links carry it back through safe_next.
        path=request.rel_url.raw_path_qs,
        live_refresh_s=LIVE_REFRESH_S,
        **context,
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def error_page(request: web.Request, status: int, key: str, **params: object) -> web.Response:
    """The error page with the message `key` (params filled in)."""
    return render(
        request, "error.html", status, session=session_of(request), message_key=key, params=params
    )
