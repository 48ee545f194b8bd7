"""Shtrih-M driver: the `Register` protocol over a Shtrih-M link.

Receipt flow as real drivers run it ([PROTO] FF46h/FF0Ch/FF45h; reference §1 "Receipt flow
in practice"): FF46h per line (opens the receipt in mode 2), FF0Ch TLVs (1008 buyer,
1021/1203 cashier), FF45h close. Shifts: FF41h + TLVs + FF0Bh, FF42h + TLVs + FF43h.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TypeVar

from gateway import fiscal
from gateway.errors import DeviceError, NotConnected
from gateway.registers import serial_port
from gateway.registers.shtrih import codec
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

# Flags of 10h/11h ([PROTO] table "Флаги ККТ").
FLAG_RECEIPT_ROLL = 1 << 1
FLAG_RECEIPT_OPTICAL = 1 << 7
FLAG_COVER_OPEN = 1 << 10

# FF45h payment slots: 1 cash, 2..13 electronic, 14 prepayment, 15 credit, 16 counter-provision.
_PAYMENT_SLOT = {
    fiscal.PaymentType.CASH: 0,
    fiscal.PaymentType.ELECTRONICALLY: 1,
    fiscal.PaymentType.PREPAID: 13,
    fiscal.PaymentType.CREDIT: 14,
    fiscal.PaymentType.OTHER: 15,
}
# FF45h tax sums 1..6: 20 %, 10 %, 0 %, no VAT, 20/120, 10/110. In tax mode 0 the register
# computes them itself; the sums are sent for registers set to take them from the host.
_TAX_SLOT = {
    fiscal.Vat.VAT20: 0,
    fiscal.Vat.VAT10: 1,
    fiscal.Vat.VAT0: 2,
    fiscal.Vat.NONE: 3,
    fiscal.Vat.VAT120: 4,
    fiscal.Vat.VAT110: 5,
}
TAG_BUYER_CONTACT = 1008
TAG_CASHIER = 1021
TAG_CASHIER_INN = 1203

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
        default_taxation: fiscal.TaxationType = fiscal.TaxationType.OSN,
    ) -> None:
        self._port = port
        self._baudrate = baudrate
        self._password = password
        self._default_taxation = default_taxation
        self._link: ShtrihLink | None = None
        self._fn_number = ""

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
        _LOGGER.info(
            "Register on %s answers; ФН %s, last document %d",
            self._port,
            fn.number,
            fn.last_document_number,
        )

    async def close(self) -> None:
        """Close the link (an exchange on the wire finishes first)."""
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    # --- plumbing ----------------------------------------------------------------------

    async def _call(
        self, request: codec.Request, answer_cls: type[A], timeout_s: float = QUERY_TIMEOUT_S
    ) -> A:
        link = self._link
        if link is None or not link.connected:
            raise NotConnected(f"register on {self._port} is not connected")
        body = await link.request(codec.encode_request(request), timeout_s=timeout_s)
        return codec.decode_answer(body, answer_cls)

    async def _send_tlv(self, tag: int, value: str) -> None:
        tlv = codec.tlv_str(tag, value)
        await self._call(
            codec.FnSendTlvRequest(password=self._password, tlv=tlv), codec.FnSendTlvAnswer
        )

    async def _send_operator(self, operator: fiscal.Operator | None) -> None:
        if operator is None:
            return
        await self._send_tlv(TAG_CASHIER, operator.name)
        if operator.vatin:
            await self._send_tlv(TAG_CASHIER_INN, operator.vatin)

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
        """Shift state from the mode; the open shift's number is the last closed one + 1."""
        st = await self._long_status()
        state = _shift_state(st.mode & 0x0F)
        if state is fiscal.ShiftState.CLOSED and (st.mode & 0x0F) == MODE_DOCUMENT_OPEN:
            state = fiscal.ShiftState.OPENED
        number = st.last_shift + 1 if state is not fiscal.ShiftState.CLOSED else st.last_shift
        return fiscal.ShiftInfo(state=state, number=number)

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
            PRINT_TIMEOUT_S,
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
            REPORT_TIMEOUT_S,
        )
        return await self._result(done.document_number, done.fiscal_sign, shift=done.shift_number)

    async def x_report(self) -> None:
        """40h: shift totals on paper, no fiscal document."""
        await self._call(
            codec.XReportRequest(password=self._password), codec.XReportAnswer, REPORT_TIMEOUT_S
        )

    async def _result(
        self,
        number: int,
        sign: int,
        *,
        shift: int | None = None,
        total: int | None = None,
        when: dt.datetime | None = None,
    ) -> fiscal.FiscalResult:
        if when is None:
            when = (await self.fn_status()).last_document_datetime
        return fiscal.FiscalResult(
            document_number=number,
            fiscal_sign=sign,
            datetime=when,
            fn_number=self._fn_number,
            shift_number=shift,
            total=total,
        )

    # --- receipts ----------------------------------------------------------------------

    async def print_receipt(self, receipt: fiscal.Receipt) -> fiscal.FiscalResult:
        """FF46h per line, FF0Ch TLVs, FF45h. A refusal before FF45h cancels the receipt."""
        try:
            for line in fiscal.receipt_lines(receipt.items):
                await self._call(
                    codec.FnOperationV2Request(
                        password=self._password,
                        operation=int(receipt.type),
                        quantity=line.quantity,
                        price=line.price,
                        amount=line.amount,
                        tax_amount=None,
                        tax_rate=codec.VAT_TO_TAX_RATE[line.item.vat],
                        department=line.item.department,
                        payment_method=int(line.item.payment_method),
                        payment_object=line.item.payment_object,
                        name=line.item.name,
                    ),
                    codec.FnOperationV2Answer,
                )
            if receipt.client_contact:
                await self._send_tlv(TAG_BUYER_CONTACT, receipt.client_contact)
            await self._send_operator(receipt.operator)
        except DeviceError:
            # The register refused a line: nothing was fiscalised, so the open receipt goes.
            await self._cancel_quietly()
            raise
        payments = [0] * 16
        for payment in receipt.payments:
            payments[_PAYMENT_SLOT[payment.type]] += payment.sum
        taxes = [0] * 6
        for vat, tax in receipt.vat_sums().items():
            if vat in _TAX_SLOT:
                taxes[_TAX_SLOT[vat]] += tax
        taxation = receipt.taxation or self._default_taxation
        close = self._call(
            codec.FnCloseReceiptV2Request(
                password=self._password,
                payments=tuple(payments),
                rounding=0,
                taxes=tuple(taxes),
                tax_system=int(taxation),
                text="",
            ),
            codec.FnCloseReceiptV2Answer,
            PRINT_TIMEOUT_S,
        )
        try:
            closed = await close
        except DeviceError as err:
            # A refusal of FF45h (e.g. payments below total) leaves the receipt open and
            # unfiscalised. Transient states (paper) may have closed it: the caller reconciles.
            if not err.transient:
                await self._cancel_quietly()
            raise
        return await self._result(
            closed.document_number, closed.fiscal_sign, total=receipt.total, when=closed.datetime
        )

    async def _cancel_quietly(self) -> None:
        try:
            await self.cancel_receipt()
        except DeviceError as err:
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
            PRINT_TIMEOUT_S,
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
        pending = await link.probe_pending(timeout_s=QUERY_TIMEOUT_S)
        if pending is not None:
            _LOGGER.warning("Collected a pending answer during recovery: %s", pending.hex())
        status = await self.status()
        if status.waiting_continue_print and status.paper_present:
            await self.continue_print()
            status = await self.status()
        return status


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
