"""The ATOL web-server compatible HTTP API [ATOL] (docs/api.md), on the box's small HTTP
server (`runtime.http_server`).

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

from gateway.atol.names import NameMapping
from gateway.atol.tasks import describe
from gateway.config.schema import HttpConfig
from gateway.domain.errors import GatewayError, InvalidJobState, JobNotFound, ValidationError
from gateway.ingress.auth import Refusal, TokenCheck
from gateway.journal import JobRecord, JobState, Journal, intake
from gateway.journal.intake import DiskFull, Intake, Outcome, answer_for
from gateway.runtime.http_server import HttpServer, Request, Response

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
Route = Callable[["_Api", Request], Awaitable[Response]]

_T = TypeVar("_T")
# One encoder each: json.dumps with options builds a new encoder on every call.
_dumps = json.JSONEncoder(ensure_ascii=False).encode
_dumps_lenient = json.JSONEncoder(ensure_ascii=False, default=str).encode


@dataclass(frozen=True, slots=True)
class _Api:
    """What the handlers need."""

    journal: Journal
    health: Health
    tokens: TokenCheck
    intake: Intake


# --- responses ---------------------------------------------------------------------------


def _json(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON answer in UTF-8, Cyrillic left as is."""
    return Response(status, _dumps(body).encode(), headers=headers or {})


