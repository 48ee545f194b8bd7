"""The ATOL web-server compatible HTTP API (DESIGN §3) on aiohttp.

A request is answered 201 only after its job row is committed; the same uuid again is 409
and nothing is queued twice. Tasks run later in the worker; GET shows their status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from gateway.config import HttpConfig
from gateway.errors import DuplicateJob, InvalidJobState, JobNotFound, JournalError, ValidationError
from gateway.ingress.auth import TokenCheck
from gateway.journal import Journal
from gateway.tasks import NameMapping, parse_request

_LOGGER = logging.getLogger(__name__)

START_TIMEOUT_S = 15.0
JOURNAL_TIMEOUT_S = 30.0

Health = Callable[[], Awaitable[dict[str, object]]]


def _error(status: int, description: str, **extra: Any) -> web.Response:
    body = {"error": {"code": status, "description": description, **extra}}
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _json(body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


class HttpApi:
    """The API server: routes, auth, start/stop."""

    def __init__(
        self,
        *,
        config: HttpConfig,
        journal: Journal,
        mapping: NameMapping,
        health: Health,
        on_submitted: Callable[[str], None],
    ) -> None:
        self.config = config
        self._journal = journal
        self._mapping = mapping
        self._health = health
        self._on_submitted = on_submitted
        self._auth = TokenCheck.build(
            (
                (t.name, t.token.reveal() if t.token else None, t.token_sha256)
                for t in config.tokens
            ),
            config.allow_loopback_without_token,
        )
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def build_app(self) -> web.Application:
        """The aiohttp application (tests use it directly)."""
        app = web.Application(
            client_max_size=self.config.max_body_bytes, middlewares=[self._errors, self._authorize]
        )
        app.router.add_post("/api/v2/requests", self.post_request)
        app.router.add_get("/api/v2/requests", self.list_requests)
        app.router.add_get("/api/v2/requests/{uuid}", self.get_request)
        app.router.add_delete("/api/v2/requests/{uuid}", self.delete_request)
        app.router.add_get("/health", self.health)
        app.router.add_get("/api/openapi.json", self.openapi)
        return app

    async def start(self) -> None:
        """Listen; returns once bound."""
        ssl_ctx = None
        if self.config.tls is not None:
            tls = self.config.tls
            ssl_ctx = await asyncio.to_thread(_ssl_context, str(tls.cert_file), str(tls.key_file))
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        async with asyncio.timeout(START_TIMEOUT_S):
            await self._runner.setup()
            site = web.TCPSite(
                self._runner, self.config.listen.host, self.config.listen.port, ssl_context=ssl_ctx
            )
            await site.start()
        server = site._server  # the bound port, for listen port 0
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.listen.port
        _LOGGER.info(
            "HTTP API on %s://%s:%s",
            "https" if ssl_ctx else "http",
            self.config.listen.host,
            self.port,
        )

    async def stop(self) -> None:
        """Stop listening; requests in flight finish."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- middlewares ------------------------------------------------------------------------

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body is larger than {self.config.max_body_bytes} bytes")
        except web.HTTPException:
            raise
        except JournalError as err:
            _LOGGER.error("Journal error on %s %s: %s", request.method, request.path, err)
            return _error(503, "the journal is unavailable; retry with the same uuid")
        except Exception:
            _LOGGER.exception("Unexpected error on %s %s", request.method, request.path)
            return _error(500, "internal error; see the box log")

    @web.middleware
    async def _authorize(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path in ("/health", "/api/openapi.json"):
            return await handler(request)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        host = peer[0] if isinstance(peer, tuple) else None
        client = self._auth.client(request.headers.get("Authorization"), host)
        if client is None:
            _LOGGER.warning("Refused API request from %s: missing or wrong token", host)
            resp = _error(401, "a valid bearer token is required")
            resp.headers["WWW-Authenticate"] = "Bearer"
            return resp
        return await handler(request)

    # --- routes ----------------------------------------------------------------------------

    async def post_request(self, request: web.Request) -> web.Response:
        """POST /api/v2/requests: validate, commit, then 201."""
        if request.content_type != "application/json":
            return _error(415, "send the request as application/json")
        body = await request.read()
        try:
            parsed = parse_request(body, self._mapping, max_bytes=self.config.max_body_bytes)
        except ValidationError as err:
            if err.code == "too_large":
                return _error(413, err.message)
            return _error(400, err.message, field=err.field)
        try:
            async with asyncio.timeout(JOURNAL_TIMEOUT_S):
                job = await self._journal.submit(
                    parsed.uuid, parsed.tasks_json, len(parsed.tasks), source="http"
                )
        except DuplicateJob as dup:
            error = {"code": 409, "description": "request with this uuid already exists"}
            return _json(
                {"error": error, "uuid": parsed.uuid, "number": getattr(dup.record, "seq", None)},
                409,
            )
        self._on_submitted(job.uuid)
        blocked = await self._journal.is_blocked()
        return _json(
            {
                "uuid": job.uuid,
                "number": job.seq,
                "isBlocked": blocked is not None,
                "blockedUUID": blocked.uuid if blocked else None,
                "blockReason": blocked.error_text if blocked else None,
            },
            status=201,
        )

    async def get_request(self, request: web.Request) -> web.Response:
        """GET /api/v2/requests/{uuid}: one result per task."""
        try:
            job = await self._journal.get(request.match_info["uuid"])
        except JobNotFound:
            return _error(404, "no request with this uuid")
        body = job.atol_results()
        del body["uuid"]
        return _json(body)

    async def list_requests(self, request: web.Request) -> web.Response:
        """GET /api/v2/requests: newest first (for technicians)."""
        try:
            limit = max(1, min(500, int(request.query.get("limit", "50"))))
        except ValueError:
            return _error(400, "limit must be a number", field="limit")
        jobs = await self._journal.list_jobs(limit=limit)
        return _json(
            {"requests": [{"uuid": j.uuid, "number": j.seq, "state": j.state.value} for j in jobs]}
        )

    async def delete_request(self, request: web.Request) -> web.Response:
        """DELETE /api/v2/requests/{uuid}: cancel a job that has not started."""
        try:
            job = await self._journal.cancel(request.match_info["uuid"])
        except JobNotFound:
            return _error(404, "no request with this uuid")
        except InvalidJobState:
            return _error(409, "the request has already started or finished; it cannot be canceled")
        return _json({"uuid": job.uuid, "number": job.seq, "state": job.state.value})

    async def health(self, request: web.Request) -> web.Response:
        """GET /health: ok | degraded (200) or down (503)."""
        body = await self._health()
        return _json(body, status=503 if body.get("status") == "down" else 200)

    async def openapi(self, request: web.Request) -> web.Response:
        """The OpenAPI 3 description of this API."""
        text = (
            resources.files("gateway.ingress").joinpath("openapi.json").read_text(encoding="utf-8")
        )
        return web.Response(text=text, content_type="application/json")


def _ssl_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx
