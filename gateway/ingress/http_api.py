"""The ATOL web-server compatible HTTP API [ATOL] on aiohttp (docs/api.md).

A request is answered 201 only after its job row is committed; the same uuid again is 409
and nothing is queued twice. Every task, queries included, runs later in the worker; GET
reports what the journal holds. Every answer is JSON; errors carry an HTTP-like code.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from gateway.atol.names import NameMapping
from gateway.atol.tasks import describe
from gateway.config.schema import HttpConfig
from gateway.domain.errors import GatewayError, InvalidJobState, JobNotFound, ValidationError
from gateway.ingress.auth import Refusal, TokenCheck
from gateway.journal import JobRecord, JobState, Journal, intake
from gateway.journal.intake import DiskFull, Intake, Outcome, answer_for
from gateway.runtime import serving

_LOGGER = logging.getLogger(__name__)

START_TIMEOUT_S: Final = 15.0
STOP_TIMEOUT_S: Final = 15.0  # requests in flight get this long to finish
BODY_TIMEOUT_S: Final = 30.0
HEALTH_TIMEOUT_S: Final = 10.0
SPEC_TIMEOUT_S: Final = 10.0
LIST_LIMIT_DEFAULT: Final = 50
LIST_LIMIT_MAX: Final = 500

PUBLIC_PATHS: Final = frozenset({"/health", "/api/openapi.json"})
HEALTH_STATUSES: Final = ("ok", "degraded", "down")
DUPLICATE_TEXT: Final = "request with this uuid already exists"

Health = Callable[[], Awaitable[Mapping[str, object]]]
OnSubmitted = Callable[[str], None]

_T = TypeVar("_T")
# One encoder each: json.dumps with options builds a new encoder on every call.
_dumps = json.JSONEncoder(ensure_ascii=False).encode
_dumps_lenient = json.JSONEncoder(ensure_ascii=False, default=str).encode


@dataclass(frozen=True, slots=True)
class _Api:
    """What the handlers need, stored on the application."""

    config: HttpConfig
    journal: Journal
    mapping: NameMapping
    health: Health
    tokens: TokenCheck
    intake: Intake


API: Final = web.AppKey("fiscal_gateway_api", _Api)


# --- responses ---------------------------------------------------------------------------


def _json(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer in UTF-8, Cyrillic left as is."""
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def _error(
    status: int,
    description: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The ingress error body: {"error": {"code", "description", "field"?}}."""
    error: dict[str, object] = {"code": status, "description": description}
    if field:
        error["field"] = field
    return _json({"error": error}, status, headers)


def _refusal(err: Exception) -> web.Response:
    """The intake's answer to a failure, as an HTTP error."""
    answer = answer_for(err)
    return _error(answer.status, answer.text, field=answer.field or None)


def _too_large(max_bytes: int) -> web.Response:
    """413 naming the limit."""
    return _error(413, f"request body is larger than {max_bytes} bytes")


def _results(job: JobRecord) -> list[dict[str, Any]]:
    """ATOL `results`; the current task of a running job shows inProgress."""
    results: list[dict[str, Any]] = job.atol_results()["results"]
    current = job.current_task
    running = job.state is JobState.IN_PROGRESS and 0 <= current < len(results)
    if running and results[current]["status"] == "wait":
        results[current]["status"] = "inProgress"
    return results


def _summary(job: JobRecord) -> dict[str, object]:
    """One line of the request list."""
    return {
        "uuid": job.uuid,
        "number": job.seq,
        "state": job.state.value,
        "source": job.source,
        "tasks": len(job.task_results),
        "createdAt": job.created_at.isoformat(),
        "finishedAt": job.finished_at.isoformat() if job.finished_at else None,
        "error": None
        if job.error_code is None
        else {"code": job.error_code, "description": job.error_text or ""},
    }


async def _journal(call: Awaitable[_T]) -> _T:
    """Await a journal read or change under the intake's timeout; trouble -> 503 (or 507)."""
    try:
        async with asyncio.timeout(intake.JOURNAL_TIMEOUT_S):
            return await call
    except (JobNotFound, InvalidJobState):
        raise
    except Exception as err:
        if intake.is_disk_full(err):
            raise DiskFull(intake.DISK_FULL_TEXT) from err
        raise intake.JournalUnavailable(f"{type(err).__name__}: {err}") from err


def _peer(request: web.Request) -> str | None:
    """The transport's peer address (never a forwarding header)."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple | list) and peer:
        return str(peer[0])
    return None


def _logged_path(request: web.Request) -> str:
    """The path as sent, still percent-encoded: a client cannot write line breaks into the log."""
    return request.rel_url.raw_path


def _is_json(content_type: str) -> bool:
    """application/json or application/*+json."""
    ctype = content_type.lower()
    return ctype == "application/json" or (
        ctype.startswith("application/") and ctype.endswith("+json")
    )


# --- middlewares -------------------------------------------------------------------------


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a JSON error; a traceback goes to the log, never to the client."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if isinstance(exc, web.HTTPRequestEntityTooLarge):
            return _too_large(request.app[API].config.max_body_bytes)
        kept = (hdrs.ALLOW, hdrs.WWW_AUTHENTICATE)
        keep = {str(name): exc.headers[name] for name in kept if name in exc.headers}
        return _error(exc.status, exc.reason.lower(), headers=keep)
    except (intake.JournalUnavailable, DiskFull) as err:
        _LOGGER.error(
            "Journal trouble on %s %s: %s", request.method, _logged_path(request), err, exc_info=err
        )
        return _refusal(err)
    except Exception:
        _LOGGER.exception("Unexpected error on %s %s", request.method, _logged_path(request))
        return _error(500, "internal error; see the box log")


@web.middleware
async def _authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer token unless the path is public or a loopback caller is let in without one."""
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    peer = _peer(request)
    verdict = request.app[API].tokens.check(request.headers.get(hdrs.AUTHORIZATION), peer)
    if verdict.allowed:
        return await handler(request)
    refusal = verdict.refusal or Refusal.MISSING
    _LOGGER.warning(
        "Refused %s %s from %s: %s",
        request.method,
        _logged_path(request),
        peer or "?",
        refusal.value,
    )
    challenge = 'Bearer realm="fiscal-gateway"'
    if refusal is Refusal.UNKNOWN:
        challenge += ', error="invalid_token"'
    return _error(
        401, "a valid bearer token is required", headers={hdrs.WWW_AUTHENTICATE: challenge}
    )


# --- routes ------------------------------------------------------------------------------


async def _post_request(request: web.Request) -> web.Response:
    """POST /api/v2/requests: validate, commit, and only then 201."""
    api = request.app[API]
    max_bytes = api.config.max_body_bytes
    if not _is_json(request.content_type):
        return _error(415, f"send the body as application/json, not {request.content_type}")
    if request.charset and request.charset.lower() not in ("utf-8", "utf8"):
        return _error(415, f"the body must be UTF-8, not {request.charset}")
    if request.content_length is not None and request.content_length > max_bytes:
        return _too_large(max_bytes)
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _too_large(max_bytes)
    except TimeoutError:
        return _error(408, f"the request body did not arrive within {BODY_TIMEOUT_S:g} s")
    except (ConnectionError, HttpProcessingError) as err:
        _LOGGER.info("Request body from %s cut off: %s", _peer(request) or "?", err)
        return _error(400, "the request body was cut off or malformed")
    try:
        parsed = api.intake.parse(body)
        blocked = await _journal(api.journal.is_blocked())
        submitted = await api.intake.submit(parsed, source="http")
    except ValidationError as err:
        return _refusal(err)
    except (DiskFull, intake.JournalUnavailable) as err:
        _LOGGER.error("Request from %s not queued: %s", _peer(request) or "?", err)
        return _refusal(err)
    if submitted.outcome is Outcome.DUPLICATE:
        _LOGGER.info("Request %s is known already; nothing queued", parsed.uuid)
        error = {"code": 409, "description": DUPLICATE_TEXT}
        number = submitted.job.seq if submitted.job is not None else None
        return _json({"error": error, "uuid": parsed.uuid, "number": number}, 409)
    job = submitted.job
    assert job is not None  # ACCEPTED always carries the committed job
    if _LOGGER.isEnabledFor(logging.INFO):  # the summary costs more than the log call
        _LOGGER.info(
            "Queued request %s as number %d from %s: %s",
            job.uuid,
            job.seq,
            _peer(request) or "?",
            "; ".join(describe(t) for t in parsed.tasks),
        )
    return _json(
        {
            "uuid": job.uuid,
            "number": job.seq,
            "isBlocked": blocked is not None,
            "blockedUUID": blocked.uuid if blocked is not None else None,
            "blockReason": blocked.error_text if blocked is not None else None,
        },
        201,
    )


async def _get_request(request: web.Request) -> web.Response:
    """GET /api/v2/requests/{uuid}: one result per task."""
    api = request.app[API]
    try:
        job = await _journal(api.journal.get(request.match_info["uuid"]))
    except JobNotFound:
        return _error(404, "no request with this uuid")
    return _json({"results": _results(job)})


async def _delete_request(request: web.Request) -> web.Response:
    """DELETE /api/v2/requests/{uuid}: cancel a request that has not started."""
    api = request.app[API]
    uuid = request.match_info["uuid"]
    try:
        job = await _journal(api.journal.cancel(uuid))
    except JobNotFound:
        return _error(404, "no request with this uuid")
    except InvalidJobState:
        return _error(409, "the request has started or finished already; it cannot be canceled")
    _LOGGER.info("Request %s (number %d) canceled from %s", uuid, job.seq, _peer(request) or "?")
    return _json({"uuid": job.uuid, "number": job.seq, "results": _results(job)})


SEQ_MAX = 2**63 - 1


async def _list_requests(request: web.Request) -> web.Response:
    """GET /api/v2/requests?limit=&before=: newest first (for technicians)."""
    api = request.app[API]
    try:
        limit = int(request.query.get("limit", LIST_LIMIT_DEFAULT))
    except ValueError:
        return _error(400, "must be a whole number", field="limit")
    if not 1 <= limit <= LIST_LIMIT_MAX:
        return _error(400, f"must be 1 to {LIST_LIMIT_MAX}", field="limit")
    before: int | None = None
    if "before" in request.query:
        try:
            before = int(request.query["before"])
        except ValueError:
            return _error(400, "must be a whole number", field="before")
        if not 1 <= before <= SEQ_MAX:  # a request number is a SQLite integer
            return _error(400, f"must be 1 to {SEQ_MAX}", field="before")
    jobs = await _journal(api.journal.list_jobs(limit=limit, before_seq=before))
    return _json({"requests": [_summary(j) for j in jobs]})


async def _health(request: web.Request) -> web.Response:
    """GET /health: 200 for ok or degraded, 503 for down."""
    api = request.app[API]
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            body = dict(await api.health())
    except Exception:
        _LOGGER.exception("The health check failed")
        body = {"status": "down", "error": "the health check failed; see the box log"}
    if body.get("status") not in HEALTH_STATUSES:
        _LOGGER.error("The health check gave no valid status: %r", body.get("status"))
        body["status"] = "down"
    status = 503 if body["status"] == "down" else 200
    return web.json_response(body, status=status, dumps=_dumps_lenient)


@functools.cache
def _spec_bytes() -> bytes:
    """The packaged OpenAPI document (read once)."""
    return resources.files("gateway.ingress").joinpath("openapi.json").read_bytes()


async def _openapi(request: web.Request) -> web.Response:
    """GET /api/openapi.json: the OpenAPI 3 description of this API."""
    async with asyncio.timeout(SPEC_TIMEOUT_S):
        spec = await asyncio.to_thread(_spec_bytes)
    return web.Response(body=spec, content_type="application/json", charset="utf-8")


# --- application and server --------------------------------------------------------------


def build_app(
    *,
    config: HttpConfig,
    journal: Journal,
    mapping: NameMapping,
    health: Health,
    on_submitted: OnSubmitted,
) -> web.Application:
    """The aiohttp application: routes, auth and error middlewares."""
    tokens = TokenCheck.from_config(
        config.tokens, allow_loopback=config.allow_loopback_without_token
    )
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=(_errors, _authorize))
    submit = Intake(journal, wake=on_submitted, mapping=mapping, max_bytes=config.max_body_bytes)
    app[API] = _Api(config, journal, mapping, health, tokens, submit)
    app.router.add_post("/api/v2/requests", _post_request)
    app.router.add_get("/api/v2/requests", _list_requests)
    app.router.add_get("/api/v2/requests/{uuid}", _get_request)
    app.router.add_delete("/api/v2/requests/{uuid}", _delete_request)
    app.router.add_get("/health", _health)
    app.router.add_get("/api/openapi.json", _openapi)
    return app


def _ssl_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server TLS context (blocking: run it in the executor)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


class HttpApi:
    """The API server: builds the app, listens (HTTP or HTTPS), stops."""

    def __init__(
        self,
        *,
        config: HttpConfig,
        journal: Journal,
        mapping: NameMapping,
        health: Health,
        on_submitted: OnSubmitted,
    ) -> None:
        self.config = config
        self._journal = journal
        self._mapping = mapping
        self._health = health
        self._on_submitted = on_submitted
        self._runner: web.AppRunner | None = None
        self.port: int | None = None  # the bound port once listening (listen port 0 allowed)

    def build_app(self) -> web.Application:
        """The aiohttp application (tests may serve it themselves)."""
        return build_app(
            config=self.config,
            journal=self._journal,
            mapping=self._mapping,
            health=self._health,
            on_submitted=self._on_submitted,
        )

    @property
    def scheme(self) -> str:
        """http or https."""
        return "https" if self.config.tls is not None else "http"

    async def start(self) -> None:
        """Listen; returns once the socket is bound."""
        if self._runner is not None:
            raise RuntimeError("the HTTP API is started already")
        ssl_ctx = await self._load_tls()
        listen = self.config.listen
        runner, port = await serving.listen(
            self.build_app(),
            listen,
            key="http.listen",
            code="http_listen",
            stop_timeout_s=STOP_TIMEOUT_S,
            ssl_context=ssl_ctx,
        )
        self._runner = runner
        self.port = port
        _LOGGER.info("HTTP API listening on %s://%s:%d", self.scheme, listen.host, self.port)

    async def stop(self) -> None:
        """Stop listening; requests in flight get STOP_TIMEOUT_S to finish."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await serving.stop(runner, "The HTTP API", STOP_TIMEOUT_S)
        self.port = None
        _LOGGER.info("HTTP API stopped")

    async def _load_tls(self) -> ssl.SSLContext | None:
        """The TLS context from http.tls, built in the executor; None for plain HTTP."""
        tls = self.config.tls
        if tls is None:
            return None
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                return await asyncio.to_thread(_ssl_context, tls.cert_file, tls.key_file)
        except (OSError, ssl.SSLError) as err:
            raise GatewayError(
                f"http.tls: cannot load {tls.cert_file} with key {tls.key_file}: {err}",
                code="http_tls",
                hint="check that both files exist, are readable, and that the key fits the cert",
            ) from err
