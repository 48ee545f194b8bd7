"""Shtrih-M driver: the `Register` protocol over a Shtrih-M link.

Receipt flow as real drivers run it ([PROTO] FF46h/FF4Dh/FF0Ch/FF45h; [PHP]): FF46h per line
(opens the receipt in mode 2) with its FF4Dh item tags, FF0Ch document tags, FF45h close. Shifts: FF41h + TLVs + FF0Bh, FF42h + TLVs + FF43h.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TypeVar

from gateway.domain import fiscal
from gateway.domain.errors import NotConnected, ProtocolError, Refusal, RegisterRefused
from gateway.registers import serial_port
from gateway.registers.shtrih import codec, counters, tags
from gateway.registers.shtrih.errors_table import ShtrihError
from gateway.registers.shtrih.link import ShtrihLink

_LOGGER = logging.getLogger(__name__)

# Answer timeouts per command class. Queries answer at once; documents print first; a Z report
# prints the shift totals and talks to the ФН, which can take a minute on a real register.
QUERY_TIMEOUT_S = 5.0
PRINT_TIMEOUT_S = 30.0
REPORT_TIMEOUT_S = 90.0
CONNECT_TIMEOUT_S = 10.0

# Shtrih mode byte, low nibble ([PROTO] Appendix 1).
MODE_SHIFT_OPEN = 2
MODE_SHIFT_EXPIRED = 3
MODE_SHIFT_CLOSED = 4
MODE_DATE_CONFIRM = 6
MODE_DOCUMENT_OPEN = 8
SUBMODE_WAIT_CONTINUE = 3
# FF45h refused: «Некорректный параметр при данных настройках» ([PROTO] p.68), e.g. a tax
# system the register is not registered with.
ERR_SETTINGS = 0x35

# Flags of 10h/11h ([PROTO] table "Флаги ККТ").
FLAG_RECEIPT_ROLL = 1 << 1
FLAG_RECEIPT_OPTICAL = 1 << 7
FLAG_COVER_OPEN = 1 << 10

# FF45h payment sums 1..16 ([PROTO] FF45h p.52): 1 cash; 2–13 go to the OFD as electronic;
# 14 prepayment; 15 credit (постоплата); 16 counter-provision (встречное представление).
_PAYMENT_SLOT = {
    fiscal.PaymentType.CASH: 0,
    fiscal.PaymentType.ELECTRONICALLY: 1,
    fiscal.PaymentType.PREPAID: 13,
    fiscal.PaymentType.CREDIT: 14,
    fiscal.PaymentType.OTHER: 15,
}
# FF45h six tax fields ([PROTO] FF45h p.52): tax 1 (20 %, printed "18%"), tax 2 (10 %), the
# TURNOVER at 0 % (slot 3) and without VAT (slot 4), tax 5 (20/120), tax 6 (10/110). In tax
# mode 0 the register computes them itself; they are sent right for registers in mode 1.
_TAX_SLOT = {
    fiscal.Vat.VAT20: 0,
    fiscal.Vat.VAT10: 1,
    fiscal.Vat.VAT120: 4,
    fiscal.Vat.VAT110: 5,
}
_TURNOVER_SLOT = {fiscal.Vat.VAT0: 2, fiscal.Vat.NONE: 3}
# Table 17 «Региональные настройки», row 1, field 7 «не печатать документ» ([GUIDE] p.59).
_TABLE_REGIONAL = 17
_FIELD_NO_PRINT = 7

_FN_WARNING_BITS = {
    0: fiscal.FnWarning.REPLACE_URGENTLY,
    1: fiscal.FnWarning.RESOURCE_EXHAUSTED,
    2: fiscal.FnWarning.MEMORY_ALMOST_FULL,
    3: fiscal.FnWarning.OFD_TIMEOUT,
}

A = TypeVar("A", bound=codec.Answer)


class ShtrihRegister:
    """A Shtrih-M register on a serial port or `tcp://host:port`."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 115200,
        password: int = 30,
        answer_timeout_s: float | None = None,
        print_timeout_s: float | None = None,
        report_timeout_s: float | None = None,
    ) -> None:
        """Timeouts left None take this module's defaults when a command is sent."""
        self._port = port
        self._baudrate = baudrate
        self._password = password
        self._timeouts = (answer_timeout_s, print_timeout_s, report_timeout_s)
        self._link: ShtrihLink | None = None
        self._fn_number = ""
        self._registration_number = ""

    def __repr__(self) -> str:
        return f"ShtrihRegister(port={self._port!r}, connected={self.connected})"

    @property
    def port(self) -> str:
        """The port this driver opens."""
        return self._port

    @property
    def link(self) -> ShtrihLink | None:
        """The link while connected (for statistics)."""
        return self._link

    @property
    def connected(self) -> bool:
        """True while the link is up."""
        return self._link is not None and self._link.connected

    async def connect(self) -> None:
        """Open the port and read the ФН number (which also proves the register answers)."""
        if self.connected:
            return
        spec = serial_port.parse_port(self._port)
        _transport, link = await serial_port.open_connection(
            self._port,
            baudrate=self._baudrate,
            protocol_factory=lambda: ShtrihLink(ack_suffix=b"\xff" if spec.kind == "tcp" else b""),
            timeout_s=CONNECT_TIMEOUT_S,
        )
        self._link = link
        try:
            fn = await self.fn_status()
        except BaseException:
            await self.close()
            raise
        self._fn_number = fn.number
        self._registration_number = await self._read_registration_number()
        _LOGGER.info(
            "Register on %s answers; ФН %s, last document %d",
            self._port,
            fn.number,
            fn.last_document_number,
        )

    async def _read_registration_number(self) -> str:
        """The registration number (РН ККТ) of the last registration, FF09h; "" before one."""
        try:
            reg = await self._call(
                codec.FnRegistrationRequest(password=self._password), codec.FnRegistration
            )
        except ShtrihError as err:
            _LOGGER.warning("Could not read the registration number: %s", err)
            return ""
        return reg.registration_number.strip()

    async def close(self) -> None:
        """Close the link (an exchange on the wire finishes first)."""
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    # --- plumbing ----------------------------------------------------------------------

    @property
    def _answer_timeout_s(self) -> float:
        return self._timeouts[0] or QUERY_TIMEOUT_S

    @property
    def _print_timeout_s(self) -> float:
        return self._timeouts[1] or PRINT_TIMEOUT_S

    @property
    def _report_timeout_s(self) -> float:
        return self._timeouts[2] or REPORT_TIMEOUT_S

    async def _call(
        self, request: codec.Request, answer_cls: type[A], timeout_s: float | None = None
    ) -> A:
        """One command; `timeout_s` defaults to the answer timeout of a query."""
        link = self._link
        if link is None or not link.connected:
            raise NotConnected(f"register on {self._port} is not connected")
        body = await link.request(
            codec.encode_request(request), timeout_s=timeout_s or self._answer_timeout_s
        )
        return codec.decode_answer(body, answer_cls)

    async def _send_tlv(self, tlv: bytes) -> None:
        await self._call(
            codec.FnSendTlvRequest(password=self._password, tlv=tlv), codec.FnSendTlvAnswer
        )

    async def _send_operator(self, operator: fiscal.Operator | None) -> None:
        for tlv in tags.operator_tags(operator):
            await self._send_tlv(tlv)

    # --- identity and state ------------------------------------------------------------

    async def device_info(self) -> fiscal.DeviceInfo:
        """Model (FCh), firmware, serial and INN (11h)."""
        kind = await self._call(codec.DeviceTypeRequest(), codec.DeviceType)
        long = await self._long_status()
        return fiscal.DeviceInfo(
            model=kind.name,
            serial=str(long.serial),
            firmware_version=long.firmware_version,
            firmware_build=long.firmware_build,
            firmware_date=long.firmware_date,
            protocol=f"{kind.protocol_version}.{kind.protocol_subversion}",
            inn=str(long.inn),
        )

    async def _long_status(self) -> codec.LongStatus:
        return await self._call(codec.LongStatusRequest(password=self._password), codec.LongStatus)

    async def status(self) -> fiscal.RegisterStatus:
        """Mode, submode, paper and cover from the long status (11h)."""
        st = await self._long_status()
        return _status_from(
            st.mode, st.submode, st.flags, dt.datetime.combine(st.date, st.time), st.last_shift
        )

    async def fn_status(self) -> fiscal.FnStatus:
        """ФН state (FF01h)."""
        fn = await self._call(codec.FnStatusRequest(password=self._password), codec.FnStatus)
        warnings = frozenset(w for bit, w in _FN_WARNING_BITS.items() if fn.warnings & (1 << bit))
        return fiscal.FnStatus(
            number=fn.fn_number,
            life_phase=fn.life_phase,
            current_document=fn.current_document,
            shift_open=fn.shift_open,
            warnings=warnings,
            last_document_number=fn.last_document_number,
            last_document_datetime=fn.last_document_datetime,
            registration_number=self._registration_number,
        )

    async def fn_expiry(self) -> dt.date | None:
        """ФН validity end (FF03h)."""
        answer = await self._call(codec.FnExpiryRequest(password=self._password), codec.FnExpiry)
        return answer.expiry

    async def ofd_status(self) -> fiscal.OfdStatus:
        """OFD backlog (FF39h)."""
        ofd = await self._call(codec.FnOfdStatusRequest(password=self._password), codec.FnOfdStatus)
        return fiscal.OfdStatus(
            unsent_count=ofd.count,
            first_unsent_number=ofd.first_number if ofd.count else None,
            first_unsent_datetime=ofd.first_datetime if ofd.count else None,
        )

    async def shift_info(self) -> fiscal.ShiftInfo:
        """Shift state from the mode (11h); number and receipt count from the ФН (FF40h)."""
        st = await self._long_status()
        state = _shift_state(st.mode & 0x0F)
        params = await self._call(
            codec.FnShiftParamsRequest(password=self._password), codec.FnShiftParams
        )
        return fiscal.ShiftInfo(
            state=state, number=params.shift_number, receipts=params.receipt_number
        )

    # --- shifts and reports ------------------------------------------------------------

    async def open_shift(self, operator: fiscal.Operator | None = None) -> fiscal.FiscalResult:
        """FF41h, cashier TLVs, FF0Bh."""
        await self._call(
            codec.FnBeginOpenShiftRequest(password=self._password), codec.FnBeginOpenShiftAnswer
        )
        await self._send_operator(operator)
        done = await self._call(
            codec.FnOpenShiftRequest(password=self._password),
            codec.FnOpenShiftAnswer,
            self._print_timeout_s,
        )
        return await self._result(done.document_number, done.fiscal_sign, shift=done.shift_number)

    async def close_shift(self, operator: fiscal.Operator | None = None) -> fiscal.FiscalResult:
        """FF42h, cashier TLVs, FF43h (the Z report)."""
        await self._call(
            codec.FnBeginCloseShiftRequest(password=self._password), codec.FnBeginCloseShiftAnswer
        )
        await self._send_operator(operator)
        done = await self._call(
            codec.FnCloseShiftRequest(password=self._password),
            codec.FnCloseShiftAnswer,
            self._report_timeout_s,
        )
        return await self._result(done.document_number, done.fiscal_sign, shift=done.shift_number)

    async def x_report(self) -> None:
        """40h: shift totals on paper, no fiscal document."""
        await self._call(
            codec.XReportRequest(password=self._password),
            codec.XReportAnswer,
            self._report_timeout_s,
        )

    async def _result(
        self,
        number: int,
        sign: int,
        *,
        shift: int | None = None,
        total: int | None = None,
        when: dt.datetime | None = None,
        receipt_number: int | None = None,
    ) -> fiscal.FiscalResult:
        if when is None:
            when = (await self.fn_status()).last_document_datetime
        return fiscal.FiscalResult(
            document_number=number,
            fiscal_sign=sign,
            datetime=when,
            fn_number=self._fn_number,
            registration_number=self._registration_number,
            shift_number=shift,
            receipt_number=receipt_number,
            total=total,
        )

    # --- receipts ----------------------------------------------------------------------

    async def print_receipt(self, receipt: fiscal.Receipt) -> fiscal.FiscalResult:
        """FF46h per line with its FF4Dh tags, FF0Ch document tags, [1Eh no print], FF45h.

        A refusal before FF45h cancels the receipt. `receipt.taxation` must be set: the worker
        fills in the box's configured system, so the register never guesses one.
        """
        if receipt.taxation is None:
            raise ValueError("the receipt has no taxation system")
        try:
            for line in fiscal.receipt_lines(receipt.items):
                item = line.item
                await self._call(
                    codec.FnOperationV2Request(
                        password=self._password,
                        operation=int(receipt.type),
                        quantity=line.quantity,
                        price=line.price,
                        amount=line.amount,
                        tax_amount=_line_tax(line),
                        tax_rate=codec.VAT_TO_TAX_RATE[item.vat],
                        department=item.department,
                        payment_method=int(item.payment_method),
                        payment_object=item.payment_object,
                        name=item.name,
                    ),
                    codec.FnOperationV2Answer,
                )
                for tlv in tags.item_tags(item):
                    await self._call(
                        codec.FnSendOperationTlvRequest(password=self._password, tlv=tlv),
                        codec.FnSendOperationTlvAnswer,
                    )
            for tlv in tags.receipt_tags(receipt):
                await self._send_tlv(tlv)
            if receipt.electronically:
                await self._skip_printing(True)
        except ShtrihError:
            # The register refused a line: nothing was fiscalised, so the open receipt goes.
            await self._cancel_quietly(receipt.electronically)
            raise
        close = self._call(
            codec.FnCloseReceiptV2Request(
                password=self._password,
                payments=_payment_sums(receipt),
                rounding=0,
                taxes=_tax_sums(receipt),
                tax_system=int(receipt.taxation),
                text="",
            ),
            codec.FnCloseReceiptV2Answer,
            self._print_timeout_s,
        )
        try:
            closed = await close
        except ShtrihError as err:
            # A refusal of FF45h (e.g. payments below total) leaves the receipt open and
            # unfiscalised. Transient states (paper) may have closed it: the caller reconciles.
            if not err.transient:
                await self._cancel_quietly(receipt.electronically)
            if err.error_code == ERR_SETTINGS:
                raise RegisterRefused(
                    Refusal.TAX_SYSTEM,
                    f"the register refused the receipt's tax system "
                    f"({receipt.taxation.name}) or another setting ({err.message})",
                    detail=err.detail,
                    hint="give taxationType in the task, or set register.taxation_type in the "
                    "box config to the system the register is registered with",
                ) from err
            raise
        shift = await self._call(
            codec.FnShiftParamsRequest(password=self._password), codec.FnShiftParams
        )
        return await self._result(
            closed.document_number,
            closed.fiscal_sign,
            total=receipt.total,
            when=closed.datetime,
            shift=shift.shift_number,
            receipt_number=shift.receipt_number,
        )

    async def _skip_printing(self, skip: bool) -> None:
        """Table 17 field 7 «не печатать документ»: 1 = do not print the current document, the
        register sets it back to 0 by itself after it ([GUIDE] p.62)."""
        await self._call(
            codec.WriteTableRequest(
                password=self._password,
                table=_TABLE_REGIONAL,
                row=1,
                field=_FIELD_NO_PRINT,
                value=bytes((1 if skip else 0,)),
            ),
            codec.WriteTableAnswer,
        )

    async def _cancel_quietly(self, printing_skipped: bool = False) -> None:
        try:
            await self.cancel_receipt()
            if printing_skipped:
                # Whether a cancelled document used up "do not print one document" is not
                # documented: switch it off so the next receipt is printed.
                await self._skip_printing(False)
        except ShtrihError as err:
            _LOGGER.warning("Could not cancel the open receipt: %s", err)

    async def cancel_receipt(self) -> None:
        """88h: cancel a receipt that is open (not fiscalised)."""
        await self._call(
            codec.CancelReceiptRequest(password=self._password), codec.CancelReceiptAnswer
        )

    async def find_document(self, number: int) -> fiscal.FoundDocument:
        """FF0Ah: read a document back from the ФН archive."""
        doc = await self._call(
            codec.FnFindDocumentRequest(password=self._password, number=number), codec.FnDocument
        )
        return fiscal.FoundDocument(
            number=doc.number,
            document_type=doc.document_type,
            datetime=doc.datetime,
            fiscal_sign=doc.fiscal_sign,
            ofd_acknowledged=doc.ofd_acknowledged,
            receipt_type=fiscal.ReceiptType(doc.receipt_type)
            if doc.receipt_type in (1, 2, 3, 4)
            else None,
            total=doc.total,
        )

    async def continue_print(self) -> None:
        """B0h: finish printing a document after paper was loaded."""
        await self._call(
            codec.ContinuePrintRequest(password=self._password),
            codec.ContinuePrintAnswer,
            self._print_timeout_s,
        )

    # --- clock -------------------------------------------------------------------------

    async def read_clock(self) -> dt.datetime:
        """The register's date and time (11h)."""
        st = await self._long_status()
        return dt.datetime.combine(st.date, st.time)

    async def set_clock(self, when: dt.datetime) -> None:
        """22h + 23h (date, confirmed) then 21h (time); the register allows it with the shift closed."""
        await self._call(
            codec.SetDateRequest(password=self._password, date=when.date()), codec.SetDateAnswer
        )
        await self._call(
            codec.ConfirmDateRequest(password=self._password, date=when.date()),
            codec.ConfirmDateAnswer,
        )
        await self._call(
            codec.SetTimeRequest(password=self._password, time=when.time().replace(microsecond=0)),
            codec.SetTimeAnswer,
        )

    # --- recovery ----------------------------------------------------------------------

    async def settle(self) -> fiscal.RegisterStatus:
        """Collect an answer left pending (never re-send), resume printing, return the status."""
        link = self._link
        if link is None or not link.connected:
            raise NotConnected(f"register on {self._port} is not connected")
        pending = await link.probe_pending(timeout_s=self._answer_timeout_s)
        if pending is not None:
            _LOGGER.warning("Collected a pending answer during recovery: %s", pending.hex())
        status = await self.status()
        if status.waiting_continue_print and status.paper_present:
            await self.continue_print()
            status = await self.status()
        return status

    # --- cash in and out, counters, documents as TLV -----------------------------------

    async def cash_operation(
        self,
        direction: fiscal.CashDirection,
        amount: int,
        operator: fiscal.Operator | None = None,
        *,
        request_id: str | None = None,
    ) -> fiscal.CashResult:
        """50h (внесение) or 51h (выплата) of `amount` kopecks; the time from 11h.

        [PROTO] 50h/51h p.28 make a non-fiscal document with no ФН document to attach TLVs
        to, so the cashier is not sent: the register prints its own operator's name. The
        register keeps no client id: `request_id` is unused, and the caller reconciles by the
        cash-in/cash-out counts of `shift_totals`.
        """
        del request_id
        if amount <= 0:
            raise ValueError(f"a cash operation needs a positive amount, not {amount}")
        if operator is not None:
            _LOGGER.debug("%s: 50h/51h take no cashier, %s is not sent", direction, operator.name)
        done: codec.CashInAnswer | codec.CashOutAnswer
        if direction is fiscal.CashDirection.IN:
            done = await self._call(
                codec.CashInRequest(password=self._password, amount=amount),
                codec.CashInAnswer,
                self._print_timeout_s,
            )
        else:
            done = await self._call(
                codec.CashOutRequest(password=self._password, amount=amount),
                codec.CashOutAnswer,
                self._print_timeout_s,
            )
        when: dt.datetime | None
        try:
            st = await self._long_status()
        except ShtrihError as err:
            _LOGGER.warning("Cash %s done, but the clock could not be read: %s", direction, err)
            when = None
        else:
            when = dt.datetime.combine(st.date, st.time)
        return fiscal.CashResult(document_number=done.document_number, datetime=when)

    async def shift_totals(self) -> fiscal.ShiftTotals:
        """The shift's counters: the shift number from 11h, then 1Ah and 1Bh per register
        (27 short queries in all). With the shift closed they are those of the last shift,
        as far as the register keeps them after its Z report.

        Which registers mean what, and what they cannot tell, is in `counters`.
        """
        shift = await self.shift_info()
        money: dict[int, int] = {}
        for number in counters.money_registers():
            reg = await self._call(
                codec.MoneyRegisterRequest(password=self._password, register=number),
                codec.MoneyRegister,
            )
            money[number] = reg.value
        counts: dict[int, int] = {}
        for number in counters.operation_registers():
            op = await self._call(
                codec.OperationRegisterRequest(password=self._password, register=number),
                codec.OperationRegister,
            )
            counts[number] = op.value
        return counters.shift_totals(money, counts, shift.number)

    async def document_tags(self, number: int) -> list[tuple[int, bytes]]:
        """Document `number` from the ФН archive as TLVs: FF3Ah, then FF3Bh until its length
        is read ([PROTO] p.50). STLVs (items, buyer) stay packed in their values."""
        head = await self._call(
            codec.FnDocumentTlvRequest(password=self._password, number=number),
            codec.FnDocumentTlv,
        )
        data = bytearray()
        while len(data) < head.length:
            block = await self._call(
                codec.FnReadDocumentTlvRequest(password=self._password),
                codec.FnDocumentTlvBlock,
            )
            if not block.tlv:
                raise ProtocolError(
                    f"document {number}: FF3Bh gave no data after {len(data)} of "
                    f"{head.length} bytes"
                )
            data += block.tlv
        if len(data) != head.length:
            raise ProtocolError(
                f"document {number}: read {len(data)} bytes, FF3Ah announced {head.length}"
            )
        return codec.decode_tlvs(bytes(data))


