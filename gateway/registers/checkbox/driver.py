"""Checkbox software РРО behind the `Register` protocol, over its HTTPS API (aiohttp client).

Why not the vendor's `checkbox-sdk`: it brings its own HTTP stack (httpx) next to the
aiohttp the daemon already has, and its polling helpers block on fixed waits without
the per-call timeouts and error mapping the worker relies on; the API is a dozen calls.

Exactly once: every receipt is sent with a client id derived from the job and this register
(`payload.receipt_id`). Checkbox refuses a second receipt with an id it knows, whichever
register used it ([CHECKBOX] 400 `receipt.already_exists`), so recovery is `GET receipts/{id}`:
404 proves the receipt was never made (`find_receipt` -> None); otherwise it is compared with
what we meant to send (kind, total, payments, register) and, when it is ours, waited for; its
fiscal data becomes the job's result. A receipt that is not provably ours raises
`OutcomeUnproven`: a person decides, nothing is sent again. Cash in / out are service
receipts with their own client id, made exactly once the same way.

Offline: when a receipt stays unfiscalised past `tax_wait_s` and the tax service does not
answer `ping-tax-service`, the driver calls `go-offline` (Checkbox then fiscalises with the
offline codes reserved earlier via `ask-offline-codes`); while offline it pings on every
status refresh and calls `go-online` once the tax service answers, reporting the backlog.
The 36 h / 168 h limits are watched by `offline.Ledger` and reported as events and warnings.

Choices where the public docs are thin (also in docs/ukraine.md): `cashier/me` carries the
ЕЦП's `certificate_end`; `ping-tax-service` answers `{"status": "DONE"}` when reachable;
`get-offline-codes-count` answers `{"available": N}`; a 403 or a code mentioning "license"
means the license key was refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from gateway import __version__
from gateway.domain import fiscal
from gateway.domain.errors import LinkError, NoAnswer, OutcomeUnproven, Refusal
from gateway.registers.checkbox import payload
from gateway.registers.cloud import offline
from gateway.registers.cloud.errors import CloudApiError, CredentialsRejected
from gateway.registers.cloud.events import CloudEvents, EventSink
from gateway.registers.cloud.http import CloudHttp

_LOGGER = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.75  # checkbox-sdk's default between status polls
POLL_TIMEOUT_S = 60.0
TAX_WAIT_S = 15.0  # a receipt unfiscalised this long: check the tax service, maybe go offline
OFFLINE_CHECK_INTERVAL_S = 60.0
KEY_WARN_DAYS = 14
OFFLINE_CODES_MIN = 100
OFFLINE_CODES_ASK = 2000


class CheckboxRegister:
    """One Checkbox cash register (license key) and one cashier."""

    # Optional receipt data it sends: the contact as `delivery`, the cashier as `cashier_name`;
    # `electronically` because Checkbox never prints and delivers to that contact [CHECKBOX].
    CARRIES: ClassVar[frozenset[str]] = frozenset(
        {"clientInfo.emailOrPhone", "electronically", "operator"}
    )

    def __init__(
        self,
        url: str,
        *,
        license_key: str,
        login: str | None = None,
        password: str | None = None,
        pin_code: str | None = None,
        client_name: str = "fiscal-gateway",
        tax_codes: Mapping[fiscal.Vat, int | None] | None = None,
        tz: dt.tzinfo | None = None,
        on_event: EventSink | None = None,
        request_timeout_s: float = 30.0,
        poll_interval_s: float = POLL_INTERVAL_S,
        poll_timeout_s: float = POLL_TIMEOUT_S,
        tax_wait_s: float = TAX_WAIT_S,
        offline_check_interval_s: float = OFFLINE_CHECK_INTERVAL_S,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if pin_code is None and (login is None or password is None):
            raise ValueError("Checkbox needs pin_code, or login and password")
        self._http = CloudHttp(
            url,
            headers={
                "X-Client-Name": client_name,
                "X-Client-Version": __version__,
                "X-License-Key": license_key,
            },
            timeout_s=request_timeout_s,
            name="checkbox",
            reason_of=payload.refusal_reason,
        )
        self._login, self._password, self._pin = login, password, pin_code
        self._given_tax_codes = dict(tax_codes) if tax_codes is not None else None
        self._tax_codes: dict[fiscal.Vat, int | None] = {}
        self._tz = tz
        self._events = CloudEvents(on_event)
        self._poll_interval_s = poll_interval_s
        self._poll_timeout_s = poll_timeout_s
        self._tax_wait_s = tax_wait_s
        self._offline_check_interval_s = offline_check_interval_s
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._token: str | None = None
        self._connected = False
        self._fiscal_number = ""
        self._register_id = ""
        self._namespace: uuid.UUID | None = None
        self._key_end: dt.datetime | None = None
        self._offline = offline.OfflineWatch(self._events, label="Checkbox register", now=self._now)
        self._last_offline_check: dt.datetime | None = None
        self._last_shift_serial = 0

    def __repr__(self) -> str:
        return f"CheckboxRegister({self._http.base_url!r})"  # never the keys

    # --- connection ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True after a successful sign-in, until a call fails on the network."""
        return self._connected

    @property
    def offline_since(self) -> dt.datetime | None:
        """When the register went offline (UTC), or None while online."""
        return self._offline.offline_since

    def offline_budget(self) -> offline.Budget:
        """The legal offline limits, used and left."""
        return self._offline.budget()

    async def connect(self) -> None:
        """Sign in, read the register and the cashier's key, load tax codes, check offline."""
        await self._http.open()
        try:
            await self._sign_in()
            info = await self._get("cash-registers/info")
            self._fiscal_number = str(info.get("fiscal_number") or "")
            self._events.register = self._fiscal_number
            self._register_id = str(info.get("id") or "")
            if not self._fiscal_number:
                # Receipt ids are made in this register's namespace: never guess one.
                raise NoAnswer("cash-registers/info has no fiscal_number", command_sent=True)
            self._namespace = payload.register_namespace(self._fiscal_number)
            await self._check_cashier_key()
            if self._given_tax_codes is not None:
                self._tax_codes = self._given_tax_codes
            else:
                taxes = await self._get("tax")
                if not isinstance(taxes, list):
                    raise NoAnswer("GET tax did not answer a list", command_sent=True)
                self._tax_codes = payload.tax_codes_from_list(taxes)
            self._offline.observe(offline=bool(info.get("offline_mode")))
        except CredentialsRejected as err:
            self._events.credentials_rejected(err)
            raise
        self._connected = True
        await self._offline_upkeep(force=True)

    async def close(self) -> None:
        """Drop the session; the next connect signs in again."""
        self._connected = False
        await self._http.close()

    async def _sign_in(self) -> None:
        body: dict[str, str | None]
        if self._pin is not None:
            path, body = "cashier/signinPinCode", {"pin_code": self._pin}
        else:
            path, body = "cashier/signin", {"login": self._login, "password": self._password}
        try:
            reply = await self._http.request("POST", path, body=body)
        except CredentialsRejected as err:
            err.which = "license_key" if _about_license(err) else "cashier"
            raise
        except CloudApiError as err:
            # 422 without the license header, 400 on a malformed PIN: keys are wrong either way.
            raise CredentialsRejected(
                f"checkbox: sign-in refused: {err.message}",
                which="license_key" if "license" in err.message.lower() else "cashier",
                api_code=err.api_code,
            ) from err
        token = reply.body.get("access_token") if isinstance(reply.body, dict) else None
        if not isinstance(token, str) or not token:
            raise NoAnswer("Checkbox sign-in answered without an access_token", command_sent=True)
        self._token = token

    async def _check_cashier_key(self) -> None:
        me = await self._get("cashier/me")
        end = payload.parse_when(me.get("certificate_end"), dt.UTC) if me else None
        self._key_end = end.replace(tzinfo=dt.UTC) if end is not None else None
        if self._key_end is None:
            return
        left = self._key_end - self._now()
        if left <= dt.timedelta():
            raise CredentialsRejected(
                f"checkbox: the cashier's key (ЕЦП) expired on {self._key_end.date()}",
                which="cashier_key",
                hint="renew the cashier's key in the Checkbox cabinet",
            )
        if left <= dt.timedelta(days=KEY_WARN_DAYS):
            _LOGGER.warning("Checkbox: the cashier's key (ЕЦП) expires on %s", self._key_end.date())
            self._events.emit("cashier_key_expiring", {"expires": self._key_end.date().isoformat()})

    # --- calls -----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """An authorised call; a 401 signs in again once (token refresh) and repeats it.

        Repeating is safe even for `receipts/sell`: a 401 means it was not accepted.
        """
        for attempt in (0, 1):
            auth = {"Authorization": f"Bearer {self._token}", **(headers or {})}
            try:
                reply = await self._http.request(
                    method, path, body=body, params=params, headers=auth
                )
                return reply.status, reply.body
            except CredentialsRejected as err:
                if attempt == 0 and err.status == 401 and not _about_license(err):
                    _LOGGER.info("Checkbox: token refused; signing in again")
                    await self._sign_in()
                    continue
                err.which = "license_key" if _about_license(err) else "cashier"
                self._connected = False
                self._events.credentials_rejected(err)
                raise
            except LinkError:
                self._connected = False  # the supervisor reconnects (and signs in again)
                raise
        raise AssertionError("unreachable")

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        _status, body = await self._call("GET", path, params=params)
        return body

    # --- state -----------------------------------------------------------------------------

    async def _current_shift(self) -> dict[str, Any] | None:
        shift = await self._get("cashier/shift")
        if isinstance(shift, dict):
            self._last_shift_serial = int(shift.get("serial") or 0)
            return shift
        return None

    def _shift_state(self, shift: Mapping[str, Any] | None) -> fiscal.ShiftState:
        if shift is None or shift.get("status") == payload.SHIFT_CLOSED:
            return fiscal.ShiftState.CLOSED
        opened = payload.parse_when(shift.get("opened_at"), dt.UTC)
        if opened is not None and self._now() - opened.replace(tzinfo=dt.UTC) >= dt.timedelta(
            hours=24
        ):
            return fiscal.ShiftState.EXPIRED
        return fiscal.ShiftState.OPENED

    async def device_info(self) -> fiscal.DeviceInfo:
        """Checkbox has no hardware: the fiscal number identifies the register."""
        return fiscal.DeviceInfo(
            model="Checkbox",
            serial=self._fiscal_number,
            firmware_version="api v1",
            firmware_build=0,
            firmware_date=None,
            protocol="checkbox-https",
        )

    async def status(self) -> fiscal.RegisterStatus:
        """Shift state; a cloud register has no paper, cover or open receipt."""
        shift = await self._current_shift()
        return fiscal.RegisterStatus.cloud(
            self._shift_state(shift),
            await self.read_clock(),
            int(shift.get("serial") or 0) if shift else None,
        )

    async def fn_status(self) -> fiscal.FnStatus:
        """`last_document_number` is the serial of the open shift (0 with none open).

        Checkbox exposes no single document counter; this one moves only when a shift opens,
        which is all the worker's clean-refusal check needs. Recovery goes by receipt id.
        """
        shift = await self._current_shift()
        await self._offline_upkeep()
        warnings = self._offline.warnings()
        if self._key_end is not None and self._key_end - self._now() <= dt.timedelta(
            days=KEY_WARN_DAYS
        ):
            warnings.add(fiscal.FnWarning.RESOURCE_EXHAUSTED)
        return fiscal.FnStatus(
            number=self._fiscal_number,
            life_phase=0,
            current_document=0,
            shift_open=shift is not None,
            warnings=frozenset(warnings),
            last_document_number=int(shift.get("serial") or 0) if shift else 0,
            last_document_datetime=None,
            expiry=self._key_end.date() if self._key_end else None,
        )

    async def fn_expiry(self) -> dt.date | None:
        """What expires on a ПРРО is the cashier's key (ЕЦП)."""
        return self._key_end.date() if self._key_end else None

    async def ofd_status(self) -> fiscal.OfdStatus:
        """Receipts made offline and not yet delivered to the tax service."""
        await self._offline_upkeep()
        return self._offline.ofd_status(self._tz)

    async def shift_info(self) -> fiscal.ShiftInfo:
        """The cashier's current shift."""
        shift = await self._current_shift()
        if shift is None:
            return fiscal.ShiftInfo(fiscal.ShiftState.CLOSED, self._last_shift_serial)
        return fiscal.ShiftInfo(
            self._shift_state(shift),
            int(shift.get("serial") or 0),
            receipts=int(shift.get("receipts_count") or 0),
            opened_at=payload.parse_when(shift.get("opened_at"), self._tz),
        )

    # --- shifts ----------------------------------------------------------------------------

    async def open_shift(self, operator: fiscal.Operator | None = None) -> fiscal.FiscalResult:
        """`POST shifts` (202 CREATED), then poll until OPENED."""
        _status, body = await self._call("POST", "shifts", body={})
        shift = await self._wait_shift(str(body["id"]), closing=False)
        return payload.shift_result(
            shift, closing=False, fiscal_number=self._fiscal_number, tz=self._tz
        )

    async def close_shift(self, operator: fiscal.Operator | None = None) -> fiscal.FiscalResult:
        """`POST shifts/close` makes the Z report (202 CLOSING), then poll until CLOSED."""
        _status, body = await self._call("POST", "shifts/close", body={})
        shift = await self._wait_shift(str(body["id"]), closing=True)
        return payload.shift_result(
            shift, closing=True, fiscal_number=self._fiscal_number, tz=self._tz
        )

    async def _wait_shift(self, shift_id: str, *, closing: bool) -> dict[str, Any]:
        pending = payload.SHIFT_PENDING_CLOSE if closing else payload.SHIFT_PENDING_OPEN
        goal = payload.SHIFT_CLOSED if closing else payload.SHIFT_OPENED
        deadline = self._now() + dt.timedelta(seconds=self._poll_timeout_s)
        while True:
            shift = await self._get(f"shifts/{shift_id}")
            state = shift.get("status")
            problem = payload.transaction_error(shift, closing)
            if problem is not None:
                raise self._http.refused(
                    400, "transaction.error", problem, path=f"shifts/{shift_id}"
                )
            if state == goal:
                self._last_shift_serial = int(shift.get("serial") or 0)
                return dict(shift)
            if state not in pending:
                raise self._http.refused(
                    400, f"shift.{state}", f"shift went to {state}", path=f"shifts/{shift_id}"
                )
            if self._now() >= deadline:
                raise NoAnswer(f"checkbox: shift {shift_id} still {state}", command_sent=True)
            await asyncio.sleep(self._poll_interval_s)

    async def x_report(self) -> None:
        """`POST reports`: an X report (no fiscal document)."""
        await self._call("POST", "reports", body={})

    # --- receipts --------------------------------------------------------------------------

    async def print_receipt(self, receipt: fiscal.Receipt) -> fiscal.FiscalResult:
        """Sell or return with the job's id; a known id is not a second sale but a lookup."""
        request_id = receipt.request_id or receipt.job_id
        if not request_id:
            raise ValueError("a Checkbox receipt needs the job's id")
        rid = self._id(request_id)
        body = payload.sell_body(receipt, receipt_uuid=rid, tax_codes=self._tax_codes)
        expect = payload.expected_sell(receipt)
        await self._post_once("receipts/sell", body, rid)
        return self._fiscal(await self._wait_receipt(rid, expect))

    async def find_receipt(
        self, request_id: str, *, expected: fiscal.Receipt | None = None
    ) -> fiscal.FiscalResult | None:
        """`GET receipts/{id}`: None on 404 (never made), else its fiscal data.

        `expected` is the receipt the job meant to make; without it only the register is
        compared. An id an older release made (`payload.legacy_receipt_id`) is looked up too.
        """
        expect = payload.expected_sell(expected) if expected is not None else None
        body = await self._find(self._id(request_id), expect)
        if body is None:
            legacy = payload.legacy_receipt_id(request_id)
            body = await self._find(legacy, expect, legacy=True) if legacy else None
        return None if body is None else self._fiscal(body)

    async def _find(
        self, rid: str, expect: payload.Expected | None, *, legacy: bool = False
    ) -> dict[str, Any] | None:
        try:
            found = await self._get(f"receipts/{rid}")
        except CloudApiError as err:
            if err.status == 404:
                return None
            raise
        if legacy and payload.made_by(found, self._register_id) is False:
            return None  # another box's receipt under the shared namespace of old: not ours
        if legacy and payload.made_by(found, self._register_id) is None:
            raise OutcomeUnproven(
                f"checkbox: receipt {rid} (an id of an older release) does not say which "
                "register made it; check it in the Checkbox cabinet and resolve the job"
            )
        return await self._wait_receipt(rid, expect)

    async def _post_once(self, path: str, body: dict[str, Any], rid: str) -> None:
        """POST a receipt with its client id; an id Checkbox knows is looked up instead."""
        try:
            await self._call("POST", path, body=body, headers={"X-Request-ID": rid})
        except CloudApiError as err:
            if err.api_code != "receipt.already_exists":
                raise
            _LOGGER.info("Checkbox already has receipt %s; comparing it with ours", rid)

    def _id(self, request_id: str) -> str:
        if self._namespace is None:
            raise NoAnswer(
                "checkbox: not connected (the register is not known yet)", command_sent=False
            )
        return payload.receipt_id(request_id, self._namespace)

    def _fiscal(self, body: Mapping[str, Any]) -> fiscal.FiscalResult:
        return payload.receipt_result(
            body, api_url=self._http.base_url, fiscal_number=self._fiscal_number, tz=self._tz
        )

    async def _wait_receipt(self, rid: str, expect: payload.Expected | None) -> dict[str, Any]:
        """Poll `GET receipts/{id}` until DONE; first prove the receipt is the one we meant."""
        start = self._now()
        deadline = start + dt.timedelta(seconds=self._poll_timeout_s)
        tax_checked = False
        proven = False
        while True:
            try:
                body = await self._get(f"receipts/{rid}")
            except CloudApiError as err:
                if err.status != 404:
                    raise
                # Refused as a known id, yet not readable here: someone else's receipt.
                raise OutcomeUnproven(
                    f"checkbox: receipt id {rid} exists but this register cannot read it; "
                    "check the Checkbox cabinet and resolve the job"
                ) from err
            if not proven:
                problem = (
                    payload.mismatch(expect, body, register=self._fiscal_number)
                    if expect is not None
                    else self._foreign(body)
                )
                if problem is not None:
                    raise OutcomeUnproven(
                        f"checkbox: receipt {rid} exists but is not this job's: {problem}; "
                        "check it in the Checkbox cabinet and resolve the job"
                    )
                proven = True
            state = body.get("status")
            if state == payload.RECEIPT_DONE:
                if body.get("is_created_offline"):
                    self._offline.made_offline()
                return dict(body)
            if state == payload.RECEIPT_ERROR:
                text = str(body.get("error_message") or "the tax service refused the receipt")
                raise self._http.refused(400, "receipt.error", text, path=f"receipts/{rid}")
            if state not in payload.RECEIPT_PENDING:
                raise NoAnswer(
                    f"Checkbox receipt {rid} in unknown state {state!r}", command_sent=True
                )
            now = self._now()
            if not tax_checked and now - start >= dt.timedelta(seconds=self._tax_wait_s):
                tax_checked = True
                await self._go_offline_if_tax_down()
            if now >= deadline:
                raise NoAnswer(f"checkbox: receipt {rid} still {state}", command_sent=True)
            await asyncio.sleep(self._poll_interval_s)

    def _foreign(self, body: Mapping[str, Any]) -> str | None:
        if payload.made_by(body, self._register_id) is False:
            return "another register made it"
        return None

    # --- cash in / out and totals ----------------------------------------------------------

    async def cash_operation(
        self,
        direction: fiscal.CashDirection,
        amount: int,
        operator: fiscal.Operator | None = None,
        *,
        request_id: str | None = None,
    ) -> fiscal.CashResult:
        """A service receipt [CHECKBOX] with the job's id: a retry never makes a second one."""
        if not request_id:
            raise self._http.refused(
                0,
                "no_request_id",
                "a Checkbox cash operation needs the job's id to be made exactly once",
                path="receipts/service",
            )
        rid = self._id(request_id)
        body = payload.service_body(direction, amount, receipt_uuid=rid)
        await self._post_once("receipts/service", body, rid)
        done = await self._wait_receipt(rid, payload.expected_service(direction, amount))
        return payload.cash_result(done, api_url=self._http.base_url, tz=self._tz)

    async def shift_totals(self) -> fiscal.ShiftTotals:
        """The open shift's counters from an X report (`POST reports`, [CHECKBOX] ReportModel).

        With no shift open every counter is zero.
        """
        shift = await self._current_shift()
        if shift is None:
            return payload.empty_totals(self._last_shift_serial or None)
        _status, report = await self._call("POST", "reports", body={})
        if not isinstance(report, dict):
            raise NoAnswer("POST reports did not answer a report", command_sent=True)
        return payload.report_totals(report, int(shift.get("serial") or 0) or None)

    async def cancel_receipt(self) -> None:
        """A cloud receipt is never left open: nothing to cancel."""

    async def find_document(self, number: int) -> fiscal.FoundDocument:
        """Checkbox keeps no archive by document number; recovery goes by receipt id."""
        raise CloudApiError(
            0,
            "not_supported",
            f"no document archive by number ({number})",
            path="-",
            source="checkbox",
            reason=Refusal.NOT_SUPPORTED,
        )

    async def continue_print(self) -> None:
        """Nothing is printed locally."""

    async def read_clock(self) -> dt.datetime:
        """Checkbox stamps documents with its own clock; the box's clock stands in for it."""
        return self._wall(self._now())

    async def set_clock(self, when: dt.datetime) -> None:
        """The service keeps its own time: nothing to set."""

    async def settle(self) -> fiscal.RegisterStatus:
        """Nothing is left pending on a line: just the status."""
        return await self.status()

    # --- offline mode ----------------------------------------------------------------------

    async def _tax_reachable(self) -> bool:
        try:
            _status, body = await self._call("POST", "cash-registers/ping-tax-service", body={})
        except (CloudApiError, NoAnswer):
            return False
        return isinstance(body, dict) and body.get("status") == "DONE"

    async def _go_offline_if_tax_down(self) -> None:
        if self._offline.offline_since is not None or await self._tax_reachable():
            return
        codes = await self._offline_codes_available()
        if codes == 0:
            _LOGGER.error("Checkbox: the tax service is down and no offline codes are reserved")
            self._events.emit("offline_codes_missing", {})
            return
        _LOGGER.warning("Checkbox: the tax service does not answer; going offline")
        await self._call("POST", "cash-registers/go-offline", body={})
        self._offline.observe(offline=True)

    async def _offline_codes_available(self) -> int:
        try:
            body = await self._get("cash-registers/get-offline-codes-count")
        except CloudApiError:
            return -1  # unknown: let the service decide
        return int(body.get("available") or 0) if isinstance(body, dict) else -1

    async def _offline_upkeep(self, *, force: bool = False) -> None:
        """While offline, try to go back online; while online, keep offline codes reserved."""
        now = self._now()
        last = self._last_offline_check
        interval = dt.timedelta(seconds=self._offline_check_interval_s)
        if not force and last is not None and now - last < interval:
            return
        self._last_offline_check = now
        info = await self._get("cash-registers/info")
        self._offline.observe(offline=bool(info.get("offline_mode")))
        if self._offline.offline_since is not None:
            if await self._tax_reachable():
                await self._call("POST", "cash-registers/go-online", body={})
                info = await self._get("cash-registers/info")
                self._offline.observe(offline=bool(info.get("offline_mode")))
            return
        available = await self._offline_codes_available()
        if 0 <= available < OFFLINE_CODES_MIN:
            _LOGGER.info("Checkbox: %d offline codes left; asking for more", available)
            await self._get(
                "cash-registers/ask-offline-codes",
                params={"count": str(OFFLINE_CODES_ASK), "sync": "false"},
            )

    # --- helpers ---------------------------------------------------------------------------

    def _wall(self, when: dt.datetime) -> dt.datetime:
        return when.astimezone(self._tz).replace(tzinfo=None)


def _about_license(err: CredentialsRejected) -> bool:
    return err.status == 403 or "license" in err.api_code.lower()
