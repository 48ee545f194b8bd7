"""The page's actions: printing jobs, the self-test, live controls, diagnostics, retry, cancel.

Every action needs a session and its CSRF token. Printing actions become journal jobs
(source "web"): durable, run exactly once, listed under Jobs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from aiohttp import hdrs, web

from gateway.atol.decimal_json import dumps
from gateway.atol.tasks import CloseShiftTask, FiscalTask, OpenShiftTask, ReportXTask
from gateway.domain.errors import InvalidJobState, JobNotFound
from gateway.engine import selftest
from gateway.journal import JobRecord, Resolution, intake
from gateway.web import pages
from gateway.web.client import lang_of, peer
from gateway.web.controls import Outcome
from gateway.web.diagnostics import bundle
from gateway.web.guards import field, require_action
from gateway.web.i18n import translator
from gateway.web.page_state import PAGE, PageState
from gateway.web.render import error_page, redirect
from gateway.web.sessions import Notice, Session
from gateway.web.status_view import read_status

_LOGGER = logging.getLogger(__name__)

ACTION_TIMEOUT_S: Final = 60.0
DIAGNOSTICS_JOBS: Final = 200
# Printing actions: the task each one queues.
JOB_ACTIONS: Final = {"x-report": "reportX", "open-shift": "openShift", "close-shift": "closeShift"}
LIVE_ACTIONS: Final = ("sync-clock", "reconnect", "accept-register")
_ACTION_ID: Final = re.compile(r"[0-9a-f]{32}")
MAX_CODE_BYTES: Final = 255  # the check command carries the code's length in one byte
# How a person may write the GS1 group separator (1Dh) in a text field.
_GS_SPELLINGS: Final = re.compile(r"<GS>|\\u001d|\\x1d|\x1d", re.IGNORECASE)
_BASE64: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


class _Duplicate(Exception):
    """The form's job exists already (a double tap or a resent form)."""


# The typed task of each printing action: submitted as it is, no JSON text in between.
_JOB_TASKS: Final[dict[str, FiscalTask]] = {
    "reportX": ReportXTask(),
    "openShift": OpenShiftTask(),
    "closeShift": CloseShiftTask(),
}


async def _submit(page: PageState, uuid: str, tasks: str | Sequence[FiscalTask]) -> JobRecord:
    """Queue one job from the page through the intake (typed tasks, or a request body for a
    receipt): the only place page actions submit to the journal."""
    submit = intake.Intake(page.journal, wake=page.on_submitted)
    try:
        if isinstance(tasks, str):
            submitted = await submit.submit_body(tasks, source="web")
        else:
            submitted = await submit.submit_tasks(uuid, tasks, source="web")
    except (intake.JournalUnavailable, intake.DiskFull) as err:
        raise pages.JournalUnavailable(err.message) from err
    if submitted.outcome is intake.Outcome.DUPLICATE or submitted.job is None:
        raise _Duplicate(uuid)
    return submitted.job


def _notify(request: web.Request, session: Session, notice: Notice) -> None:
    request.app[PAGE].sessions.notify(session, notice)


def _action_id(form_id: str) -> str | None:
    """The form's one-time id, when it has the shape the page gave it."""
    return form_id if _ACTION_ID.fullmatch(form_id) else None


async def job_action(request: web.Request) -> web.Response:
    """POST /actions/{x-report|open-shift|close-shift}: queue a job, exactly once per form."""
    page = request.app[PAGE]
    session, form = await require_action(request)
    name = request.match_info["name"]
    task = JOB_ACTIONS[name]
    action_id = _action_id(field(form, "action_id"))
    if action_id is None:
        return error_page(request, 403, "err_csrf")
    # The form's own id is the job's uuid: a double click or a resent form queues nothing new.
    uuid = f"web-{name}-{action_id}"
    blocked = await pages.journal_call(page.journal.is_blocked())
    t = translator(lang_of(request))
    try:
        job = await _submit(page, uuid, [_JOB_TASKS[task]])
    except _Duplicate:
        _notify(request, session, Notice("info", t("n_job_duplicate", uuid=uuid), f"/jobs/{uuid}"))
        return redirect("/")
    page.count_action(name)
    _LOGGER.info("Status page: %s queued as job %s by %s", task, job.uuid, peer(request))
    text = t("n_job_queued", uuid=job.uuid)
    if blocked is not None:
        text += " " + t("n_queued_behind", uuid=blocked.uuid)
    _notify(request, session, Notice("ok", text, f"/jobs/{job.uuid}"))
    return redirect("/")


async def _customer_receipts(page: PageState) -> tuple[str | None, int | None]:
    """The register's shift state and the open shift's receipts other than self-tests."""
    status, _error = await pages.read_app_status(page.status)
    view = read_status(status, page.now())
    if view.shift_state == "closed":
        return view.shift_state, 0
    if view.shift_number is None:
        return view.shift_state, None
    found = await pages.journal_call(page.journal.shift_fiscal_tasks(view.shift_number))
    count = sum(
        1 for f in found if f.type in pages.RECEIPT_KINDS and not selftest.is_selftest(f.job_uuid)
    )
    return view.shift_state, count


