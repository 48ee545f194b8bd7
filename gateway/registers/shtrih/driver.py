"""Shtrih-M driver: the `Register` and `MarkingRegister` protocols over a Shtrih-M link.

Receipt flow as real drivers run it ([PROTO] FF46h/FF4Dh/FF0Ch/FF45h; [PHP]): FF46h per line
(opens the receipt in mode 2) with its FF4Dh item tags, FF0Ch document tags, FF45h close. Shifts: FF41h + TLVs + FF0Bh, FF42h + TLVs + FF43h.

Marked goods (ФФД 1.2): before anything is opened every code is checked (FF61h) and accepted
or rejected (FF69h) as the vendor's drivers do ([NG] #145, [JPOS] checkItemCode); a code the
item's policy refuses refuses the whole receipt with nothing printed. Then each code is bound
to its line (FF67h) in the firmware's order: «кассовое ядро» opens every receipt with 8Dh and
sends each line's tags (FF4Dh, 2108 first) and FF67h before its FF46h ([NG] examples #42,
#180; [JPOS] getCapOperationTagsFirst); classic firmware takes FF46h, FF4Dh, then FF67h
([OPOS] PrintFSSale, [JPOS] default). `cancel_receipt` also empties the table of checked
codes, so a receipt interrupted after its codes were accepted is re-run from the checks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import TypeVar

from gateway.domain import fiscal, marking
from gateway.domain.errors import (
    NotConnected,
    ProtocolError,
    Refusal,
    RegisterRefused,
    escape_controls,
)
from gateway.registers import serial_port
from gateway.registers.shtrih import codec, counters, tags
from gateway.registers.shtrih.codec import marking as codec_marking
from gateway.registers.shtrih.errors_table import ShtrihError
from gateway.registers.shtrih.link import ShtrihLink

_LOGGER = logging.getLogger(__name__)

# Answer timeouts per command class. Queries answer at once; documents print first; a Z report
# prints the shift totals and talks to the ФН, which can take a minute on a real register.
QUERY_TIMEOUT_S = 5.0
PRINT_TIMEOUT_S = 30.0
REPORT_TIMEOUT_S = 90.0
CONNECT_TIMEOUT_S = 10.0
# FF61h and FF67h wait for the ОИСМ's answer: [JPOS] gives them 40 s, every other command 30.
MARKING_TIMEOUT_S = 40.0

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

# FCh model ids of «кассовое ядро» firmware ([JPOS] getCapOperationTagsFirst): their lines
# take FF4Dh (and a marked line's FF67h) before FF46h, in a receipt opened with 8Dh.
CORE_MODEL_IDS = frozenset({16, 19, 20, 21, 45, 46})
MARKING_ORDERS = ("auto", "core", "classic")
# 8Dh receipt types: 0 sale, 1 buy, 2 sale return, 3 buy return ([PROTO] 8Dh).
_OPEN_TYPE = {
    fiscal.ReceiptType.SELL: 0,
    fiscal.ReceiptType.BUY: 1,
    fiscal.ReceiptType.SELL_RETURN: 2,
    fiscal.ReceiptType.BUY_RETURN: 3,
}
# Answers that mean "this register does not do marked goods": 32h to FF68h (the ФН was
# registered without them, [OPOS]), ФН A0h (marking forbidden), 37h (no such command).
ERR_MARKING_NOT_REGISTERED = 0x32
ERR_FN_MARKING_FORBIDDEN = 0xA0
ERR_NOT_SUPPORTED = 0x37
# ФН 02h to FF68h: the ФН works autonomously, with no exchange with the ОИСМ ([OPOS]). It
# also answers 02h while a notification upload (FF71h) is being read; the box never starts
# one, so here it means autonomous mode.
ERR_FN_WRONG_STATE = 0x02
_MARKING_OFF = frozenset({ERR_MARKING_NOT_REGISTERED, ERR_FN_MARKING_FORBIDDEN, ERR_NOT_SUPPORTED})
_RESCAN = "scan the code again from the pack's DataMatrix"
_CALL_ENGINEER = (
    "the ФН is not registered for marked goods: call your service engineer to register it "
    "for them, or sell marked goods on another register"
)

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
        marking_order: str = "auto",
    ) -> None:
        """Timeouts left None take this module's defaults when a command is sent.

        `marking_order` is the firmware's receipt order: "core" («кассовое ядро»: 8Dh, then per
        line FF4Dh, [FF67h,] FF46h), "classic" (FF46h, FF4Dh, [FF67h]), or "auto": core for
        the model ids of `CORE_MODEL_IDS` in the FCh answer, read on the first receipt after
        each connect.
        """
        if str(marking_order) not in MARKING_ORDERS:
            raise ValueError(f"marking_order must be one of {', '.join(MARKING_ORDERS)}")
        self._marking_order = str(marking_order)
        self._core: bool | None = None  # "auto": decided on the first receipt
        # True once a refused FF69h(2) was logged as a warning on this connection.
        self._clear_warned = False
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
        self._core = None  # another register may answer on the port now
        self._clear_warned = False
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

        «кассовое ядро» firmware: 8Dh first, then each line's FF4Dh tags before its FF46h.
        With marked items: their codes are checked and accepted first (nothing is opened when
        one is refused), then each is bound to its line (FF67h) in the firmware's order (see
        the module's text); the result's `marks` hold each marked item's check and 2106.

        A refusal before FF45h cancels the receipt. `receipt.taxation` must be set: the worker
        fills in the box's configured system, so the register never guesses one.
        """
        if receipt.taxation is None:
            raise ValueError("the receipt has no taxation system")
        plan = [(index, item, fiscal.print_lines(item)) for index, item in enumerate(receipt.items)]
        marks: dict[int, marking.MarkResult] = {}
        for index, item, lines in plan:
            if item.marking is not None and len(lines) > 1:
                raise RegisterRefused(
                    Refusal.INVALID_DATA,
                    f"{_item_label(index, item)}: a marked item cannot be printed as two "
                    f"lines, and its amount {item.amount} is not price × quantity",
                    hint="give the marked item's discounted price so that price × quantity "
                    "equals its amount within 1 kopeck",
                )
        _check_tag_blocks(receipt)
        # «кассовое ядро» takes every line's tags before the line, so every receipt opens
        # with 8Dh there, marked or not ([JPOS] getCapOperationTagsFirst).
        core = await self._core_order()
        if receipt.marked:
            marks = await self._check_marked(receipt)
        try:
            if core:
                await self._call(
                    codec.OpenReceiptRequest(
                        password=self._password, receipt_type=_OPEN_TYPE[receipt.type]
                    ),
                    codec.OpenReceiptAnswer,
                )
            for index, item, lines in plan:
                for line in lines:
                    if not core:
                        await self._operation(receipt, line)
                    await self._item_tags(item)
                    if item.marking is not None:
                        marks[index] = await self._bind(index, item, marks[index])
                    if core:
                        await self._operation(receipt, line)
            for tlv in tags.receipt_tags(receipt):
                await self._send_tlv(tlv)
            if receipt.electronically:
                await self._skip_printing(True)
        except RegisterRefused:
            # The register refused a line: nothing was fiscalised, so the open receipt goes
            # (and with it the accepted codes).
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
        result = await self._result(
            closed.document_number,
            closed.fiscal_sign,
            total=receipt.total,
            when=closed.datetime,
            shift=shift.shift_number,
            receipt_number=shift.receipt_number,
        )
        if not marks:
            return result
        return dataclasses.replace(result, marks=tuple(marks[i] for i in sorted(marks)))

    async def _operation(self, receipt: fiscal.Receipt, line: fiscal.PrintLine) -> None:
        """FF46h: one receipt line (opens the receipt on classic firmware)."""
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

    async def _item_tags(self, item: fiscal.Item) -> None:
        """FF4Dh: the line's tags, one per command."""
        for tlv in tags.item_tags(item):
            await self._call(
                codec.FnSendOperationTlvRequest(password=self._password, tlv=tlv),
                codec.FnSendOperationTlvAnswer,
            )

    # --- marked goods ------------------------------------------------------------------

    async def _core_order(self) -> bool:
        """True when receipts go in the «кассовое ядро» order."""
        if self._marking_order != "auto":
            return self._marking_order == "core"
        if self._core is None:
            kind = await self._call(codec.DeviceTypeRequest(), codec.DeviceType)
            self._core = kind.model in CORE_MODEL_IDS
            _LOGGER.info(
                "Register model %d (%s): receipts go in the %s order",
                kind.model,
                kind.name,
                "«кассовое ядро»" if self._core else "classic",
            )
        return self._core

    async def _check_marked(self, receipt: fiscal.Receipt) -> dict[int, marking.MarkResult]:
        """Check and accept every marked item's code before the receipt is opened.

        A code left waiting for a decision (FF70h) is rejected with FF69h(0); then the table
        is cleared with FF69h(2) where the register allows it — Штрих-Нано-Ф refuses that
        (`clear_codes`), and codes accepted earlier then stay in its table. The receipt does
        not depend on the clear: every code is decided (FF69h 1 or 0) right after its own
        FF61h, so at most one code ever waits, and FF67h names the code it binds. A code the
        item's policy refuses is rejected (FF69h 0), the table cleared where allowed, and the
        receipt refused with `Refusal.MARKING` naming the item.
        """
        state = await self.marking_state()
        if state.waiting_decision:
            _LOGGER.warning("A checked marking code waited for a decision; rejecting it")
            await self.accept_code(False)
        await self.clear_codes()
        marks: dict[int, marking.MarkResult] = {}
        for index, item in enumerate(receipt.items):
            code = item.marking
            if code is None:
                continue
            # A measured code with the line's quantity and unit; a part of a piece with the
            # line's quantity, the 1023 the line carries (`tags.check_tags`).
            measured = code.planned_status.measured
            stored: int | None = None
            try:
                check = await self.check_code(
                    code,
                    quantity=item.quantity if measured or code.fraction is not None else None,
                    unit=item.measurement_unit if measured else None,
                )
                why = marking.refusal(code, check)
                if why is None:
                    stored = await self.accept_code(True)
            except RegisterRefused as err:
                await self._reject_quietly()
                raise _about_item(err, index, item) from err
            if why is None and check.answer_refused:
                _LOGGER.warning(
                    "%s sold without a confirmed code: %s",
                    _item_label(index, item),
                    check.answer_refused_text,
                )
            if why is not None:
                _LOGGER.warning("%s refused: %s (%s)", _item_label(index, item), why, check)
                await self._reject_quietly()
                raise RegisterRefused(
                    Refusal.MARKING,
                    f"{_item_label(index, item)}: {why}",
                    hint=_refusal_hint(check),
                )
            marks[index] = marking.MarkResult(
                index=index,
                code=code.code,
                check=check,
                result=stored if stored is not None else check.result,
            )
        return marks

    async def _reject_quietly(self) -> None:
        """Reject a code that may wait for a decision, then clear the table; both tolerated."""
        try:
            await self.accept_code(False)
        except ShtrihError as err:
            _LOGGER.debug("No checked code to reject (%s)", err)
        await self.clear_codes()

    async def _bind(
        self, index: int, item: fiscal.Item, mark: marking.MarkResult
    ) -> marking.MarkResult:
        """FF67h: bind the item's code to its line.

        When the register re-checked the code itself (it was not in its table), the answer
        carries that check's block ([OPOS] FSBindItemCode): the item's policy decides it as
        it decided the FF61h check, and it replaces that check and its 2106 in the result.
        A refused re-check raises `Refusal.MARKING`; the caller cancels the receipt, which
        clears the table.
        """
        code = item.marking
        assert code is not None
        try:
            bound = await self._call(
                codec.MarkingBindRequest(password=self._password, code=code.code),
                codec.MarkingBind,
                MARKING_TIMEOUT_S,
            )
        except ShtrihError as err:
            what = "the register did not bind the code to the line"
            raise _about_item(err, index, item, what) from err
        check = _readable_check(bound, _item_label(index, item))
        if check is None:
            return mark
        why = marking.refusal(code, check)
        _LOGGER.info(
            "%s: the register re-checked the code when binding it: %s",
            _item_label(index, item),
            _describe(check),
        )
        if why is not None:
            _LOGGER.warning("%s refused on binding: %s (%s)", _item_label(index, item), why, check)
            raise RegisterRefused(
                Refusal.MARKING,
                f"{_item_label(index, item)}: {why} (the register checked the code again "
                "when binding it to the line)",
                hint=_refusal_hint(check),
            )
        # The document records the re-check's 2106, none when it had none (no answer).
        return dataclasses.replace(mark, check=check, result=check.result)

    async def check_code(
        self, code: marking.MarkingCode, *, quantity: int | None = None, unit: int | None = None
    ) -> marking.CodeCheck:
        """FF61h: the ФН's own check and the ОИСМ's answer (waits up to MARKING_TIMEOUT_S).

        `quantity` (×10⁶) and `unit` (2108) go with a measured or fractional code only; a
        fraction alone gives the quantity. The code then waits for `accept_code`.
        """
        label = escape_controls(code.printable())
        if not code.code:
            # The register answers 33h, extended code 00D30015 ([NG] examples #42).
            raise RegisterRefused(Refusal.MARKING, "the marking code is empty", hint=_RESCAN)
        tlv = tags.check_tags(code, quantity, unit)
        if len(code.code) + len(tlv) > codec_marking.MAX_CHECK_DATA:
            raise RegisterRefused(
                Refusal.MARKING,
                f"the marking code {label} is {len(code.code)} bytes long, more than the "
                f"register takes",
                hint=_RESCAN,
            )
        answer = await self._call(
            codec.MarkingCheckRequest(
                password=self._password,
                planned_status=int(code.planned_status),
                processing_mode=code.processing_mode,
                code=code.code,
                tlv=tlv,
            ),
            codec.MarkingCheck,
            MARKING_TIMEOUT_S,
        )
        check = _readable_check(answer, f"Marking code {label}")
        assert check is not None  # FF61h always carries the check
        _LOGGER.info("Marking code %s: %s", label, _describe(check))
        return check

    async def accept_code(self, accept: bool) -> int | None:
        """FF69h 1 (accept) or 0 (reject); the 2106 the register stored, when it says."""
        answer = await self._call(
            codec.MarkingAcceptRequest(
                password=self._password,
                action=codec_marking.ACCEPT if accept else codec_marking.REJECT,
            ),
            codec.MarkingAcceptAnswer,
        )
        return answer.result

    async def clear_codes(self) -> bool:
        """FF69h 2: empty the table of checked codes; True when the register did. Some
        registers refuse it (Штрих-Нано-Ф: ФН A1h, [NG] javapos #156) or lack the command:
        that is left alone and logged as a warning once per connection; A1h is also an
        ordinary "wrong state" answer, so the clear is still tried every time. Receipts do not
        depend on it (see `_check_marked`). A transient error (no paper…) is only logged."""
        try:
            await self._call(
                codec.MarkingAcceptRequest(password=self._password, action=codec_marking.CLEAR),
                codec.MarkingAcceptAnswer,
            )
        except ShtrihError as err:
            # Transient, no marking at all on this ФН (no table to clear), or warned already.
            if err.transient or err.error_code in _MARKING_OFF or self._clear_warned:
                _LOGGER.debug("The register did not clear its table of checked codes: %s", err)
                return False
            self._clear_warned = True
            _LOGGER.warning(
                "The register refuses to clear its table of checked marking codes (FF69h 2: "
                "%s). Codes are still decided one by one, so sales are not affected",
                err,
            )
            return False
        return True

    async def marking_state(self) -> marking.MarkingState:
        """FF70h; NOT_SUPPORTED when the ФН is not registered for marked goods."""
        try:
            status = await self._call(
                codec.MarkingStatusRequest(password=self._password), codec.MarkingStatus
            )
        except ShtrihError as err:
            if err.error_code in _MARKING_OFF:
                raise _marking_off(err) from err
            raise
        return status.state()

    async def ism_exchange(self) -> marking.IsmExchange:
        """FF68h; NOT_SUPPORTED when the ФН is not registered for marked goods (32h). A ФН in
        autonomous mode answers ФН 02h: it has no exchange with the ОИСМ, yet it does
        marking, so that is `IsmExchange.autonomous_mode()`, not a refusal."""
        try:
            status = await self._call(
                codec.IsmExchangeStatusRequest(password=self._password), codec.IsmExchangeStatus
            )
        except ShtrihError as err:
            if err.error_code in _MARKING_OFF:
                raise _marking_off(err) from err
            if err.error_code == ERR_FN_WRONG_STATE:
                _LOGGER.debug("FF68h: the ФН works in autonomous mode (%s)", err)
                return marking.IsmExchange.autonomous_mode()
            raise
        return status.exchange()

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
        """88h: cancel a receipt that is open (not fiscalised), then empty the table of checked
        marking codes (FF69h 2), so none stays accepted for a receipt that was never made; the
        table is cleared even when 88h is refused (no receipt was open)."""
        try:
            await self._call(
                codec.CancelReceiptRequest(password=self._password), codec.CancelReceiptAnswer
            )
        except ShtrihError:
            await self.clear_codes()
            raise
        await self.clear_codes()

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

    async def recorded_marks(self, number: int) -> list[tuple[bytes | None, int]]:
        """(2000, 2106) of each item (1059) of document `number` that carries a 2106 ([FFD])."""
        out: list[tuple[bytes | None, int]] = []
        for tag, value in await self.document_tags(number):
            if tag != tags.TAG_ITEM:
                continue
            fields = dict(codec.decode_tlvs(value))
            if tags.TAG_CHECK_RESULT in fields:
                code = fields.get(tags.TAG_MARKING_CODE)
                out.append((code, int.from_bytes(fields[tags.TAG_CHECK_RESULT], "little")))
        return out


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


