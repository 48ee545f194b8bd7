"""The KKMServer-compatible API on aiohttp: `POST /Execute` and `/Execute/sync` [KKMSERVER].

Basic auth against `kkmserver.users`. A command the register runs becomes a job through the
one intake (`source` http): the IdCommand is its uuid, so a repeated IdCommand prints nothing
and answers the same job. `/Execute` answers once the job is committed (Status 4, then poll
`GetRezult`); `/Execute/sync` waits for the result up to the command's Timeout (at most
MAX_SYNC_WAIT_S) and otherwise answers like `/Execute`. Refusals are KKMServer's shape,
`Status: 2` with `Error` naming the field, with HTTP 200 as KKMServer answers them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from gateway.atol.decimal_json import dumps
from gateway.atol.names import NameMapping
from gateway.atol.tasks import describe
from gateway.config.schema import KkmServerConfig, KkmUserConfig
from gateway.domain.errors import JobNotFound, ValidationError
from gateway.ingress.kkmserver.parse import Request, kkm_field, kkm_reason, read_command
from gateway.ingress.kkmserver.results import base, job_answer
from gateway.ingress.kkmserver.wire import Answer, Command, ListUnit, Status
from gateway.journal import FINISHED, JobRecord, JobState, Journal, intake
from gateway.journal.intake import DiskFull, Intake, JournalUnavailable, Outcome
from gateway.runtime import serving

_LOGGER = logging.getLogger(__name__)

STOP_TIMEOUT_S: Final = 15.0
BODY_TIMEOUT_S: Final = 30.0
MAX_BODY_BYTES: Final = 65_536  # KKMServer names are longer than ATOL's
DEFAULT_WAIT_S: Final = 60.0  # KKMServer's default Timeout
MAX_SYNC_WAIT_S: Final = 120.0  # a client's Timeout cannot hold a connection longer
POLL_S: Final = 0.1
SOURCE: Final = "kkmserver"
REALM: Final = 'Basic realm="fiscal-gateway KKMServer API", charset="UTF-8"'

Device = Callable[[], Awaitable[Mapping[str, object]]]
OnSubmitted = Callable[[str], None]
_dumps = functools.partial(json.dumps, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class BasicCheck:
    """Who may call: (name digest, password digest) pairs, compared in constant time."""

    users: tuple[tuple[bytes, bytes], ...]

    @classmethod
    def from_config(cls, users: tuple[KkmUserConfig, ...]) -> BasicCheck:
        digests: list[tuple[bytes, bytes]] = []
        for user in users:
            digests.append((_digest(user.name), _digest(user.password.reveal())))
        return cls(tuple(digests))

    def check(self, authorization: str | None) -> str | None:
        """The user name of a valid `Authorization: Basic` header, or None."""
        credentials = _basic(authorization)
        if credentials is None:
            return None
        name, password = credentials
        given = (_digest(name), _digest(password))
        found = False
        for user, secret in self.users:
            # Every entry is compared, so timing does not tell which name exists.
            match = hmac.compare_digest(given[0], user) & hmac.compare_digest(given[1], secret)
            found |= match
        return name if found else None


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _basic(authorization: str | None) -> tuple[str, str] | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    name, colon, password = decoded.partition(":")
    return (name, password) if colon else None


@dataclass(frozen=True, slots=True)
class _Api:
    """What the handlers need, stored on the application."""

    users: BasicCheck
    journal: Journal
    intake: Intake
    device: Device


API: Final = web.AppKey("fiscal_gateway_kkmserver", _Api)


def _json(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def _refused(command: str, id_command: str, text: str, status: int = 200) -> web.Response:
    return _json(base(command, id_command, Status.ERROR, text), status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure is a KKMServer answer; a traceback goes to the log, never to the client."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _refused("", "", exc.reason.lower(), exc.status)
    except Exception:
        _LOGGER.exception("Unexpected error on %s %s", request.method, request.rel_url.raw_path)
        return _refused("", "", "internal error; see the box log", 500)


@web.middleware
async def _authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP Basic against `kkmserver.users` on every path."""
    if request.app[API].users.check(request.headers.get(hdrs.AUTHORIZATION)) is not None:
        return await handler(request)
    peer = request.remote or "?"
    _LOGGER.warning("KKMServer API: refused %s %s from %s", request.method, request.path, peer)
    body = base("", "", Status.ERROR, "a valid user name and password (HTTP Basic) are required")
    return _json(body, 401, {hdrs.WWW_AUTHENTICATE: REALM})


