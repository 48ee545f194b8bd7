"""The one way a job enters the journal, and the one answer every ingress gives.

HTTP, MQTT, the status page and the clock monitor all submit through `Intake`: it reads the
body (any exception while decoding becomes a refusal, never a crash), commits the job under one
timeout policy, wakes the worker and returns a typed outcome. `answer_for` turns any failure
into the same refusal for every ingress: an HTTP status and body, or the `rejected` ack of an
MQTT command, and says whether the client should simply retry (nothing was decided).

A known uuid is an outcome (`DUPLICATE`), not an error, whichever ingress sent it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import errno
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, TypedDict

from gateway.atol.decimal_json import dumps
from gateway.atol.names import NameMapping
from gateway.atol.parser import RequestTooLarge, parse_request
from gateway.atol.tasks import (
    CashTask,
    CloseShiftTask,
    ContinuePrintTask,
    FiscalTask,
    OpenShiftTask,
    ParsedRequest,
    QueryTask,
    ReportXTask,
)
from gateway.domain import fiscal
from gateway.domain.errors import (
    CommandRefused,
    DuplicateJob,
    JournalError,
    StaleCommand,
    ValidationError,
)
from gateway.journal.records import JobRecord
from gateway.journal.store import Journal

_LOGGER = logging.getLogger(__name__)

JOURNAL_TIMEOUT_S: Final = 30.0
DISK_FULL_TEXT: Final = "disk full: free space or replace the card"
UNAVAILABLE_TEXT: Final = "the journal is unavailable; retry later with the same uuid"

Wake = Callable[[str], None]


class Outcome(enum.Enum):
    """What a submission did."""

    ACCEPTED = "accepted"  # a new job, committed
    DUPLICATE = "duplicate"  # the uuid is known; nothing new was queued


@dataclass(frozen=True, slots=True)
class Submitted:
    """A committed job (`ACCEPTED`) or the stored one (`DUPLICATE`; None if it went meanwhile)."""

    outcome: Outcome
    uuid: str
    job: JobRecord | None
    tasks: tuple[FiscalTask, ...]


class DiskFull(JournalError):
    """The journal cannot commit: its file system (or database size limit) is full."""

    code = "disk_full"


class JournalUnavailable(JournalError):
    """The journal failed or did not confirm in time; the same uuid may be sent again."""

    code = "journal_unavailable"


class ErrorBody(TypedDict, total=False):
    """The `error` object of an HTTP answer and of an MQTT `rejected` ack."""

    code: str
    field: str
    description: str


@dataclass(frozen=True, slots=True)
class Answer:
    """How every ingress answers one failure.

    `retry`: nothing was decided (journal trouble): HTTP 503, and an MQTT command is left
    unacknowledged so the broker delivers it again. Otherwise the refusal is final.
    """

    status: int
    code: str
    field: str
    description: str
    retry: bool = False

    @property
    def text(self) -> str:
        """The description led by the field it names (the HTTP form)."""
        return f"{self.field}: {self.description}" if self.field else self.description

    def error(self) -> ErrorBody:
        """`{"code", "field", "description"}` for the MQTT ack and the refusal event."""
        return {"code": self.code, "field": self.field, "description": self.description}


def answer_for(err: BaseException) -> Answer:
    """The one mapping from journal and validation errors to an ingress answer."""
    answer = _answer(err)
    # Input may hold lone surrogates (a JSON "\ud800" escape); an answer must encode.
    return Answer(
        answer.status,
        answer.code,
        printable(answer.field),
        printable(answer.description),
        answer.retry,
    )


def _answer(err: BaseException) -> Answer:
    if isinstance(err, RequestTooLarge):
        return Answer(413, "too_large", err.field, err.reason)
    if isinstance(err, ValidationError):
        return Answer(400, "invalid_request", err.field, err.reason)
    if isinstance(err, CommandRefused):
        return Answer(413 if err.code == "too_large" else 400, err.code, err.field, err.reason)
    if isinstance(err, StaleCommand):
        return Answer(409, "replay", "seq", str(err))
    if isinstance(err, DiskFull):
        return Answer(507, "disk_full", "", DISK_FULL_TEXT)
    if isinstance(err, JournalUnavailable):
        return Answer(503, "journal_unavailable", "", UNAVAILABLE_TEXT, retry=True)
    # Anything else raised while reading input: a refusal, never a crash.
    return Answer(400, "invalid_request", "", f"cannot be read: {_describe(err)}")


def printable(text: str) -> str:
    """Text that can be stored and sent as UTF-8: a lone surrogate becomes an escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_disk_full(err: BaseException) -> bool:
    """SQLITE_FULL or ENOSPC anywhere in the chain of causes."""
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DiskFull):
            return True
        if isinstance(cur, sqlite3.Error):
            code = getattr(cur, "sqlite_errorcode", None)
            if isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_FULL:
                return True
            if "database or disk is full" in str(cur):
                return True
        if isinstance(cur, OSError) and cur.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def decode_guard(read: Callable[[], ParsedRequest]) -> ParsedRequest:
    """Run a parser; every exception it raises becomes a ValidationError naming the problem."""
    try:
        return read()
    except (ValidationError, CommandRefused):
        raise
    except RecursionError:
        raise ValidationError("", "not valid JSON: nested too deeply") from None
    except MemoryError:
        raise RequestTooLarge("", "too large to read") from None
    except Exception as err:  # UnicodeError, ValueError from huge numbers, a parser bug
        _LOGGER.info("Input refused while decoding", exc_info=True)
        raise ValidationError("", f"cannot be read: {_describe(err)}") from None


