"""The technician's status page on aiohttp + jinja2: routes, login, CSRF, actions.

Pages are rendered on the server and work without JavaScript; `static/live.js` refreshes
the live part every few seconds when scripts run. Every action needs a session and the
session's CSRF token; printing actions become journal jobs (source "web"), so they are
durable, run exactly once and show up in the job list.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
import re
import secrets
import time
import uuid as uuid_mod
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from typing import Any, Final

import jinja2
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from multidict import MultiDictProxy

from gateway.atol import tasks as tasks_mod
from gateway.atol.tasks import NameMapping, parse_request
from gateway.config import WebConfig
from gateway.domain.errors import DuplicateJob, InvalidJobState, JobNotFound
from gateway.engine import selftest
from gateway.journal import JobState, Journal, Resolution
from gateway.runtime import serving
from gateway.web import metrics, pages
from gateway.web.controls import BoxControls, Outcome
from gateway.web.diagnostics import RecentLogs, bundle
from gateway.web.errors import PasswordTooWeak
from gateway.web.i18n import LANGUAGE_NAMES, LANGUAGES, choose, supported, translator
from gateway.web.password_store import PasswordStore
from gateway.web.sessions import SESSION_TTL_S, LoginLimiter, Notice, Session, Sessions, csrf_ok
from gateway.web.status_view import read_status
from gateway.web.texts import TEXTS

_LOGGER = logging.getLogger(__name__)

SESSION_COOKIE: Final = "fgw_session"
LOGIN_COOKIE: Final = "fgw_login"  # double-submit token of the login form (login CSRF)
LANG_COOKIE: Final = "fgw_lang"
FORM_MAX_BYTES: Final = 16 * 1024
FORM_TIMEOUT_S: Final = 15.0
ACTION_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 10.0
QUEUE_SAMPLE_INTERVAL_S: Final = 300.0
LIVE_REFRESH_S: Final = 5

# Printing actions: the task each one queues.
JOB_ACTIONS: Final = {"x-report": "reportX", "open-shift": "openShift", "close-shift": "closeShift"}
LIVE_ACTIONS: Final = ("sync-clock", "reconnect", "accept-register")
_ACTION_ID: Final = re.compile(r"[0-9a-f]{32}")

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

OnSubmitted = Callable[[str], None]
Clock = Callable[[], dt.datetime]


class _Refused(Exception):
    """Stop the handler with this response (login needed, bad CSRF)."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__("refused")
        self.response = response


class _Page:
    """What the handlers share, stored on the application."""

    def __init__(
        self,
        *,
        config: WebConfig,
        journal: Journal,
        status: pages.StatusSource,
        controls: BoxControls | None,
        on_submitted: OnSubmitted,
        config_dump: Mapping[str, Any],
        logs: RecentLogs | None,
        tz: dt.tzinfo | None,
        now: Clock,
        monotonic: Callable[[], float],
    ) -> None:
        self.config = config
        self.journal = journal
        self.status = status
        self.controls = controls
        self.on_submitted = on_submitted
        self.config_dump = config_dump
        self.logs = logs
        self.tz = tz
        self.now = now
        hash_text = config.password_hash.reveal() if config.password_hash is not None else None
        self.passwords = PasswordStore(journal, hash_text)
        self.sessions = Sessions(clock=monotonic)
        self.limiter = LoginLimiter(clock=monotonic)
        self.actions_total: dict[str, int] = {}
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("gateway.web", "templates"),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["when"] = self.format_time
        self.env.filters["pretty"] = lambda v: json.dumps(v, ensure_ascii=False, default=str)

    def format_time(self, value: dt.datetime | dt.date | None) -> str:
        """Local time of the box, to the second; a naive time (register wall time) as it is."""
        if value is None:
            return "—"
        if isinstance(value, dt.datetime):
            local = value.astimezone(self.tz) if value.tzinfo is not None else value
            return local.strftime("%Y-%m-%d %H:%M:%S")
        return value.isoformat()