def _check_tag_blocks(receipt: fiscal.Receipt) -> None:
    """Refuse, before anything is sent, a tag longer than one FF4Dh/FF0Ch block ([PROTO] p.46:
    at most 250 bytes): found mid-receipt it would leave a line open and codes accepted."""
    found = [
        (f"request item {i + 1} {item.name!r}", tags.item_tags(item))
        for i, item in enumerate(receipt.items)
    ]
    found.append(("the receipt", tags.receipt_tags(receipt)))
    for where, tlvs in found:
        for tlv in tlvs:
            if len(tlv) > codec.MAX_TLV_BLOCK:
                tag = int.from_bytes(tlv[:2], "little")
                raise RegisterRefused(
                    Refusal.INVALID_DATA,
                    f"{where}: tag {tag} takes {len(tlv)} bytes, more than the register takes "
                    f"in one block ({codec.MAX_TLV_BLOCK})",
                    hint="shorten that field's text",
                )


def _item_label(index: int, item: fiscal.Item) -> str:
    """ "request item N 'name' (code)" for errors: N counts from 1, as a cashier does."""
    code = f" ({escape_controls(item.marking.printable())})" if item.marking is not None else ""
    return f"request item {index + 1} {item.name!r}{code}"


def _readable_check(
    answer: codec.MarkingCheck | codec.MarkingBind, label: str
) -> marking.CodeCheck | None:
    """The check an FF61h/FF67h answer carries. The ОИСМ's tags are for the record only (the
    2106 byte decides), so unreadable tags are dropped with a warning."""
    try:
        return answer.check()
    except ProtocolError as err:
        _LOGGER.warning("%s: unreadable ОИСМ tags (%s)", label, err)
        return dataclasses.replace(answer, server=answer.server[:2]).check()