def _describe(err: BaseException) -> str:
    text = str(err)
    if len(text) > 200:
        text = text[:200] + "…"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def task_json(task: FiscalTask) -> dict[str, object]:
    """A typed task (not a receipt) in the form the journal stores and the worker reads."""
    if isinstance(task, OpenShiftTask | CloseShiftTask | CashTask):
        body: dict[str, object] = {"type": task.type_name}
        if isinstance(task, CashTask):
            body["cashSum"] = Decimal(task.amount).scaleb(-2)
        if task.operator is not None:
            body["operator"] = _operator_json(task.operator)
        return body
    if isinstance(task, ReportXTask | QueryTask | ContinuePrintTask):
        return {"type": task.type_name}
    # A receipt's canonical form depends on the mapping it was parsed with: submit its JSON.
    raise TypeError(f"{type(task).__name__} must be submitted as ATOL JSON")


def _operator_json(operator: fiscal.Operator) -> dict[str, object]:
    body: dict[str, object] = {"name": operator.name}
    if operator.vatin:
        body["vatin"] = operator.vatin
    return body


class Intake:
    """Submits jobs for one ingress: parse, commit (one timeout), wake the worker."""

    def __init__(
        self,
        journal: Journal,
        *,
        wake: Wake,
        mapping: NameMapping | None = None,
        max_bytes: int = 32_768,
        timeout_s: float = JOURNAL_TIMEOUT_S,
    ) -> None:
        self.journal = journal
        self.mapping = mapping if mapping is not None else NameMapping()
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._wake = wake

    def parse(self, body: bytes | str) -> ParsedRequest:
        """An ATOL request body, validated; any failure is a ValidationError (RequestTooLarge
        for an oversized one)."""
        return decode_guard(lambda: parse_request(body, self.mapping, max_bytes=self.max_bytes))

    async def submit_body(
        self,
        body: bytes | str,
        *,
        source: str,
        reply_to: str | None = None,
        ack: bool = False,
        sequence: tuple[str, int] | None = None,
    ) -> Submitted:
        """Parse then submit (see `submit`)."""
        return await self.submit(
            self.parse(body), source=source, reply_to=reply_to, ack=ack, sequence=sequence
        )

    async def submit_tasks(
        self, uuid: str, tasks: Sequence[FiscalTask], *, source: str, now: dt.datetime | None = None
    ) -> Submitted:
        """Typed tasks from the box itself (status page, clock monitor): no JSON round trip."""
        if not tasks:
            raise ValueError("a job needs at least one task")
        request = ParsedRequest(uuid, tuple(tasks), dumps([task_json(t) for t in tasks]))
        return await self.submit(request, source=source, now=now)

    async def submit(
        self,
        request: ParsedRequest,
        *,
        source: str,
        reply_to: str | None = None,
        ack: bool = False,
        sequence: tuple[str, int] | None = None,
        now: dt.datetime | None = None,
    ) -> Submitted:
        """Commit the job and wake the worker.

        Raises DiskFull, JournalUnavailable (retry with the same uuid) or StaleCommand; a known
        uuid is `Outcome.DUPLICATE`. Nothing is acknowledged by the caller before this returns.
        """
        try:
            async with asyncio.timeout(self.timeout_s):
                job = await self.journal.submit(
                    request.uuid,
                    request.tasks_json,
                    len(request.tasks),
                    source=source,
                    reply_to=reply_to,
                    ack=ack,
                    sequence=sequence,
                    now=now,
                    parsed=request,  # the worker reuses this parse
                )
        except DuplicateJob as dup:
            stored = dup.record if isinstance(dup.record, JobRecord) else None
            return Submitted(Outcome.DUPLICATE, request.uuid, stored, request.tasks)
        except StaleCommand:
            raise
        except TimeoutError as err:
            raise JournalUnavailable(
                f"the journal did not confirm {request.uuid} within {self.timeout_s:g} s"
            ) from err
        except Exception as err:
            if is_disk_full(err):
                _LOGGER.error("Journal cannot commit %s: %s", request.uuid, DISK_FULL_TEXT)
                # /health says so too, not only the worker's own failed commit
                self.journal.note_disk_full(f"{type(err).__name__}: {err}")
                raise DiskFull(DISK_FULL_TEXT) from err
            raise JournalUnavailable(f"{type(err).__name__}: {err}") from err
        try:
            self._wake(job.uuid)
        except Exception:  # committed already: the worker also polls, so the job stands
            _LOGGER.exception("Could not wake the worker for %s", job.uuid)
        return Submitted(Outcome.ACCEPTED, job.uuid, job, request.tasks)