async def selftest_action(request: web.Request) -> web.Response:
    """POST /actions/selftest: queue the commissioning self-test as one job, exactly once per
    form; refused while the open shift holds customer receipts unless `force` is ticked."""
    page = request.app[PAGE]
    session, form = await require_action(request)
    action_id = _action_id(field(form, "action_id"))
    if action_id is None:
        return error_page(request, 403, "err_csrf")
    t = translator(lang_of(request))
    force = field(form, "force") == "on"
    shift_state, receipts = await _customer_receipts(page)
    why = selftest.refusal(shift_state, receipts, force=force)
    if why is not None:
        _LOGGER.info("Status page: self-test refused for %s: %s", peer(request), why)
        key = "n_selftest_unknown" if receipts is None else "n_selftest_refused"
        _notify(request, session, Notice("bad", t(key, count=receipts or 0)))
        return redirect("/")
    uuid = f"{selftest.UUID_PREFIX}{action_id}"
    try:
        job = await _submit(page, uuid, dumps({"uuid": uuid, "request": selftest.build_tasks()}))
    except _Duplicate:
        _notify(request, session, Notice("info", t("n_job_duplicate", uuid=uuid), f"/jobs/{uuid}"))
        return redirect("/")
    page.count_action("selftest")
    _LOGGER.info(
        "Status page: self-test queued as job %s by %s%s",
        job.uuid,
        peer(request),
        " (forced)" if force else "",
    )
    _notify(
        request, session, Notice("ok", t("n_selftest_queued", uuid=job.uuid), f"/jobs/{job.uuid}")
    )
    return redirect(f"/jobs/{job.uuid}")


def sample_code(text: str) -> bytes:
    """The marking code a person typed: as scanned (GS written as <GS>, \\u001d or \\x1d) or
    base64 as ATOL's `imc` carries it. ValueError says what is wrong, for the page."""
    raw = text.strip()
    if not raw:
        raise ValueError("the code is empty")
    if _GS_SPELLINGS.search(raw) is None and _BASE64.fullmatch(raw):
        try:
            decoded = base64.b64decode(raw, validate=True)
        except binascii.Error:
            decoded = b""
        # Plain text that happens to be valid base64 decodes to bytes no code holds.
        if decoded and all(0x20 <= b < 0x7F or b == 0x1D for b in decoded):
            return decoded
    code = _GS_SPELLINGS.sub("\x1d", raw)
    bad = sorted({c for c in code if not (" " <= c < "\x7f" or c == "\x1d")})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        raise ValueError(f"a marking code holds only ASCII characters, not {shown}")
    data = code.encode("ascii")
    if len(data) > MAX_CODE_BYTES:
        raise ValueError(f"the code is {len(data)} bytes long, at most {MAX_CODE_BYTES} fit")
    return data


def sample_check_body(uuid: str, code: bytes) -> str:
    """The request of a sample check: check the code (ФН and ОИСМ), read the answer, decline
    the code so that it stays out of any receipt ([ATOLJS] task names)."""
    params = {
        "imc": base64.b64encode(code).decode("ascii"),
        "imcType": "auto",
        "itemEstimatedStatus": "itemPieceSold",
        "imcModeProcessing": 0,
    }
    tasks = [
        {"type": "beginMarkingCodeValidation", "params": params},
        {"type": "getMarkingCodeValidationStatus"},
        {"type": "declineMarkingCode"},
    ]
    return dumps({"uuid": uuid, "request": tasks})


async def marking_check_action(request: web.Request) -> web.Response:
    """POST /actions/marking-check: queue a sample code check (begin, status, decline) as one
    job through the intake, exactly once per form; the job's page shows the answer."""
    page = request.app[PAGE]
    session, form = await require_action(request)
    action_id = _action_id(field(form, "action_id"))
    if action_id is None:
        return error_page(request, 403, "err_csrf")
    t = translator(lang_of(request))
    try:
        code = sample_code(field(form, "code"))
    except ValueError as err:
        _notify(request, session, Notice("bad", t("n_marking_bad_code", why=str(err))))
        return redirect("/")
    uuid = f"{pages.MARKING_CHECK_PREFIX}{action_id}"
    try:
        job = await _submit(page, uuid, sample_check_body(uuid, code))
    except _Duplicate:
        _notify(request, session, Notice("info", t("n_job_duplicate", uuid=uuid), f"/jobs/{uuid}"))
        return redirect(f"/jobs/{uuid}")
    page.count_action("marking-check")
    _LOGGER.info("Status page: marking code check queued as job %s by %s", job.uuid, peer(request))
    _notify(
        request, session, Notice("ok", t("n_marking_queued", uuid=job.uuid), f"/jobs/{job.uuid}")
    )
    return redirect(f"/jobs/{job.uuid}")


