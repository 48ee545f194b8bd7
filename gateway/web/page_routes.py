"""The read-only pages: overview, status.json, the jobs list, one job, /metrics."""

from __future__ import annotations

import json
import uuid as uuid_mod

from aiohttp import hdrs, web

from gateway.domain.errors import JobNotFound
from gateway.journal import JobState
from gateway.web import metrics, pages
from gateway.web.client import lang_of
from gateway.web.guards import require_session
from gateway.web.i18n import translator
from gateway.web.list_params import parse_before, parse_states
from gateway.web.page_state import PAGE
from gateway.web.render import error_page, render


async def overview(request: web.Request) -> web.Response:
    """GET /: the big state, actions, register, queue, charts."""
    page = request.app[PAGE]
    session = await require_session(request, public_ok=True)
    t = translator(lang_of(request))
    data = await pages.overview(page.status, page.journal, page.logs, t, page.now(), page.tz)
    return render(
        request,
        "overview.html",
        session=session,
        o=data,
        v=data.view,
        controls=page.controls is not None,
        action_id=uuid_mod.uuid4().hex,
    )


async def status_json(request: web.Request) -> web.Response:
    """GET /status.json: the state and findings in English, the queue, the raw status."""
    page = request.app[PAGE]
    await require_session(request, public_ok=True)
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


async def jobs(request: web.Request) -> web.Response:
    """GET /jobs?state=&before=: newest first, one page."""
    page = request.app[PAGE]
    # Read before the login check: a bad value is 400 for everyone, never a journal error.
    states = parse_states(request.query)
    before = parse_before(request.query)
    session = await require_session(request)
    found = await pages.journal_call(
        page.journal.list_jobs(states=states, limit=pages.JOBS_PER_PAGE, before_seq=before)
    )
    older = found[-1].seq if len(found) == pages.JOBS_PER_PAGE else None
    return render(
        request,
        "jobs.html",
        session=session,
        jobs=[(j, pages.job_line(j)) for j in found],
        state=states[0].value if states else "",
        all_states=[s.value for s in JobState],
        older=older,
    )


async def job(request: web.Request) -> web.Response:
    """GET /jobs/{uuid}: request, history, result, log lines."""
    page = request.app[PAGE]
    session = await require_session(request)
    try:
        detail = await pages.journal_call(
            pages.job_detail(page.journal, request.match_info["uuid"], page.logs)
        )
    except pages.JournalUnavailable as err:
        if isinstance(err.__cause__, JobNotFound):
            return error_page(request, 404, "err_not_found")
        raise
    return render(request, "job.html", session=session, d=detail, j=detail.job)


async def metrics_text(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format, no login (counts only)."""
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


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the read-only pages."""
    router.add_get("/", overview)
    router.add_get("/status.json", status_json)
    router.add_get("/jobs", jobs)
    router.add_get("/jobs/{uuid}", job)
    router.add_get("/metrics", metrics_text)