PAGE: Final = web.AppKey("fiscal_gateway_web", _Page)


# --- helpers -----------------------------------------------------------------------------


def _peer(request: web.Request) -> str:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple | list) and peer:
        return str(peer[0])
    return "?"


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def _session(request: web.Request) -> Session | None:
    return request.app[PAGE].sessions.get(request.cookies.get(SESSION_COOKIE))


def _lang(request: web.Request) -> str:
    page = request.app[PAGE]
    return choose(
        request.cookies.get(LANG_COOKIE),
        request.headers.get(hdrs.ACCEPT_LANGUAGE),
        page.config.language.value,
    )


def _safe_next(raw: str | None) -> str:
    """Only a path on this site: never another host (open redirect)."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/"


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={hdrs.LOCATION: location})


async def _form(request: web.Request) -> MultiDictProxy[str | bytes | Any]:
    if request.content_length is not None and request.content_length > FORM_MAX_BYTES:
        raise _Refused(web.Response(status=413, text="form too large"))
    async with asyncio.timeout(FORM_TIMEOUT_S):
        return await request.post()


def _field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _render(
    request: web.Request,
    template: str,
    status: int = 200,
    *,
    session: Session | None = None,
    **context: Any,
) -> web.Response:
    page = request.app[PAGE]
    lang = _lang(request)
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
        path=request.path_qs,
        live_refresh_s=LIVE_REFRESH_S,
        **context,
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def _error_page(request: web.Request, status: int, key: str) -> web.Response:
    return _render(request, "error.html", status, session=_session(request), message_key=key)


async def _require_session(request: web.Request, *, public_ok: bool = False) -> Session | None:
    """The session; for a GET without one: the login page (or first-run setup)."""
    page = request.app[PAGE]
    session = _session(request)
    if session is not None:
        return session
    if public_ok and page.config.public_overview:
        return None
    if not await pages.journal_call(page.passwords.is_set()):
        raise _Refused(_redirect("/setup"))
    if request.method == "GET":
        raise _Refused(_redirect(f"/login?next={request.path_qs}"))
    raise _Refused(_error_page(request, 403, "login_required"))


async def _require_action(request: web.Request) -> tuple[Session, Mapping[str, Any]]:
    """A POST from a logged-in browser with its session's CSRF token."""
    session = await _require_session(request)
    assert session is not None
    form = await _form(request)
    if not csrf_ok(session, _field(form, "csrf")):
        _LOGGER.warning("Refused %s from %s: bad CSRF token", request.path, _peer(request))
        raise _Refused(_error_page(request, 403, "err_csrf"))
    return session, form


def _notify(request: web.Request, session: Session, notice: Notice) -> None:
    request.app[PAGE].sessions.notify(session, notice)


def _count_action(request: web.Request, name: str) -> None:
    totals = request.app[PAGE].actions_total
    totals[name] = totals.get(name, 0) + 1