def _error(
    status: int,
    description: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The ingress error body: {"error": {"code", "description", "field"?}}."""
    error: dict[str, object] = {"code": status, "description": description}
    if field:
        error["field"] = field
    return _json({"error": error}, status, headers)


def _refusal(err: Exception) -> Response:
    """The intake's answer to a failure, as an HTTP error."""
    answer = answer_for(err)
    return _error(answer.status, answer.text, field=answer.field or None)


def _server_refusal(status: int, text: str) -> Response:
    """The server's own refusals (a malformed message, a body too large or too slow)."""
    return _error(status, text)


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


def _media_type(request: Request) -> tuple[str, str | None]:
    """The Content-Type's media type (lower case; none sent reads as octet-stream) and its
    charset parameter."""
    value = request.headers.get("content-type", "")
    media, *params = value.split(";")
    charset = None
    for param in params:
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = param_value.strip().strip('"')
    return media.strip().lower() or "application/octet-stream", charset


def _is_json(media: str) -> bool:
    """application/json or application/*+json."""
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


# --- dispatch ----------------------------------------------------------------------------


async def _dispatch(api: _Api, request: Request) -> Response:
    """Every failure becomes a JSON error; a traceback goes to the log, never to the client."""
    try:
        return await _route(api, request)
    except (intake.JournalUnavailable, DiskFull) as err:
        _LOGGER.error(
            "Journal trouble on %s %s: %s", request.method, request.raw_path, err, exc_info=err
        )
        return _refusal(err)
    except Exception:
        _LOGGER.exception("Unexpected error on %s %s", request.method, request.raw_path)
        return _error(500, "internal error; see the box log")


async def _route(api: _Api, request: Request) -> Response:
    """The route's handler, behind the bearer token unless the path is public."""
    methods = ROUTES.get(request.path)
    if methods is None and request.path.startswith(ITEM_PREFIX):
        uuid = request.path[len(ITEM_PREFIX) :]
        methods = ITEM_ROUTES if uuid and "/" not in uuid else None
    if methods is None:
        return _error(404, "not found")
    handler = methods.get(request.method)
    if handler is None:
        allowed = ",".join(sorted({*methods, "HEAD"} if "GET" in methods else methods))
        return _error(405, "method not allowed", headers={"Allow": allowed})
    if request.path in PUBLIC_PATHS:
        return await handler(api, request)
    verdict = api.tokens.check(request.headers.get("authorization"), request.peer)
    if verdict.allowed:
        return await handler(api, request)
    refusal = verdict.refusal or Refusal.MISSING
    _LOGGER.warning(
        "Refused %s %s from %s: %s",
        request.method,
        request.raw_path,
        request.peer or "?",
        refusal.value,
    )
    challenge = 'Bearer realm="fiscal-gateway"'
    if refusal is Refusal.UNKNOWN:
        challenge += ', error="invalid_token"'
    return _error(401, "a valid bearer token is required", headers={"WWW-Authenticate": challenge})


# --- routes ------------------------------------------------------------------------------


async def _post_request(api: _Api, request: Request) -> Response:
    """POST /api/v2/requests: validate, commit, and only then 201. The server has read the
    body within `max_body_bytes` and BODY_TIMEOUT_S."""
    media, charset = _media_type(request)
    if not _is_json(media):
        return _error(415, f"send the body as application/json, not {media}")
    if charset and charset.lower() not in ("utf-8", "utf8"):
        return _error(415, f"the body must be UTF-8, not {charset}")
    try:
        parsed = api.intake.parse(request.body)
        blocked = await _journal(api.journal.is_blocked())
        submitted = await api.intake.submit(parsed, source="http")
    except ValidationError as err:
        return _refusal(err)
    except (DiskFull, intake.JournalUnavailable) as err:
        _LOGGER.error("Request from %s not queued: %s", request.peer or "?", err)
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
            request.peer or "?",
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


def _uuid(request: Request) -> str:
    return request.path[len(ITEM_PREFIX) :]


async def _get_request(api: _Api, request: Request) -> Response:
    """GET /api/v2/requests/{uuid}: one result per task."""
    try:
        job = await _journal(api.journal.get(_uuid(request)))
    except JobNotFound:
        return _error(404, "no request with this uuid")
    return _json({"results": _results(job)})


async def _delete_request(api: _Api, request: Request) -> Response:
    """DELETE /api/v2/requests/{uuid}: cancel a request that has not started."""
    uuid = _uuid(request)
    try:
        job = await _journal(api.journal.cancel(uuid))
    except JobNotFound:
        return _error(404, "no request with this uuid")
    except InvalidJobState:
        return _error(409, "the request has started or finished already; it cannot be canceled")
    _LOGGER.info("Request %s (number %d) canceled from %s", uuid, job.seq, request.peer or "?")
    return _json({"uuid": job.uuid, "number": job.seq, "results": _results(job)})


SEQ_MAX = 2**63 - 1


async def _list_requests(api: _Api, request: Request) -> Response:
    """GET /api/v2/requests?limit=&before=: newest first (for technicians)."""
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


async def _health(api: _Api, _request: Request) -> Response:
    """GET /health: 200 for ok or degraded, 503 for down."""
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
    return Response(status, _dumps_lenient(body).encode())


@functools.cache
def _spec_bytes() -> bytes:
    """The packaged OpenAPI document (read once)."""
    return resources.files("gateway.ingress").joinpath("openapi.json").read_bytes()


async def _openapi(_api: _Api, _request: Request) -> Response:
    """GET /api/openapi.json: the OpenAPI 3 description of this API."""
    async with asyncio.timeout(SPEC_TIMEOUT_S):
        spec = await asyncio.to_thread(_spec_bytes)
    return Response(200, spec)


# path -> method -> handler; the OpenAPI description documents exactly these.
ROUTES: Final[Mapping[str, Mapping[str, Route]]] = {
    "/api/v2/requests": {"POST": _post_request, "GET": _list_requests},
    "/health": {"GET": _health},
    "/api/openapi.json": {"GET": _openapi},
}
ITEM_PREFIX: Final = "/api/v2/requests/"
ITEM_ROUTES: Final[Mapping[str, Route]] = {"GET": _get_request, "DELETE": _delete_request}
ITEM_PATH: Final = ITEM_PREFIX + "{uuid}"  # as the description names it


def _ssl_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server TLS context (blocking: run it in the executor)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


class HttpApi:
    """The API server: listens (HTTP or HTTPS), answers, stops."""

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
        tokens = TokenCheck.from_config(
            config.tokens, allow_loopback=config.allow_loopback_without_token
        )
        submit = Intake(
            journal, wake=on_submitted, mapping=mapping, max_bytes=config.max_body_bytes
        )
        self._api = _Api(journal, health, tokens, submit)
        self._server: HttpServer | None = None
        self.port: int | None = None  # the bound port once listening (listen port 0 allowed)

    async def handle(self, request: Request) -> Response:
        """One request's answer (the server calls this; so may a test)."""
        return await _dispatch(self._api, request)

    @property
    def scheme(self) -> str:
        """http or https."""
        return "https" if self.config.tls is not None else "http"

    async def start(self) -> None:
        """Listen; returns once the socket is bound."""
        if self._server is not None:
            raise RuntimeError("the HTTP API is started already")
        ssl_ctx = await self._load_tls()
        listen = self.config.listen
        server = HttpServer(
            self.handle,
            _server_refusal,
            max_body_bytes=self.config.max_body_bytes,
            body_timeout_s=BODY_TIMEOUT_S,
            name="HTTP API",
        )
        self.port = await server.start(
            listen, key="http.listen", code="http_listen", ssl_context=ssl_ctx
        )
        self._server = server
        _LOGGER.info("HTTP API listening on %s://%s:%d", self.scheme, listen.host, self.port)

    async def stop(self) -> None:
        """Stop listening; requests in flight get STOP_TIMEOUT_S to finish."""
        server, self._server = self._server, None
        if server is None:
            return
        await server.stop(STOP_TIMEOUT_S)
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
