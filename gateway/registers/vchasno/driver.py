"""Вчасно.Каса software РРО behind the `Register` protocol, over `POST fiscal/execute`.

One call, many tasks ([VCHASNO]): 0 open shift, 1 sale, 2 return, 3 / 4 cash in / out,
10 X report, 11 Z report, 18 status, 22 the last document. Header `Authorization: <token>`
(no "Bearer"). An answer with `res != 0` is a refusal (`errortxt` says why).

Duplicate-safe recovery (the API has no idempotency key), the worker's N0 rule (docs/design.md §4)
with the device's local document numbers:
  1. Before a fiscal task the worker journals N0 = `docno` of the last document (task 22).
     It is 0 only when the device provably has none: task 22 answers no document, or
     refuses, while the status (task 18) shows no shift ever opened and no receipt made.
     Any other refusal — a 429, a 5xx, a timeout, an unexpected body — is an error to retry
     later, never 0 (a wrong 0 once re-sent a lost sale). Local numbers run on over every
     document of the ПРРО.
  2. After an ambiguous failure (timeout, 5xx, lost connection) the driver sends nothing;
     the worker reads the last document again:
     - `docno` == N0: nothing was made — sending again cannot sell twice;
     - `docno` == N0 + 1 and its kind and sum match the task: it is ours, its `doccode` is
       the result;
     - anything else (another till made documents meanwhile, or the answer lacks the kind
       or sum): the job is blocked for a person — never a second sale on a guess.
The fields `doctype`, `sum` and `dt` in task 22's `info`, and `shift_dt` in task 18's, are
our reading of the docs; without them recovery blocks instead of guessing (docs/ukraine.md).

Cash in / out (tasks 3 / 4) have no counter the worker could use as N0, so the driver proves
them itself by the same rule: it reads the last document before sending, and after a lost
answer reads it again — the same number means nothing was made, the next number with the
same kind and sum is ours, anything else raises `OutcomeUnproven` for a person.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from gateway import __version__
from gateway.domain import fiscal
from gateway.domain.errors import LinkError, NoAnswer, OutcomeUnproven, Refusal, RegisterError
from gateway.registers.cloud import offline
from gateway.registers.cloud.errors import CloudApiError, CredentialsRejected
from gateway.registers.cloud.events import CloudEvents, EventSink
from gateway.registers.cloud.http import CloudHttp
from gateway.registers.vchasno import payload

_LOGGER = logging.getLogger(__name__)

API_VERSION = 6


class VchasnoRegister:
    """One Вчасно.Каса device (its token)."""

    # Optional receipt data it sends: the contact as `userinfo`, the cashier as `cashier`.
    CARRIES: ClassVar[frozenset[str]] = frozenset({"clientInfo.emailOrPhone", "operator"})

    def __init__(
        self,
        url: str,
        *,
        token: str,
        device: str = "",
        tax_groups: Mapping[fiscal.Vat, int] | None = None,
        tz: dt.tzinfo | None = None,
        on_event: EventSink | None = None,
        request_timeout_s: float = 30.0,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._http = CloudHttp(
            url, headers={"Authorization": token}, timeout_s=request_timeout_s, name="vchasno"
        )
        self._device = device
        self._tax_groups = dict(tax_groups or payload.DEFAULT_TAX_GROUPS)
        self._tz = tz
        self._events = CloudEvents(on_event)
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._connected = False
        self._fiscal_number = ""
        self._offline = offline.OfflineWatch(
            self._events, label="Вчасно.Каса device", now=self._now
        )
        self._shift_seen_at: dt.datetime | None = None

    def __repr__(self) -> str:
        return f"VchasnoRegister({self._http.base_url!r})"  # never the token

    @property
    def connected(self) -> bool:
        """True after a status call succeeded, until a call fails on the network."""
        return self._connected

    async def connect(self) -> None:
        """Read the status; a refused token or an unusable key (ЕЦП) is a clear error."""
        await self._http.open()
        info = await self._status()
        self._fiscal_number = str(info.get("fisid") or "")
        self._events.register = self._fiscal_number
        sign = info.get("sign_status")
        if sign is not None and int(sign) != 1:
            err = CredentialsRejected(
                "vchasno: the cashier's key (ЕЦП) is not usable (expired or not loaded)",
                which="cashier_key",
                hint="renew or reload the key in Вчасно.Каса",
            )
            self._events.credentials_rejected(err)
            raise err
        self._connected = True

    async def close(self) -> None:
        """Drop the session."""
        self._connected = False
        await self._http.close()

    # --- calls -----------------------------------------------------------------------------

    async def _execute(
        self,
        task: int,
        *,
        receipt: dict[str, Any] | None = None,
        cash: dict[str, Any] | None = None,
        userinfo: dict[str, str] | None = None,
        tag: str = "",
        cashier: str = "",
    ) -> dict[str, Any]:
        fiscal_part: dict[str, Any] = {"task": task}
        if cashier:
            fiscal_part["cashier"] = cashier
        if receipt is not None:
            fiscal_part["receipt"] = receipt
        if cash is not None:
            fiscal_part["cash"] = cash
        body: dict[str, Any] = {
            "ver": API_VERSION,
            "source": f"fiscal-gateway/{__version__}",
            "device": self._device,
            "tag": tag,
            "type": 1,
            "fiscal": fiscal_part,
        }
        if userinfo is not None:
            body["userinfo"] = userinfo
        try:
            reply = await self._http.request("POST", "fiscal/execute", body=body)
        except CredentialsRejected as err:
            err.which = "token"
            self._connected = False
            self._events.credentials_rejected(err)
            raise
        except LinkError:
            self._connected = False
            raise
        answer = reply.body
        if not isinstance(answer, dict) or "res" not in answer:
            # Went out and came back unreadable: whatever the device did is unknown.
            raise NoAnswer(f"vchasno: task {task} answered without `res`", command_sent=True)
        res = answer.get("res")
        if res not in (0, "0"):
            raise self._http.refused(
                reply.status,
                str(res),
                str(answer.get("errortxt") or "refused"),
                path=f"fiscal/execute task {task}",
            )
        info = answer.get("info")
        return info if isinstance(info, dict) else {}

    async def _status(self) -> dict[str, Any]:
        info = await self._execute(payload.TASK_STATUS)
        self._offline.observe(offline=int(info.get("online_status", 1) or 0) != 1)
        return info

    async def _last_document(self) -> dict[str, Any] | None:
        """The last document (task 22); None only when the device provably has none."""
        try:
            info = await self._execute(payload.TASK_LAST_DOCUMENT)
        except CloudApiError as err:
            if err.transient:
                raise  # e.g. HTTP 429: not an answer at all
            refusal = err.message
        else:
            if payload.to_int(info.get("docno")) > 0:
                return info
            refusal = "an answer without a document number"
        # What task 22 answers on an empty device is not documented [VCHASNO]: only the
        # status can prove there is nothing.
        status = await self._status()
        if _never_made_a_document(status):
            return None
        raise CloudApiError(
            0,
            "last_document",
            f"the last document cannot be read ({refusal}) though the device has documents",
            path="fiscal/execute task 22",
            source="vchasno",
            reason=Refusal.BUSY,
            hint="retried later; the job waits rather than guess",
        )

    # --- state -----------------------------------------------------------------------------

    def _shift_open(self, info: Mapping[str, Any]) -> bool:
        return int(info.get("shift_status") or 0) == 1

    def _opened_at(self, info: Mapping[str, Any]) -> dt.datetime | None:
        if not self._shift_open(info):
            self._shift_seen_at = None
            return None
        opened = payload.parse_when(info.get("shift_dt"))
        if opened is None:
            # Unknown: count from when this box first saw it open (understates the age).
            self._shift_seen_at = self._shift_seen_at or self._wall(self._now())
            opened = self._shift_seen_at
        return opened

    def _shift_state(self, info: Mapping[str, Any]) -> fiscal.ShiftState:
        opened = self._opened_at(info)
        if opened is None:
            return fiscal.ShiftState.CLOSED
        if self._wall(self._now()) - opened >= dt.timedelta(hours=24):
            return fiscal.ShiftState.EXPIRED
        return fiscal.ShiftState.OPENED

    async def device_info(self) -> fiscal.DeviceInfo:
        """The ПРРО's fiscal number identifies it."""
        return fiscal.DeviceInfo(
            model="Вчасно.Каса",
            serial=self._fiscal_number,
            firmware_version=f"api v{API_VERSION}",
            firmware_build=0,
            firmware_date=None,
            protocol="vchasno-https",
        )

    async def status(self) -> fiscal.RegisterStatus:
        """Shift state; no paper, cover or open receipt on a cloud device."""
        info = await self._status()
        return fiscal.RegisterStatus.cloud(
            self._shift_state(info),
            self._wall(self._now()),
            int(info.get("last_z_no") or 0) + 1 if self._shift_open(info) else None,
        )

    async def fn_status(self) -> fiscal.FnStatus:
        """`last_document_number` is the local number of the last document (module docstring)."""
        info = await self._status()
        last = await self._last_document()
        warnings = self._offline.warnings()
        return fiscal.FnStatus(
            number=self._fiscal_number,
            life_phase=0,
            current_document=0,
            shift_open=self._shift_open(info),
            warnings=frozenset(warnings),
            last_document_number=int(last.get("docno") or 0) if last else 0,
            last_document_datetime=payload.parse_when(last.get("dt")) if last else None,
        )

    async def fn_expiry(self) -> dt.date | None:
        """Not reported by this API."""
        return None

    async def ofd_status(self) -> fiscal.OfdStatus:
        """Documents made offline since the device lost the tax service."""
        await self._status()
        return self._offline.ofd_status(self._tz)

    async def shift_info(self) -> fiscal.ShiftInfo:
        """Shift state; the number is the next Z report's."""
        info = await self._status()
        state = self._shift_state(info)
        number = int(info.get("last_z_no") or 0) + (0 if state is fiscal.ShiftState.CLOSED else 1)
        return fiscal.ShiftInfo(
            state,
            number,
            receipts=int(info.get("receipts_count") or 0),
            opened_at=self._opened_at(info),
        )

    # --- fiscal documents ------------------------------------------------------------------

    async def open_shift(self, operator: fiscal.Operator | None = None) -> fiscal.FiscalResult:
        """Task 0."""
        info = await self._execute(payload.TASK_OPEN_SHIFT, cashier=_name(operator))
        res = payload.fiscal_result(info, total=None, fiscal_number=self._fiscal_number)
        status = await self._status()
        return dataclasses.replace(res, shift_number=int(status.get("last_z_no") or 0) + 1)

    async def close_shift(self, operator: fiscal.Operator | None = None) -> fiscal.FiscalResult:
        """Task 11: the Z report."""
        info = await self._execute(payload.TASK_Z_REPORT, cashier=_name(operator))
        return payload.fiscal_result(info, total=None, fiscal_number=self._fiscal_number)

    async def x_report(self) -> None:
        """Task 10."""
        await self._execute(payload.TASK_X_REPORT)

    async def print_receipt(self, receipt: fiscal.Receipt) -> fiscal.FiscalResult:
        """Task 1 (sale) or 2 (return); `tag` carries the job's id for people reading logs."""
        task, body = payload.receipt_body(receipt, tax_groups=self._tax_groups)
        info = await self._execute(
            task,
            receipt=body,
            userinfo=payload.userinfo(receipt.client_contact),
            tag=receipt.request_id or receipt.job_id or "",
            cashier=_name(receipt.operator),
        )
        if int(info.get("isoffline") or 0):
            self._offline.made_offline()
        return payload.fiscal_result(info, total=receipt.total, fiscal_number=self._fiscal_number)

    async def cash_operation(
        self,
        direction: fiscal.CashDirection,
        amount: int,
        operator: fiscal.Operator | None = None,
        *,
        request_id: str | None = None,
    ) -> fiscal.CashResult:
        """Task 3 (in) or 4 (out), proven by the last document when the answer is lost."""
        task = payload.CASH_TASKS[direction]
        cash = payload.cash_body(amount)
        before = await self._last_document()
        n0 = payload.to_int(before.get("docno")) if before else 0
        try:
            info = await self._execute(
                task, cash=cash, tag=request_id or "", cashier=_name(operator)
            )
        except NoAnswer as err:
            if not err.command_sent:
                raise
            return await self._prove_cash(task, amount, n0, err)
        return payload.cash_result(info)

    async def _prove_cash(
        self, task: int, amount: int, n0: int, lost: NoAnswer
    ) -> fiscal.CashResult:
        try:
            last = await self._last_document()
        except RegisterError as err:
            raise OutcomeUnproven(
                f"vchasno: the answer to cash task {task} was lost ({lost.message}) and the "
                f"device could not be asked what it made ({err.message}); check its last "
                "document and resolve the job"
            ) from err
        number = payload.to_int(last.get("docno")) if last else 0
        if number == n0:
            raise NoAnswer(
                f"vchasno: cash task {task} was not made (last document still {n0})",
                command_sent=False,
            )
        if last is not None and number == n0 + 1 and payload.is_cash_document(last, task, amount):
            _LOGGER.warning("Вчасно.Каса: cash task %d was made (answer was lost)", task)
            return payload.cash_result(last, recovered=True)
        raise OutcomeUnproven(
            f"vchasno: the answer to cash task {task} was lost and document {n0 + 1} does not "
            f"prove it ({number - n0} documents since); check the device and resolve the job"
        )

    async def shift_totals(self) -> fiscal.ShiftTotals:
        """Sums from the X report (task 10), receipt counts from the status (task 18)."""
        status = await self._status()
        z_no = int(status.get("last_z_no") or 0)
        if not self._shift_open(status):
            return fiscal.ShiftTotals(
                z_no or None, {kind: fiscal.OperationTotals() for kind in fiscal.ReceiptType}
            )
        report = await self._execute(payload.TASK_X_REPORT)
        return payload.x_report_totals(report, status, z_no + 1)

    async def cancel_receipt(self) -> None:
        """A receipt is one call: never left open."""

    async def find_document(self, number: int) -> fiscal.FoundDocument:
        """Only the last document can be read back (task 22)."""
        last = await self._last_document()
        if last is None or int(last.get("docno") or 0) != number:
            raise CloudApiError(
                0,
                "not_last",
                f"document {number} is not the device's last document",
                path="fiscal/execute task 22",
                source="vchasno",
                reason=Refusal.NOT_FOUND,
            )
        return payload.found_document(last)

    async def continue_print(self) -> None:
        """Nothing is printed locally."""

    async def read_clock(self) -> dt.datetime:
        """The service stamps documents; the box's clock stands in for it."""
        return self._wall(self._now())

    async def set_clock(self, when: dt.datetime) -> None:
        """The service keeps its own time."""

    async def settle(self) -> fiscal.RegisterStatus:
        """Nothing is pending on a line: just the status."""
        return await self.status()

    # --- helpers ---------------------------------------------------------------------------

    def _wall(self, when: dt.datetime) -> dt.datetime:
        return when.astimezone(self._tz).replace(tzinfo=None)


def _name(operator: fiscal.Operator | None) -> str:
    return operator.name if operator is not None else ""


def _never_made_a_document(status: Mapping[str, Any]) -> bool:
    """The status proves the device has no document: no shift open or ever closed, no receipt.

    Counters the answer lacks prove nothing.
    """
    counters = ("shift_status", "last_z_no", "last_receipt_no", "last_back_no")
    if any(status.get(key) is None for key in counters):
        return False
    return all(payload.to_int(status.get(key), default=-1) == 0 for key in counters)
