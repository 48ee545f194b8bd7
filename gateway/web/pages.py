"""Gathers what each page shows from the status callable and the journal (reads only)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, TypeVar

from gateway.engine import selftest
from gateway.engine.reconcile import EVENT_KIND as SHIFT_MISMATCH
from gateway.journal import HistoryEntry, JobRecord, JobState, Journal
from gateway.web import charts, metrics
from gateway.web.diagnostics import LogLine, RecentLogs
from gateway.web.errors import WebError
from gateway.web.i18n import Translate
from gateway.web.status_view import StatusView, read_status
from gateway.web.verdict import Facts, Finding, Level, findings

_LOGGER = logging.getLogger(__name__)

StatusSource = Callable[[], Awaitable[Mapping[str, Any]]]

STATUS_TIMEOUT_S: Final = 10.0
JOURNAL_TIMEOUT_S: Final = 15.0
CHART_WINDOW: Final = dt.timedelta(hours=24)
EVENTS_SHOWN: Final = 10
MISMATCHES_SHOWN: Final = 5
# A shift mismatch keeps the overview at "needs attention" this long after its Z report:
# long enough for someone to see it the next morning, and after a weekend.
MISMATCH_ATTENTION: Final = dt.timedelta(days=3)
JOBS_PER_PAGE: Final = 50
LATENCY_QUANTILES: Final = (0.5, 0.9, 0.99)

_T = TypeVar("_T")


class JournalUnavailable(WebError):
    """The journal failed or did not answer in time; the page says so and asks to retry."""

    code = "web_journal_unavailable"


async def journal_call(call: Awaitable[_T]) -> _T:
    """A journal read under a timeout; a failure becomes JournalUnavailable."""
    try:
        async with asyncio.timeout(JOURNAL_TIMEOUT_S):
            return await call
    except Exception as err:
        raise JournalUnavailable(f"{type(err).__name__}: {err}") from err


async def read_app_status(source: StatusSource) -> tuple[dict[str, Any], str | None]:
    """The app's status dict and None, or {} and why it could not be had."""
    try:
        async with asyncio.timeout(STATUS_TIMEOUT_S):
            return dict(await source()), None
    except Exception as err:
        _LOGGER.warning("The status page could not read the box status: %s", err, exc_info=err)
        return {}, f"{type(err).__name__}: {err}"