async def _execute(request: web.Request) -> web.Response:
    """POST /Execute: committed commands answer at once; poll GetRezult."""
    return await _run(request, sync=False)


async def _execute_sync(request: web.Request) -> web.Response:
    """POST /Execute/sync: wait for the result up to the command's Timeout."""
    return await _run(request, sync=True)


async def _run(request: web.Request, *, sync: bool) -> web.Response:
    api = request.app[API]
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _refused("", "", f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
    except TimeoutError:
        return _refused("", "", f"the body did not arrive within {BODY_TIMEOUT_S:g} s", 408)
    except (ConnectionError, HttpProcessingError):
        return _refused("", "", "the body was cut off or malformed", 400)
    try:
        command = _read(body)
    except ValidationError as err:
        return _refused(_command_name(body), "", intake.printable(str(err)))
    if command.command is Command.LIST:
        return _json(await _list(api, command))
    if command.command is Command.GET_REZULT:
        return _json(await _get_rezult(api, command))
    return _json(await _submit(api, command, sync=sync))


def _read(body: bytes) -> Request:
    """`read_command`; anything it raises becomes a ValidationError, never a crash."""
    try:
        return read_command(body)
    except ValidationError:
        raise
    except RecursionError:
        raise ValidationError("", "not valid JSON: nested too deeply") from None
    except Exception as err:  # a value no rule expected: refuse it, say what it was
        _LOGGER.info("KKMServer command refused while decoding", exc_info=True)
        raise ValidationError("", f"cannot be read: {type(err).__name__}") from None


def _command_name(body: bytes) -> str:
    """The Command of a refused body, when it can be read, for the answer."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    name = doc.get("Command") if isinstance(doc, dict) else None
    return intake.printable(name) if isinstance(name, str) and len(name) <= 64 else ""


async def _submit(api: _Api, command: Request, *, sync: bool) -> Answer:
    name, id_command = command.command.value, command.id_command
    assert command.atol is not None
    try:
        parsed = api.intake.parse(dumps(command.atol))
    except ValidationError as err:
        where = kkm_field(err.field, command.fields)
        reason = kkm_reason(err.reason)
        text = f"{where}: {reason}" if where else reason
        return base(name, id_command, Status.ERROR, intake.printable(text))
    try:
        submitted = await api.intake.submit(parsed, source=SOURCE)
    except DiskFull:
        return base(name, id_command, Status.ERROR, intake.DISK_FULL_TEXT)
    except JournalUnavailable as err:
        _LOGGER.error("KKMServer command %s not confirmed: %s", id_command, err)
        text = (
            "the box's journal did not confirm the command; send it again with the same IdCommand"
        )
        return base(name, id_command, Status.ERROR, text)
    job = submitted.job
    if submitted.outcome is Outcome.DUPLICATE:
        _LOGGER.info("KKMServer IdCommand %s is known already; nothing queued", id_command)
        if job is None:
            return base(name, id_command, Status.NOT_FOUND, "the command has been purged")
    else:
        assert job is not None  # ACCEPTED always carries the committed job
        _LOGGER.info(
            "Queued KKMServer %s %s as number %d: %s",
            name,
            id_command,
            job.seq,
            "; ".join(describe(t) for t in parsed.tasks),
        )
    if sync:
        job = await _wait(api.journal, job, command.timeout_s)
    return job_answer(job)


async def _wait(journal: Journal, job: JobRecord, timeout_s: float | None) -> JobRecord:
    """The job once finished or blocked, or as it stands when the wait is over."""
    wait_s = min(timeout_s or DEFAULT_WAIT_S, MAX_SYNC_WAIT_S)
    try:
        async with asyncio.timeout(wait_s):
            while job.state not in FINISHED and job.state is not JobState.BLOCKED:
                await asyncio.sleep(POLL_S)
                job = await journal.get(job.uuid)
    except TimeoutError:
        pass  # the answer says it still runs; the client polls GetRezult
    return job


async def _get_rezult(api: _Api, command: Request) -> Answer:
    try:
        async with asyncio.timeout(intake.JOURNAL_TIMEOUT_S):
            job = await api.journal.get(command.id_command)
    except JobNotFound:
        text = "no command with this IdCommand"
        return base(Command.GET_REZULT.value, command.id_command, Status.NOT_FOUND, text)
    answer = base(Command.GET_REZULT.value, command.id_command, Status.OK)
    answer["Rezult"] = job_answer(job)
    return answer


async def _list(api: _Api, command: Request) -> Answer:
    """The one register of this box, from what the box last read from it."""
    device = await api.device()
    connected = device.get("register") == "connected"
    unit: ListUnit = {
        "NumDevice": 1,
        "IdDevice": str(device.get("serial") or "register"),
        "OnOff": True,
        "Active": connected,
        "TypeDevice": "Фискальный регистратор",
        "IdTypeDevice": "fiscal-gateway",
        "NameDevice": str(device.get("model") or ""),
        "KktNumber": str(device.get("serial") or ""),
        "INN": "",
        "TaxVariant": "",
        "PaperOver": False,
        "FN_IsFiscal": True,
    }
    answer = base(Command.LIST.value, command.id_command, Status.OK)
    answer["ListUnit"] = [unit]
    return answer


def build_app(
    *,
    config: KkmServerConfig,
    journal: Journal,
    mapping: NameMapping,
    device: Device,
    on_submitted: OnSubmitted,
) -> web.Application:
    """The aiohttp application: the two routes, auth and error middlewares."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=(_errors, _authorize))
    # The translated request is longer than the KKMServer body it came from.
    submit = Intake(journal, wake=on_submitted, mapping=mapping, max_bytes=4 * MAX_BODY_BYTES)
    app[API] = _Api(BasicCheck.from_config(config.users), journal, submit, device)
    app.router.add_post("/Execute", _execute)
    app.router.add_post("/Execute/sync", _execute_sync)
    return app


class KkmServer:
    """The KKMServer-compatible server: builds the app, listens, stops."""

    def __init__(
        self,
        *,
        config: KkmServerConfig,
        journal: Journal,
        mapping: NameMapping,
        device: Device,
        on_submitted: OnSubmitted,
    ) -> None:
        self.config = config
        self._app_args = (journal, mapping, device, on_submitted)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def build_app(self) -> web.Application:
        journal, mapping, device, on_submitted = self._app_args
        return build_app(
            config=self.config,
            journal=journal,
            mapping=mapping,
            device=device,
            on_submitted=on_submitted,
        )

    async def start(self) -> None:
        """Listen; returns once the socket is bound."""
        if self._runner is not None:
            raise RuntimeError("the KKMServer API is started already")
        listen = self.config.listen
        self._runner, self.port = await serving.listen(
            self.build_app(),
            listen,
            key="kkmserver.listen",
            code="kkmserver_listen",
            stop_timeout_s=STOP_TIMEOUT_S,
        )
        _LOGGER.info("KKMServer API listening on http://%s:%d", listen.host, self.port)

    async def stop(self) -> None:
        """Stop listening; requests in flight get STOP_TIMEOUT_S to finish."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await serving.stop(runner, "The KKMServer API", STOP_TIMEOUT_S)
        self.port = None