# --- middlewares -------------------------------------------------------------------------


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals become their response; failures an error page; security headers on all."""
    try:
        response = await handler(request)
    except _Refused as refused:
        response = refused.response
    except pages.JournalUnavailable as err:
        _LOGGER.error("Status page: journal unavailable on %s: %s", request.path, err)
        response = _error_page(request, 503, "err_unavailable")
    except web.HTTPException as exc:
        if exc.status == 404:
            response = _error_page(request, 404, "err_not_found")
        else:
            raise
    except Exception:
        _LOGGER.exception("Status page: unexpected error on %s %s", request.method, request.path)
        response = web.Response(status=500, text="internal error; see the box log")
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if not request.path.startswith("/static/"):
        headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
    return response


# --- read-only pages ---------------------------------------------------------------------


async def _overview(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    session = await _require_session(request, public_ok=True)
    t = translator(_lang(request))
    data = await pages.overview(page.status, page.journal, page.logs, t, page.now(), page.tz)
    return _render(
        request,
        "overview.html",
        session=session,
        o=data,
        v=data.view,
        controls=page.controls is not None,
        action_id=uuid_mod.uuid4().hex,
    )


async def _status_json(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    await _require_session(request, public_ok=True)
    t = translator("en")
    data = await pages.overview(page.status, page.journal, None, t, page.now(), page.tz)
    body = {
        "state": data.level.name.lower(),
        "findings": [
            {
                "level": f.level.name.lower(),
                "reason": f.reason,
                "text": t(f.reason, **f.params),
                "step": t(f.step),
            }
            for f in data.findings
        ],
        "queue": {
            "depth": data.depth,
            "blocked": data.blocked.uuid if data.blocked else None,
            "oldest": data.oldest.created_at.isoformat() if data.oldest else None,
        },
        "status": data.status,
    }
    text = json.dumps(body, ensure_ascii=False, default=str)
    return web.Response(text=text, content_type="application/json", charset="utf-8")


async def _jobs(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    session = await _require_session(request)
    raw_state = request.query.get("state", "")
    states = pages.parse_states(raw_state)
    try:
        before = int(request.query["before"]) if "before" in request.query else None
    except ValueError:
        before = None
    jobs = await pages.journal_call(
        page.journal.list_jobs(states=states, limit=pages.JOBS_PER_PAGE, before_seq=before)
    )
    older = jobs[-1].seq if len(jobs) == pages.JOBS_PER_PAGE else None
    return _render(
        request,
        "jobs.html",
        session=session,
        jobs=[(j, pages.job_line(j)) for j in jobs],
        state=states[0].value if states else "",
        all_states=[s.value for s in JobState],
        older=older,
    )


async def _job(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    session = await _require_session(request)
    try:
        detail = await pages.journal_call(
            pages.job_detail(page.journal, request.match_info["uuid"], page.logs)
        )
    except pages.JournalUnavailable as err:
        if isinstance(err.__cause__, JobNotFound):
            return _error_page(request, 404, "err_not_found")
        raise
    return _render(request, "job.html", session=session, d=detail, j=detail.job)


async def _metrics(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    extra = [
        metrics.Family(
            "web_login_failures_total",
            "Wrong page passwords since start",
            "counter",
            (({}, float(page.limiter.failures_total)),),
        ),
        metrics.Family(
            "web_login_refused_total",
            "Logins refused by the rate limit since start",
            "counter",
            (({}, float(page.limiter.refused_total)),),
        ),
        metrics.Family(
            "web_actions_total",
            "Actions run from the page since start",
            "counter",
            tuple(({"action": k}, float(v)) for k, v in sorted(page.actions_total.items())),
        ),
        metrics.gauge("web_sessions", "Logged-in browsers", float(len(page.sessions))),
    ]
    families = await pages.metric_families(page.status, page.journal, page.now(), extra)
    return web.Response(
        text=metrics.render(families), headers={hdrs.CONTENT_TYPE: metrics.CONTENT_TYPE}
    )


async def _set_language(request: web.Request) -> web.Response:
    """GET /lang/{code}?next=: remember the choice in a cookie (not a secret, no login)."""
    lang = supported(request.match_info["code"])
    response = _redirect(_safe_next(request.query.get("next")))
    if lang is not None:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, path="/", samesite="Strict", httponly=True
        )
    return response


# --- login, logout, first run ------------------------------------------------------------


async def _login_form(
    request: web.Request,
    *,
    status: int = 200,
    error: str | None = None,
    error_params: Mapping[str, object] | None = None,
) -> web.Response:
    page = request.app[PAGE]
    if not await pages.journal_call(page.passwords.is_set()):
        return _redirect("/setup")
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = _render(
        request,
        "login.html",
        status,
        login_token=token,
        next=_safe_next(request.query.get("next")),
        error=error,
        error_params=dict(error_params or {}),
    )
    response.set_cookie(LOGIN_COOKIE, token, path="/", samesite="Strict", httponly=True)
    return response


async def _login_get(request: web.Request) -> web.Response:
    return await _login_form(request)


async def _login_post(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    peer = _peer(request)
    form = await _form(request)
    sent, kept = _field(form, "login_token"), request.cookies.get(LOGIN_COOKIE, "")
    if not sent or not secrets.compare_digest(sent.encode(), kept.encode()):
        _LOGGER.warning("Refused a login from %s: bad login form token", peer)
        return _error_page(request, 403, "err_csrf")
    wait = page.limiter.retry_after(peer)
    if wait is not None:
        _LOGGER.warning("Refused a login from %s: too many wrong passwords", peer)
        response = await _login_form(
            request, status=429, error="login_rate", error_params={"seconds": int(wait + 0.999)}
        )
        response.headers[hdrs.RETRY_AFTER] = str(int(wait + 0.999))
        return response
    if not await page.passwords.verify(_field(form, "password")):
        page.limiter.failed(peer)
        _LOGGER.warning("Wrong status page password from %s", peer)
        return await _login_form(request, status=401, error="login_wrong")
    page.limiter.succeeded(peer)
    session = page.sessions.create()
    _LOGGER.info("Status page login from %s", peer)
    response = _redirect(_safe_next(_field(form, "next")))
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


async def _logout(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    session, _form_data = await _require_action(request)
    page.sessions.drop(session.token)
    _LOGGER.info("Status page logout from %s", _peer(request))
    response = _redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def _setup_allowed(request: web.Request) -> bool:
    page = request.app[PAGE]
    return not await pages.journal_call(page.passwords.is_set())


async def _setup_get(request: web.Request) -> web.Response:
    if not await _setup_allowed(request):
        return _redirect("/login")
    local = _is_loopback(_peer(request))
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = _render(request, "setup.html", local=local, login_token=token, error=None)
    response.set_cookie(LOGIN_COOKIE, token, path="/", samesite="Strict", httponly=True)
    return response


async def _setup_post(request: web.Request) -> web.Response:
    page = request.app[PAGE]
    if not await _setup_allowed(request):
        return _redirect("/login")
    peer = _peer(request)
    if not _is_loopback(peer):
        # The first password decides who controls the box: only someone at the box sets it.
        _LOGGER.warning("Refused first-run password from %s (not this box)", peer)
        return _error_page(request, 403, "setup_local_only")
    form = await _form(request)
    sent, kept = _field(form, "login_token"), request.cookies.get(LOGIN_COOKIE, "")
    if not sent or not secrets.compare_digest(sent.encode(), kept.encode()):
        return _error_page(request, 403, "err_csrf")
    password, again = _field(form, "password"), _field(form, "password_repeat")
    error: str | None = None
    if password != again:
        error = "password_mismatch"
    else:
        try:
            await page.passwords.set_first(password)
        except PasswordTooWeak as err:
            error = err.reason
    if error is not None:
        return _render(request, "setup.html", 400, local=True, login_token=sent, error=error)
    return _redirect("/login")


# --- actions -----------------------------------------------------------------------------


async def _job_action(request: web.Request) -> web.Response:
    """POST /actions/{x-report|open-shift|close-shift}: queue a job, exactly once per form."""
    page = request.app[PAGE]
    session, form = await _require_action(request)
    name = request.match_info["name"]
    task = JOB_ACTIONS[name]
    action_id = _field(form, "action_id")
    if not _ACTION_ID.fullmatch(action_id):
        return _error_page(request, 403, "err_csrf")
    # The form's own id is the job's uuid: a double click or a resent form queues nothing new.
    uuid = f"web-{name}-{action_id}"
    parsed = parse_request(json.dumps({"uuid": uuid, "request": [{"type": task}]}), NameMapping())
    blocked = await pages.journal_call(page.journal.is_blocked())
    t = translator(_lang(request))
    try:
        job = await pages.journal_call(
            page.journal.submit(uuid, parsed.tasks_json, len(parsed.tasks), source="web")
        )
    except pages.JournalUnavailable as err:
        if not isinstance(err.__cause__, DuplicateJob):
            raise
        _notify(request, session, Notice("info", t("n_job_duplicate", uuid=uuid), f"/jobs/{uuid}"))
        return _redirect("/")
    _count_action(request, name)
    _LOGGER.info("Status page: %s queued as job %s by %s", task, job.uuid, _peer(request))
    try:
        page.on_submitted(job.uuid)
    except Exception:  # committed already: the worker also polls
        _LOGGER.exception("Could not wake the worker for %s", job.uuid)
    text = t("n_job_queued", uuid=job.uuid)
    if blocked is not None:
        text += " " + t("n_queued_behind", uuid=blocked.uuid)
    _notify(request, session, Notice("ok", text, f"/jobs/{job.uuid}"))
    return _redirect("/")


async def _selftest_action(request: web.Request) -> web.Response:
    """POST /actions/selftest: queue the commissioning self-test as one job, exactly once per
    form; refused while the open shift holds customer receipts unless `force` is ticked."""
    page = request.app[PAGE]
    session, form = await _require_action(request)
    action_id = _field(form, "action_id")
    if not _ACTION_ID.fullmatch(action_id):
        return _error_page(request, 403, "err_csrf")
    t = translator(_lang(request))
    force = _field(form, "force") == "on"
    status, _error = await pages.read_app_status(page.status)
    view = read_status(status, page.now())
    receipts: int | None = None
    if view.shift_state == "closed":
        receipts = 0
    elif view.shift_number is not None:
        found = await pages.journal_call(page.journal.shift_fiscal_tasks(view.shift_number))
        receipts = sum(
            1
            for f in found
            if f.type in pages.RECEIPT_KINDS and not selftest.is_selftest(f.job_uuid)
        )
    why = selftest.refusal(view.shift_state, receipts, force=force)
    if why is not None:
        _LOGGER.info("Status page: self-test refused for %s: %s", _peer(request), why)
        key = "n_selftest_unknown" if receipts is None else "n_selftest_refused"
        _notify(request, session, Notice("bad", t(key, count=receipts or 0)))
        return _redirect("/")
    uuid = f"{selftest.UUID_PREFIX}{action_id}"
    body = tasks_mod.dumps({"uuid": uuid, "request": selftest.build_tasks()})
    parsed = parse_request(body, NameMapping())
    try:
        job = await pages.journal_call(
            page.journal.submit(uuid, parsed.tasks_json, len(parsed.tasks), source="web")
        )
    except pages.JournalUnavailable as err:
        if not isinstance(err.__cause__, DuplicateJob):
            raise
        _notify(request, session, Notice("info", t("n_job_duplicate", uuid=uuid), f"/jobs/{uuid}"))
        return _redirect("/")
    _count_action(request, "selftest")
    _LOGGER.info(
        "Status page: self-test queued as job %s by %s%s",
        job.uuid,
        _peer(request),
        " (forced)" if force else "",
    )
    try:
        page.on_submitted(job.uuid)
    except Exception:  # committed already: the worker also polls
        _LOGGER.exception("Could not wake the worker for %s", job.uuid)
    _notify(
        request, session, Notice("ok", t("n_selftest_queued", uuid=job.uuid), f"/jobs/{job.uuid}")
    )
    return _redirect(f"/jobs/{job.uuid}")


async def _live_action(request: web.Request) -> web.Response:
    """POST /actions/{sync-clock|reconnect|accept-register}: ask the live box."""
    page = request.app[PAGE]
    session, _form_data = await _require_action(request)
    name = request.match_info["name"]
    t = translator(_lang(request))
    controls = page.controls
    if controls is None:
        _notify(request, session, Notice("bad", t("act_unavailable")))
        return _redirect("/")
    calls: dict[str, Callable[[], Awaitable[Outcome]]] = {
        "sync-clock": controls.sync_clock,
        "reconnect": controls.reconnect_register,
        "accept-register": controls.accept_register,
    }
    _LOGGER.info("Status page: %s requested by %s", name, _peer(request))
    try:
        async with asyncio.timeout(ACTION_TIMEOUT_S):
            outcome = await calls[name]()
    except TimeoutError:
        outcome = Outcome(False, f"no answer within {ACTION_TIMEOUT_S:g} s")
    except Exception as err:
        _LOGGER.exception("Status page action %s failed", name)
        outcome = Outcome(False, str(err) or type(err).__name__)
    _count_action(request, name)
    _LOGGER.info(
        "Status page: %s -> %s (%s)", name, "ok" if outcome.ok else "failed", outcome.message
    )
    key = "n_done" if outcome.ok else "n_failed"
    _notify(
        request, session, Notice("ok" if outcome.ok else "bad", t(key, message=outcome.message))
    )
    return _redirect("/")


async def _diagnostics(request: web.Request) -> web.Response:
    """POST /actions/diagnostics: the zip (config masked, logs, status, journal check)."""
    page = request.app[PAGE]
    await _require_action(request)
    now = page.now()
    status, error = await pages.read_app_status(page.status)
    if error is not None:
        status = {"error": error}
    jobs = await pages.journal_call(page.journal.list_jobs(limit=200))
    journal = page.journal
    integrity = f"integrity check at open: {journal.integrity_result}"
    if journal.kept_corrupt is not None:
        integrity += f"\na damaged journal was set aside as {journal.kept_corrupt}"
    body = await asyncio.to_thread(
        bundle,
        config=page.config_dump,
        status=status,
        logs=page.logs.text() if page.logs else "",
        integrity=integrity,
        jobs=[pages.job_summary(j) for j in jobs],
        now=now,
    )
    _count_action(request, "diagnostics")
    _LOGGER.info("Status page: diagnostics downloaded by %s", _peer(request))
    name = f"diagnostics-{now.strftime('%Y%m%dT%H%M%SZ')}.zip"
    return web.Response(
        body=body,
        content_type="application/zip",
        headers={hdrs.CONTENT_DISPOSITION: f'attachment; filename="{name}"'},
    )


async def _retry_job(request: web.Request) -> web.Response:
    """POST /jobs/{uuid}/retry: run recovery again on a blocked job."""
    page = request.app[PAGE]
    session, _form_data = await _require_action(request)
    uuid = request.match_info["uuid"]
    t = translator(_lang(request))
    try:
        await pages.journal_call(
            page.journal.unblock(
                uuid,
                resolution=Resolution.RETRY,
                note=f"check again requested on the status page from {_peer(request)}",
            )
        )
    except pages.JournalUnavailable as err:
        if isinstance(err.__cause__, JobNotFound):
            return _error_page(request, 404, "err_not_found")
        if not isinstance(err.__cause__, InvalidJobState):
            raise
        _notify(request, session, Notice("bad", t("n_not_blocked", uuid=uuid)))
        return _redirect(f"/jobs/{uuid}")
    _count_action(request, "retry")
    _LOGGER.info("Status page: blocked job %s sent back to recovery by %s", uuid, _peer(request))
    page.on_submitted(uuid)
    _notify(request, session, Notice("ok", t("n_retry", uuid=uuid)))
    return _redirect(f"/jobs/{uuid}")


async def _cancel_job(request: web.Request) -> web.Response:
    """POST /jobs/{uuid}/cancel: cancel a job that has not started."""
    page = request.app[PAGE]
    session, _form_data = await _require_action(request)
    uuid = request.match_info["uuid"]
    t = translator(_lang(request))
    try:
        await pages.journal_call(page.journal.cancel(uuid))
    except pages.JournalUnavailable as err:
        if isinstance(err.__cause__, JobNotFound):
            return _error_page(request, 404, "err_not_found")
        if not isinstance(err.__cause__, InvalidJobState):
            raise
        _notify(request, session, Notice("bad", t("n_cannot_cancel", uuid=uuid)))
        return _redirect(f"/jobs/{uuid}")
    _count_action(request, "cancel")
    _LOGGER.info("Status page: job %s canceled by %s", uuid, _peer(request))
    _notify(request, session, Notice("ok", t("n_canceled", uuid=uuid)))
    return _redirect(f"/jobs/{uuid}")


# --- application and server --------------------------------------------------------------


def _static_dir() -> str:
    return str(resources.files("gateway.web").joinpath("static"))


def build_app(page: _Page) -> web.Application:
    """The aiohttp application with every route."""
    app = web.Application(client_max_size=FORM_MAX_BYTES, middlewares=(_guard,))
    app[PAGE] = page
    r = app.router
    r.add_get("/", _overview)
    r.add_get("/status.json", _status_json)
    r.add_get("/jobs", _jobs)
    r.add_get("/jobs/{uuid}", _job)
    r.add_post("/jobs/{uuid}/retry", _retry_job)
    r.add_post("/jobs/{uuid}/cancel", _cancel_job)
    r.add_get("/metrics", _metrics)
    r.add_get("/lang/{code}", _set_language)
    r.add_get("/login", _login_get)
    r.add_post("/login", _login_post)
    r.add_post("/logout", _logout)
    r.add_get("/setup", _setup_get)
    r.add_post("/setup", _setup_post)
    r.add_post(r"/actions/{name:x-report|open-shift|close-shift}", _job_action)
    r.add_post(r"/actions/{name:sync-clock|reconnect|accept-register}", _live_action)
    r.add_post("/actions/selftest", _selftest_action)
    r.add_post("/actions/diagnostics", _diagnostics)
    r.add_static("/static/", _static_dir(), append_version=False)
    return app


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StatusPage:
    """The page's server: builds the app, listens on `web.listen`, stops."""

    def __init__(
        self,
        *,
        config: WebConfig,
        journal: Journal,
        status: pages.StatusSource,
        controls: BoxControls | None = None,
        on_submitted: OnSubmitted = lambda _uuid: None,
        config_dump: Mapping[str, Any] | None = None,
        logs: RecentLogs | None = None,
        tz: dt.tzinfo | None = None,
        now: Clock = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._page = _Page(
            config=config,
            journal=journal,
            status=status,
            controls=controls,
            on_submitted=on_submitted,
            config_dump=config_dump or {},
            logs=logs,
            tz=tz,
            now=now,
            monotonic=monotonic,
        )
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def build_app(self) -> web.Application:
        """The aiohttp application (tests may serve it themselves)."""
        return build_app(self._page)

    async def start(self) -> None:
        """Listen; returns once the socket is bound."""
        if self._runner is not None:
            raise RuntimeError("the status page is started already")
        listen = self.config.listen
        runner, port = await serving.listen(
            self.build_app(),
            listen,
            key="web.listen",
            code="web_listen",
            stop_timeout_s=STOP_TIMEOUT_S,
        )
        self._runner = runner
        self.port = port
        _LOGGER.info("Status page on http://%s:%d/", listen.host, self.port)

    async def stop(self) -> None:
        """Stop listening."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await serving.stop(runner, "The status page", STOP_TIMEOUT_S)
        self.port = None

    async def sample_queue_depth(self, interval_s: float = QUEUE_SAMPLE_INTERVAL_S) -> None:
        """Record the queue depth for the 24 h chart every `interval_s`, until cancelled."""
        journal = self._page.journal
        while True:
            try:
                async with asyncio.timeout(pages.JOURNAL_TIMEOUT_S):
                    await journal.record_queue_depth(now=self._page.now())
            except Exception as err:  # a chart sample is not worth stopping the box for
                _LOGGER.warning("Could not sample the queue depth: %s", err)
            await asyncio.sleep(interval_s)