@dataclass(frozen=True, slots=True)
class Overview:
    """Everything the overview shows."""

    status: dict[str, Any]
    view: StatusView
    findings: list[Finding]
    level: Level
    blocked: JobRecord | None
    oldest: JobRecord | None
    depth: int
    events: list[LogLine]
    queue_chart: str
    latency_chart: str
    mismatches: list[Mismatch]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A `shift_mismatch` event: which shift, when, and the counters that differ."""

    shift: int | None
    at: dt.datetime | None
    differences: list[dict[str, Any]]


def _mismatch(event: Mapping[str, Any]) -> Mismatch:
    shift = event.get("shift")
    try:
        at: dt.datetime | None = dt.datetime.fromisoformat(str(event.get("at")))
    except ValueError:
        at = None
    diffs = event.get("differences")
    return Mismatch(
        shift if isinstance(shift, int) else None,
        at,
        [d for d in diffs if isinstance(d, dict)] if isinstance(diffs, list) else [],
    )


async def overview(
    source: StatusSource,
    journal: Journal,
    logs: RecentLogs | None,
    t: Translate,
    now: dt.datetime,
    tz: dt.tzinfo | None,
) -> Overview:
    """The overview's data; the journal's own view of the queue wins over the status dict."""
    status, error = await read_app_status(source)
    view = read_status(status, now)
    blocked = await journal_call(journal.is_blocked())
    oldest = await journal_call(journal.oldest_queued())
    depth = await journal_call(journal.queue_depth())
    events = await journal_call(journal.recent_events(SHIFT_MISMATCH, limit=MISMATCHES_SHOWN))
    mismatches = [_mismatch(e) for e in events]
    fresh = [m for m in mismatches if m.at is not None and now - m.at < MISMATCH_ATTENTION]
    facts = Facts(
        blocked_uuid=blocked.uuid if blocked else None,
        blocked_why=blocked.error_text if blocked else None,
        oldest_queued_at=oldest.created_at if oldest else None,
        status_error=error,
        shift_mismatch=fresh[0].shift if fresh else None,
    )
    found = findings(view, facts, now)
    since = now - CHART_WINDOW
    depth_samples = await journal_call(journal.queue_depth_samples(since))
    latency = await journal_call(journal.latency_samples(since))
    start, end = since.astimezone(tz), now.astimezone(tz)
    queue_chart = charts.render_svg(
        charts.Chart(
            t("chart_queue"),
            t("unit_jobs"),
            start,
            end,
            [(at.astimezone(tz), float(n)) for at, n in depth_samples] + [(end, float(depth))],
            t("chart_empty"),
            step=True,
        )
    )
    latency_chart = charts.render_svg(
        charts.Chart(
            t("chart_latency"),
            t("unit_seconds"),
            start,
            end,
            [(at.astimezone(tz), s) for at, s in latency],
            t("chart_empty"),
            step=False,
        )
    )
    log_lines = logs.lines(min_level=logging.INFO, limit=EVENTS_SHOWN) if logs else []
    return Overview(
        status=status,
        view=view,
        findings=found,
        level=found[0].level,
        blocked=blocked,
        oldest=oldest,
        depth=depth,
        events=list(reversed(log_lines)),
        queue_chart=queue_chart,
        latency_chart=latency_chart,
        mismatches=mismatches,
    )


@dataclass(frozen=True, slots=True)
class JobLine:
    """What a job did, for the jobs list: its task types, receipt totals and payment types,
    the fiscal documents made, and for a Z report the shift reconciliation."""

    kinds: list[str]  # ATOL task types, each once, in order
    total: Decimal | None  # the receipts' totals added up (rubles), None without receipts
    payments: list[str]  # payment types used, each once
    documents: list[int]  # fiscal document numbers of the tasks that are ready
    reconciliation: dict[str, Any] | None  # the last closeShift's `shiftReconciliation`
    selftest: selftest.Report | None  # the self-test's verdict once it is finished


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def job_line(job: JobRecord) -> JobLine:
    """Pure: read the job's stored request and results; a part that cannot be read is left out."""
    try:
        raw = json.loads(job.tasks_json, parse_float=Decimal)
    except ValueError:
        raw = []
    tasks = [t for t in raw if isinstance(t, dict)] if isinstance(raw, list) else []
    kinds = _unique([str(t.get("type")) for t in tasks])
    total: Decimal | None = None
    payments: list[str] = []
    for task in tasks:
        if task.get("type") not in RECEIPT_KINDS:
            continue
        for entry in task.get("items") or ():
            if isinstance(entry, dict) and entry.get("type") == "position":
                total = (total or Decimal(0)) + Decimal(str(entry.get("amount", 0)))
        payments += [str(p.get("type")) for p in task.get("payments") or () if isinstance(p, dict)]
    documents: list[int] = []
    reconciliation: dict[str, Any] | None = None
    for result in job.task_results:
        out = result.result if isinstance(result.result, dict) else {}
        params = out.get("fiscalParams")
        number = params.get("fiscalDocumentNumber") if isinstance(params, dict) else None
        if isinstance(number, int):
            documents.append(number)
        if isinstance(out.get("shiftReconciliation"), dict):
            reconciliation = out["shiftReconciliation"]
    report = (
        selftest.judge([r.to_json() for r in job.task_results])
        if selftest.is_selftest(job.uuid) and job.finished
        else None
    )
    return JobLine(kinds, total, _unique(payments), documents, reconciliation, report)


RECEIPT_KINDS: Final = frozenset({"sell", "sellReturn", "buy", "buyReturn"})


@dataclass(frozen=True, slots=True)
class JobDetail:
    """One job with its history, its request and its results, pretty-printed."""

    job: JobRecord
    history: list[HistoryEntry]
    request_text: str
    result_text: str
    log: list[LogLine]  # kept log lines naming the job: what the worker and recovery found
    line: JobLine
    marking: MarkingAnswer | None = None  # a sample code check from the page: its answer


MARKING_CHECK_PREFIX: Final = "web-marking-check-"


@dataclass(frozen=True, slots=True)
class MarkingAnswer:
    """A sample code check in words: each part a text key and its params; None when the
    job has not run that far. `error` is the register's refusal, as the job recorded it."""

    fn: tuple[str, dict[str, str]] | None
    ism: tuple[str, dict[str, str]] | None
    error: str | None


def marking_answer(job: JobRecord) -> MarkingAnswer | None:
    """Pure: read a sample check's results (begin, status, decline); None for other jobs."""
    if not job.uuid.startswith(MARKING_CHECK_PREFIX):
        return None
    results = [r.result if isinstance(r.result, dict) else {} for r in job.task_results]
    errors = [r.error_description for r in job.task_results if r.error_description]
    fn: tuple[str, dict[str, str]] | None = None
    offline = results[0].get("offlineValidation") if results else None
    if isinstance(offline, dict):
        if not offline.get("fmCheck"):
            fn = ("marking_fn_not_checked", {"reason": str(offline.get("fmCheckErrorReason"))})
        elif offline.get("fmCheckResult"):
            fn = ("marking_fn_positive", {})
        else:
            fn = ("marking_fn_negative", {})
    ism: tuple[str, dict[str, str]] | None = None
    status = results[1] if len(results) > 1 else {}
    online = status.get("onlineValidation")
    info = online.get("itemInfoCheckResult") if isinstance(online, dict) else None
    error = status.get("driverError")
    if isinstance(error, dict) and error.get("code"):
        ism = ("marking_ism_silent", {"why": str(error.get("description") or error.get("code"))})
    elif isinstance(info, dict):
        confirmed = all(
            info.get(k)
            for k in (
                "imcCheckFlag",
                "imcCheckResult",
                "imcStatusInfo",
                "imcEstimatedStatusCorrect",
            )
        )
        refused = (info.get("imcCheckFlag") and not info.get("imcCheckResult")) or (
            info.get("imcStatusInfo") and not info.get("imcEstimatedStatusCorrect")
        )
        if confirmed:
            ism = ("marking_ism_positive", {})
        elif refused:
            ism = ("marking_ism_negative", {})
        else:
            ism = (
                "marking_ism_silent",
                {"why": "autonomous" if info.get("ecrStandAloneFlag") else "—"},
            )
    return MarkingAnswer(fn, ism, errors[0] if errors else None)