def _shift_state(mode: int) -> fiscal.ShiftState:
    if mode == MODE_SHIFT_EXPIRED:
        return fiscal.ShiftState.EXPIRED
    if mode in (MODE_SHIFT_OPEN, MODE_DOCUMENT_OPEN):
        return fiscal.ShiftState.OPENED
    return fiscal.ShiftState.CLOSED


def _status_from(
    raw_mode: int, submode: int, flags: int, when: dt.datetime | None, last_shift: int
) -> fiscal.RegisterStatus:
    mode = raw_mode & 0x0F
    shift = _shift_state(mode)
    return fiscal.RegisterStatus(
        mode=mode,
        submode=submode,
        shift=shift,
        receipt_open=mode == MODE_DOCUMENT_OPEN,
        paper_present=bool(flags & FLAG_RECEIPT_OPTICAL) and submode not in (1, 2),
        cover_open=bool(flags & FLAG_COVER_OPEN),
        waiting_continue_print=submode == SUBMODE_WAIT_CONTINUE,
        datetime=when,
        shift_number=last_shift + 1 if shift is not fiscal.ShiftState.CLOSED else last_shift,
        raw_mode=raw_mode,
    )


def _payment_sums(receipt: fiscal.Receipt) -> tuple[int, ...]:
    payments = [0] * 16
    for payment in receipt.payments:
        payments[_PAYMENT_SLOT[payment.type]] += payment.sum
    return tuple(payments)


def _tax_sums(receipt: fiscal.Receipt) -> tuple[int, ...]:
    taxes = [0] * 6
    turnover: dict[fiscal.Vat, int] = {}
    for item in receipt.items:
        turnover[item.vat] = turnover.get(item.vat, 0) + item.amount
    for vat, tax in receipt.vat_sums().items():
        if vat in _TAX_SLOT:
            taxes[_TAX_SLOT[vat]] += tax
    for vat, slot in _TURNOVER_SLOT.items():
        taxes[slot] = turnover.get(vat, 0)
    return tuple(taxes)


def _line_tax(line: fiscal.PrintLine) -> int | None:
    """The client's own VAT of a line (tag 1200), when it gave one; None lets the register
    compute it. A line printed in two parts sends none: each part's VAT follows its amount."""
    item = line.item
    if item.tax_sum is None or line.amount != item.amount:
        return None
    return item.tax_sum