def _about_item(
    err: RegisterRefused, index: int, item: fiscal.Item, what: str | None = None
) -> RegisterRefused:
    """`err` again with the item's label (and what failed) in front of its message."""
    text = f"{what} ({err.message})" if what else err.message
    return RegisterRefused(
        err.reason,
        f"{_item_label(index, item)}: {text}",
        detail=err.detail,
        hint=err.hint,
        transient=err.transient,
    )


def _describe(check: marking.CodeCheck) -> str:
    """A check in one line for the log."""
    refused = check.answer_refused_text
    if check.answered:
        ism = "answered"
    elif refused is not None:
        ism = refused
    elif check.server_code is None:
        ism = "no answer (autonomous or not sent)"
    else:
        ism = f"no answer (code {check.server_code:#04x})"
    result = "-" if check.result is None else f"{check.result:#04x}"
    return (
        f"ФН check {check.local:#04x} (reason {int(check.reason)}), type {check.code_type}, "
        f"ОИСМ {ism}, 2106 {result}"
    )


def _refusal_hint(check: marking.CodeCheck) -> str:
    """What the cashier does about a refused code."""
    if check.local_negative:
        return (
            "scan the code again; if it is refused again the code is damaged or forged: "
            "do not sell this item"
        )
    if check.ism_negative:
        return (
            "take the item off the receipt: the marking system (Честный ЗНАК) does not allow "
            "its sale; check the code in the Честный ЗНАК app"
        )
    return (
        "check the register's connection to the marking system (ОИСМ) and retry, or send the "
        "receipt without validateMarkingCodes to sell with the ФН's own check"
    )


def _marking_off(err: ShtrihError) -> RegisterRefused:
    return RegisterRefused(
        Refusal.NOT_SUPPORTED,
        f"marking is not enabled on this register ({err.message})",
        detail=err.detail,
        hint=_CALL_ENGINEER,
    )