JOB_LOG_LINES: Final = 30


async def job_detail(journal: Journal, uuid: str, logs: RecentLogs | None) -> JobDetail:
    """JobNotFound when there is no such job."""
    job = await journal.get(uuid)
    history = await journal.history(uuid)
    try:
        request_text = json.dumps(json.loads(job.tasks_json), ensure_ascii=False, indent=2)
    except ValueError:
        request_text = job.tasks_json
    result_text = json.dumps(
        [r.to_json() for r in job.task_results], ensure_ascii=False, indent=2, default=str
    )
    log = [ln for ln in logs.lines() if uuid in ln.message][-JOB_LOG_LINES:] if logs else []
    return JobDetail(
        job, history, request_text, result_text, log, job_line(job), marking_answer(job)
    )


def job_summary(job: JobRecord) -> dict[str, Any]:
    """A job without its request body (customer data stays out of the bundle)."""
    return {
        "number": job.seq,
        "uuid": job.uuid,
        "source": job.source,
        "state": job.state.value,
        "attempts": job.attempts,
        "error": job.error_text,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


async def metric_families(
    source: StatusSource,
    journal: Journal,
    now: dt.datetime,
    extra: list[metrics.Family],
) -> list[metrics.Family]:
    """Every metric of the box; a value the status does not carry is left out."""
    status, error = await read_app_status(source)
    view = read_status(status, now)
    counts = await journal_call(journal.counts())
    outbox = await journal_call(journal.outbox_depth())
    latency = await journal_call(journal.latency_samples(now - CHART_WINDOW))
    blocked = await journal_call(journal.is_blocked())
    g = metrics.gauge

    def flag(value: bool | None) -> float | None:
        return None if value is None else float(value)

    families = [
        g("status_ok", "1 when the box could read its own status", 0.0 if error else 1.0),
        metrics.Family(
            "info",
            "Version and box id",
            "gauge",
            (({"version": view.version or "", "box_id": view.box_id or ""}, 1.0),),
        ),
        g(
            "register_connected",
            "1 while the register link is up",
            None if view.register_state is None else float(view.register_state == "connected"),
        ),
        metrics.Family(
            "jobs",
            "Jobs in the journal by state",
            "gauge",
            tuple(({"state": s.value}, float(n)) for s, n in counts.items()),
        ),
        g(
            "queue_depth",
            "Jobs queued, in progress or blocked",
            float(
                sum(counts[s] for s in (JobState.QUEUED, JobState.IN_PROGRESS, JobState.BLOCKED))
            ),
        ),
        g("queue_blocked", "1 while a blocked job stops the queue", float(blocked is not None)),
        g("queue_paused", "1 while printing is paused", float(bool(view.queue_paused))),
        g("outbox_pending", "Results and events waiting for delivery", float(outbox)),
        g("paper_present", "1 when the register has paper", flag(view.paper_present)),
        g("cover_open", "1 when the register's cover is open", flag(view.cover_open)),
        g(
            "shift_age_seconds",
            "How long the shift has been open",
            None if view.shift_age_h is None else view.shift_age_h * 3600,
        ),
        g("fn_days_left", "Days until the fiscal storage expires", view.fn_days_left),
        g("ofd_unsent_documents", "Documents not yet acknowledged by the OFD", view.ofd_unsent),
        g(
            "marking_unsent_notifications",
            "Marking notifications not yet sent to the marking system (ОИСМ)",
            view.marking_unsent,
        ),
        g(
            "marking_ism_reachable",
            "1 when the marking system answered the last code check",
            flag(view.ism_reachable),
        ),
        g(
            "clock_synchronised",
            "1 when the box clock is NTP-synchronised",
            flag(view.clock_synchronised),
        ),
        g("register_clock_drift_seconds", "Register clock minus box clock", view.clock_drift_s),
        metrics.Family(
            "job_latency_24h_seconds",
            "Seconds from accepted to done over the last 24 hours (nearest rank)",
            "gauge",
            tuple(
                ({"quantile": f"{q:g}"}, v)
                for q, v in metrics.quantiles([s for _, s in latency], LATENCY_QUANTILES)
            ),
        ),
        g("jobs_done_24h", "Jobs done in the last 24 hours", float(len(latency))),
    ]
    return families + extra