async def live_action(request: web.Request) -> web.Response:
    """POST /actions/{sync-clock|reconnect|accept-register}: ask the live box."""
    page = request.app[PAGE]
    session, _form = await require_action(request)
    name = request.match_info["name"]
    t = translator(lang_of(request))
    controls = page.controls
    if controls is None:
        _notify(request, session, Notice("bad", t("act_unavailable")))
        return redirect("/")
    calls: dict[str, Callable[[], Awaitable[Outcome]]] = {
        "sync-clock": controls.sync_clock,
        "reconnect": controls.reconnect_register,
        "accept-register": controls.accept_register,
    }
    _LOGGER.info("Status page: %s requested by %s", name, peer(request))
    try:
        async with asyncio.timeout(ACTION_TIMEOUT_S):
            outcome = await calls[name]()
    except TimeoutError:
        outcome = Outcome(False, f"no answer within {ACTION_TIMEOUT_S:g} s")
    except Exception as err:
        _LOGGER.exception("Status page action %s failed", name)
        outcome = Outcome(False, str(err) or type(err).__name__)
    page.count_action(name)
    _LOGGER.info(
        "Status page: %s -> %s (%s)", name, "ok" if outcome.ok else "failed", outcome.message
    )
    key = "n_done" if outcome.ok else "n_failed"
    _notify(
        request, session, Notice("ok" if outcome.ok else "bad", t(key, message=outcome.message))
    )
    return redirect("/")


async def diagnostics(request: web.Request) -> web.Response:
    """POST /actions/diagnostics: the zip (config masked, logs, status, journal check)."""
    page = request.app[PAGE]
    await require_action(request)
    now = page.now()
    status, error = await pages.read_app_status(page.status)
    if error is not None:
        status = {"error": error}
    recent = await pages.journal_call(page.journal.list_jobs(limit=DIAGNOSTICS_JOBS))
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
        jobs=[pages.job_summary(j) for j in recent],
        now=now,
    )
    page.count_action("diagnostics")
    _LOGGER.info("Status page: diagnostics downloaded by %s", peer(request))
    name = f"diagnostics-{now.strftime('%Y%m%dT%H%M%SZ')}.zip"
    return web.Response(
        body=body,
        content_type="application/zip",
        headers={hdrs.CONTENT_DISPOSITION: f'attachment; filename="{name}"'},
    )


async def retry_job(request: web.Request) -> web.Response:
    """POST /jobs/{uuid}/retry: run recovery again on a blocked job."""
    page = request.app[PAGE]
    session, _form = await require_action(request)
    uuid = request.match_info["uuid"]
    t = translator(lang_of(request))
    try:
        await pages.journal_call(
            page.journal.unblock(
                uuid,
                resolution=Resolution.RETRY,
                note=f"check again requested on the status page from {peer(request)}",
            )
        )
    except pages.JournalUnavailable as err:
        if isinstance(err.__cause__, JobNotFound):
            return error_page(request, 404, "err_not_found")
        if not isinstance(err.__cause__, InvalidJobState):
            raise
        _notify(request, session, Notice("bad", t("n_not_blocked", uuid=uuid)))
        return redirect(f"/jobs/{uuid}")
    page.count_action("retry")
    _LOGGER.info("Status page: blocked job %s sent back to recovery by %s", uuid, peer(request))
    page.on_submitted(uuid)
    _notify(request, session, Notice("ok", t("n_retry", uuid=uuid)))
    return redirect(f"/jobs/{uuid}")


async def cancel_job(request: web.Request) -> web.Response:
    """POST /jobs/{uuid}/cancel: cancel a job that has not started."""
    page = request.app[PAGE]
    session, _form = await require_action(request)
    uuid = request.match_info["uuid"]
    t = translator(lang_of(request))
    try:
        await pages.journal_call(page.journal.cancel(uuid))
    except pages.JournalUnavailable as err:
        if isinstance(err.__cause__, JobNotFound):
            return error_page(request, 404, "err_not_found")
        if not isinstance(err.__cause__, InvalidJobState):
            raise
        _notify(request, session, Notice("bad", t("n_cannot_cancel", uuid=uuid)))
        return redirect(f"/jobs/{uuid}")
    page.count_action("cancel")
    _LOGGER.info("Status page: job %s canceled by %s", uuid, peer(request))
    _notify(request, session, Notice("ok", t("n_canceled", uuid=uuid)))
    return redirect(f"/jobs/{uuid}")


def add_routes(router: web.UrlDispatcher) -> None:
    """Register every action."""
    router.add_post("/jobs/{uuid}/retry", retry_job)
    router.add_post("/jobs/{uuid}/cancel", cancel_job)
    router.add_post(r"/actions/{name:x-report|open-shift|close-shift}", job_action)
    router.add_post(r"/actions/{name:sync-clock|reconnect|accept-register}", live_action)
    router.add_post("/actions/selftest", selftest_action)
    router.add_post("/actions/marking-check", marking_check_action)
    router.add_post("/actions/diagnostics", diagnostics)
